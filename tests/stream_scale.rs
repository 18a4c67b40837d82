//! A 10,000-record batch through the worker's record readers, in process (in-memory ports): with
//! 1 % of its records malformed, exactly those reach the dead-letter queue, each once with its
//! sequence number, and every other record is processed, whether the records are read with the
//! event (the native layout, plain touches decided as they are read) or one by one later.

use serde_json::json;
use serde_json::value::RawValue;
use sessionwarden_aws::stream_record::parse_raw;
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::fake::{vars, Mem};
use sessionwarden_core::layout::Layout;
use sessionwarden_core::stream::{process_batch, reading};
use sessionwarden_stream::{decide_touches_with, NativeEvent, NativeRecord, StreamEvent};

const NOW: i64 = 1_800_000_000;

fn image(user: &str, last: i64) -> serde_json::Value {
    json!({
        "sessionId": {"S": format!("s-{user}")},
        "userId": {"S": user},
        "tenantId": {"S": "acme"},
        "status": {"S": "ACTIVE"},
        "createdAt": {"N": (NOW - 3600).to_string()},
        "lastActivityAt": {"N": last.to_string()},
        "sweepAt": {"N": (last + 28_800).to_string()},
        "userAgent": {"S": "Mozilla/5.0 \"quoted\" \\ agent"},
        "ipAddress": {"S": "192.0.2.1"},
        "prefs": {"M": {"theme": {"S": "dark"}}},
    })
}

fn touch(i: usize) -> serde_json::Value {
    let user = format!("u-{}", i % 2_500);
    json!({
        "eventID": i.to_string(),
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": NOW,
            "Keys": {"sessionId": {"S": format!("s-{user}")}},
            "OldImage": image(&user, NOW - 60 - i as i64),
            "NewImage": image(&user, NOW - 30 - i as i64 / 2),
            "SequenceNumber": format!("{:021}", 1_000 + i),
            "SizeBytes": 400,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/sessions/stream/x",
    })
}

/// The batch: 10,000 touches of 2,500 sessions; 1 % malformed (one of four ways in turn), and
/// 10 late touches (activity past the idle deadline). Returns the body and the malformed ones'
/// sequence numbers.
fn batch() -> (String, Vec<String>) {
    let mut malformed = Vec::new();
    let records: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            let mut r = touch(i);
            if i % 100 == 37 {
                // One of each way a record can be broken, in turn.
                match (i / 100) % 4 {
                    0 => r["dynamodb"]["Keys"] = json!({}),
                    1 => r["dynamodb"]["NewImage"]["status"] = json!({"S": "ZOMBIE"}),
                    2 => r["dynamodb"]["NewImage"]["lastActivityAt"] = json!({"S": "now"}),
                    _ => r["dynamodb"]["OldImage"] = json!(null),
                }
                malformed.push(
                    r["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            if i % 1_000 == 500 {
                r["dynamodb"]["OldImage"]["lastActivityAt"] =
                    json!({"N": (NOW - 40_000).to_string()});
            }
            r
        })
        .collect();
    assert_eq!(malformed.len(), 100);
    (json!({ "Records": records }).to_string(), malformed)
}

/// Runs the batch through the worker's event type for the native layout (records read as the
/// body is deserialized; plain touches decided then), or through the raw-record path.
async fn run(native: bool, body: &str, mem: &Mem) -> sessionwarden_core::stream::BatchOutcome {
    let cfg = StreamConfig::from_source(&vars(&[])).unwrap();
    let deadline = EpochDeadline::in_from_now(std::time::Duration::from_secs(60));
    if native {
        decide_touches_with(cfg.common.expiry);
        let event: NativeEvent = serde_json::from_slice(body.as_bytes()).unwrap();
        let read = |r: NativeRecord| r.0.map_err(|b| *b);
        process_batch(&mem.ports(), &cfg, event.records, read, NOW, &deadline).await
    } else {
        let event: StreamEvent = serde_json::from_str(body).unwrap();
        let read = reading::<Box<RawValue>>(|r| parse_raw(&Layout::Native, r));
        process_batch(&mem.ports(), &cfg, event.records, read, NOW, &deadline).await
    }
}

#[tokio::test]
async fn a_10k_batch_with_1_percent_malformed_records_dead_letters_exactly_those() {
    let (body, malformed) = batch();
    let mut reports = Vec::new();
    for native in [true, false] {
        let mem = Mem::default();
        let out = run(native, &body, &mem).await;
        assert_eq!(out.failed_from, None);
        assert_eq!(out.report.malformed, 100);
        assert_eq!(out.report.processed, 9_900);
        let st = mem.state();
        let mut got: Vec<String> = st.letters.iter().filter_map(|l| l.seq.clone()).collect();
        got.sort();
        assert_eq!(got, malformed, "exactly the malformed records, each once");
        assert!(
            st.letters.iter().all(|l| l.raw["dynamodb"].is_object()),
            "dead-lettered raw"
        );
        assert_eq!(
            out.report.anomalies.get("IDLE_TIMEOUT_NOT_ENFORCED"),
            Some(&5),
            "the late touches (10, of 5 sessions: one alert each) are not plain, whichever way the batch is read"
        );
        // Sessions run concurrently, so alerts are compared as a set.
        let mut alerts: Vec<String> = st.alerts.iter().map(|a| format!("{a:?}")).collect();
        alerts.sort();
        reports.push(format!("{:?} {:?} {alerts:?}", out.report, st.letters));
    }
    assert!(
        reports[0] == reports[1],
        "the native event's reading changes nothing"
    );
}
