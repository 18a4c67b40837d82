//! A 10,000-record batch through the worker's raw-record reader, in process (in-memory ports):
//! with 1 % of its records malformed, exactly those reach the dead-letter queue, each once with
//! its sequence number, and every other record is processed.

use serde_json::json;
use serde_json::value::RawValue;
use sessionwarden_aws::stream_record::parse_raw;
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::fake::{vars, Mem};
use sessionwarden_core::layout::Layout;
use sessionwarden_core::stream::process_batch;

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

#[tokio::test]
async fn a_10k_batch_with_1_percent_malformed_records_dead_letters_exactly_those() {
    let mut malformed = Vec::new();
    let records: Vec<Box<RawValue>> = (0..10_000)
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
            RawValue::from_string(r.to_string()).unwrap()
        })
        .collect();
    assert_eq!(malformed.len(), 100);
    let mem = Mem::default();
    let cfg = StreamConfig::from_source(&vars(&[])).unwrap();
    let out = process_batch(
        &mem.ports(),
        &cfg,
        records,
        |r| parse_raw(&Layout::Native, r),
        NOW,
        &EpochDeadline::in_from_now(std::time::Duration::from_secs(60)),
    )
    .await;
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
    assert!(st.alerts.is_empty(), "touches raise nothing");
}
