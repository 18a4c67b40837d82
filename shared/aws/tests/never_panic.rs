//! Decoders that never panic (issue 10, point 5): the stream record decoder and the layout
//! readers, fed arbitrary JSON and attribute values on every layout, return `Ok` or `Err`. A
//! panic fails the property; a failing case found this way is kept below as an ordinary test.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_dynamo::AttributeValue as Av;
use serde_json::{json, Value};
use sessionwarden_aws::layout::{self, Item};
use sessionwarden_aws::stream_record;
use sessionwarden_core::anomaly::detect;
use sessionwarden_core::change::ChangeKind;
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::layout::{Layout, TimeField, TimeFormat, IS_CURRENT_EXAMPLE};
use sessionwarden_core::stream::Read;

#[path = "../../core/tests/support/arb.rs"]
mod arb;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Every layout the worker ships with.
fn layouts() -> Vec<Layout> {
    vec![
        Layout::Native,
        Layout::parse("connect-dynamodb").unwrap(),
        Layout::parse("authjs").unwrap(),
        Layout::parse(IS_CURRENT_EXAMPLE).unwrap(),
    ]
}

/// Attribute names some layout reads, and a few no layout knows.
const NAMES: [&str; 30] = [
    "sessionId",
    "userId",
    "tenantId",
    "status",
    "createdAt",
    "lastActivityAt",
    "idleTimeoutSeconds",
    "absoluteExpiresAt",
    "userAgent",
    "ipAddress",
    "revokeScope",
    "terminationReason",
    "parentSessionId",
    "expiresAt",
    "sweepAt",
    "id",
    "sess",
    "expires",
    "pk",
    "sk",
    "type",
    "GSI1PK",
    "sessionToken",
    "isCurrent",
    "lastActivity",
    "sessionTimeout",
    "expiredAt",
    "user",
    "passport",
    "x",
];

fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(NAMES.to_vec()).prop_map(String::from),
        1 => arb::tricky_string(),
    ]
}

/// A key-like string: a layout's prefix (or none) and an ID.
fn key_string() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "sess:", "SESSION#", "USER#", "SESSION", "sess"]),
        prop_oneof![3 => "[a-z0-9-]{0,8}", 1 => arb::tricky_string()],
    )
        .prop_map(|(p, id)| format!("{p}{id}"))
}

/// A string attribute: a key, a status, a time, JSON (express-session's `sess`), anything.
fn s_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => key_string(),
        2 => arb::tricky_string(),
        1 => arb::number_string(),
        1 => prop::sample::select(vec!["ACTIVE", "TERMINATED", "EXPIRED", "REVOKED", "SESSION", "true", "false"])
            .prop_map(String::from),
        2 => arb::json_with_keys(3, vec!["user", "id", "userId", "passport", "tenantId", "cookie"])
            .prop_map(|v| v.to_string()),
    ]
}

/// Any attribute value of any DynamoDB type, nested at most 3 levels.
fn av() -> impl Strategy<Value = Av> {
    let leaf = prop_oneof![
        3 => s_value().prop_map(Av::S),
        3 => arb::number_string().prop_map(Av::N),
        1 => any::<bool>().prop_map(Av::Bool),
        1 => any::<bool>().prop_map(Av::Null),
        1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(Av::B),
        1 => prop::collection::vec(s_value(), 0..3).prop_map(Av::Ss),
        1 => prop::collection::vec(arb::number_string(), 0..3).prop_map(Av::Ns),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::hash_map(attr_name(), inner.clone(), 0..5).prop_map(Av::M),
            prop::collection::vec(inner, 0..5).prop_map(Av::L),
        ]
    })
}

/// An item: mostly known attribute names, with a key-like value under the key names.
fn item() -> impl Strategy<Value = Item> {
    let keyed = prop::collection::hash_map(
        prop::sample::select(vec!["sessionId", "id", "pk", "sk", "type"]).prop_map(String::from),
        prop_oneof![4 => key_string().prop_map(Av::S), 1 => av()],
        0..5,
    );
    (keyed, prop::collection::hash_map(attr_name(), av(), 0..10)).prop_map(|(mut k, rest)| {
        for (name, v) in rest {
            k.entry(name).or_insert(v);
        }
        k
    })
}

/// An item every layout takes for a session (the keys, kind, flag and deadline each one needs),
/// with some attributes replaced by random values: the readers get past the key and kind checks
/// and meet random values where they read times, numbers, paths and JSON.
fn session_item() -> impl Strategy<Value = Item> {
    let value = prop_oneof![
        2 => arb::number_string().prop_map(Av::N),
        1 => s_value().prop_map(Av::S),
        2 => av(),
    ];
    prop::collection::vec((attr_name(), value), 0..8).prop_map(|overlay| {
        let mut i: Item = [
            ("sessionId", Av::S("s1".into())),
            ("status", Av::S("ACTIVE".into())),
            ("id", Av::S("sess:s1".into())),
            ("expires", Av::N("1800000000".into())),
            ("pk", Av::S("USER#u1".into())),
            ("sk", Av::S("SESSION#s1".into())),
            ("type", Av::S("SESSION".into())),
            ("isCurrent", Av::Bool(true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        i.extend(overlay);
        i
    })
}

/// Any item: mostly session-like, sometimes anything.
fn any_item() -> impl Strategy<Value = Item> {
    prop_oneof![2 => session_item(), 1 => item()]
}

/// The DynamoDB JSON of a value, as a stream record carries it.
fn av_json(v: &Av) -> Value {
    match v {
        Av::S(s) => json!({"S": s}),
        Av::N(n) => json!({"N": n}),
        Av::Bool(b) => json!({"BOOL": b}),
        Av::Null(b) => json!({"NULL": b}),
        Av::B(b) => json!({"B": String::from_utf8_lossy(b)}),
        Av::Ss(v) => json!({"SS": v}),
        Av::Ns(v) => json!({"NS": v}),
        Av::Bs(v) => {
            json!({"BS": v.iter().map(|b| String::from_utf8_lossy(b)).collect::<Vec<_>>()})
        }
        Av::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), av_json(v))).collect::<serde_json::Map<_, _>>()})
        }
        Av::L(l) => json!({"L": l.iter().map(av_json).collect::<Vec<_>>()}),
    }
}

/// An image as JSON: an item's DynamoDB JSON, now and then with one attribute replaced by
/// JSON that is not an attribute value.
fn image_json() -> impl Strategy<Value = Value> {
    (
        any_item(),
        prop::option::weighted(0.2, (attr_name(), arb::json())),
    )
        .prop_map(|(i, junk)| {
            let mut m: serde_json::Map<String, Value> =
                i.iter().map(|(k, v)| (k.clone(), av_json(v))).collect();
            if let Some((k, v)) = junk {
                m.insert(k, v);
            }
            Value::Object(m)
        })
}

/// A DynamoDB stream record in Lambda's shape, with random parts: event name, sequence number,
/// creation time, identity, keys and images.
fn stream_record_json() -> impl Strategy<Value = Value> {
    let json_or = |v: BoxedStrategy<Value>| prop_oneof![6 => v, 1 => arb::json_leaf()];
    (
        json_or(
            prop_oneof![
                3 => prop::sample::select(vec!["INSERT", "MODIFY", "REMOVE"]).prop_map(|s| json!(s)),
                1 => arb::tricky_string().prop_map(Value::String),
            ]
            .boxed(),
        ),
        prop::option::weighted(
            0.9,
            json_or(
                prop_oneof![
                    3 => "[0-9]{1,24}".prop_map(Value::String),
                    1 => arb::tricky_string().prop_map(Value::String),
                ]
                .boxed(),
            ),
        ),
        prop::option::weighted(
            0.9,
            prop_oneof![
                3 => (0i64..4_000_000_000).prop_map(Value::from),
                1 => any::<i64>().prop_map(Value::from),
                1 => any::<f64>().prop_map(|f| json!(f)),
                1 => arb::json_leaf(),
            ],
        ),
        prop::option::weighted(
            0.3,
            prop_oneof![
                Just(json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})),
                arb::json(),
            ],
        ),
        image_json(),
        prop::option::weighted(0.8, image_json()),
        prop::option::weighted(0.6, image_json()),
    )
        .prop_map(|(event, seq, at, identity, keys, new, old)| {
            let mut d = json!({"Keys": keys, "SizeBytes": 26, "StreamViewType": "NEW_AND_OLD_IMAGES"});
            for (k, v) in [("SequenceNumber", seq), ("ApproximateCreationDateTime", at), ("NewImage", new), ("OldImage", old)] {
                if let Some(v) = v {
                    d[k] = v;
                }
            }
            let mut r = json!({"eventID": "1", "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": d, "eventSourceARN": "arn"});
            if let Some(u) = identity {
                r["userIdentity"] = u;
            }
            r
        })
}

fn at() -> impl Strategy<Value = i64> {
    prop_oneof![3 => 0i64..4_000_000_000, 1 => any::<i64>()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stream_record_parse_takes_any_json(raw in arb::json_with_keys(
        4,
        vec!["eventName", "dynamodb", "Keys", "NewImage", "OldImage", "SequenceNumber", "S", "N", "M", "L", "sessionId", "id"],
    )) {
        for l in layouts() {
            let _ = stream_record::parse(&l, &raw);
        }
    }

    #[test]
    fn stream_record_parse_takes_any_mutated_record(raw in stream_record_json()) {
        for l in layouts() {
            let _ = stream_record::parse(&l, &raw);
        }
    }

    /// The worker's one-pass reader of raw records decides exactly as the tree reader: the same
    /// change, or the same rejection with the same reason and sequence number.
    #[test]
    fn the_raw_reader_agrees_with_the_tree_reader(raw in stream_record_json()) {
        // Both read the same bytes (a float need not survive a trip through text unchanged).
        let text = serde_json::value::RawValue::from_string(raw.to_string()).unwrap();
        let tree: Value = serde_json::from_str(text.get()).unwrap();
        for l in layouts() {
            prop_assert_eq!(
                stream_record::parse_raw(&l, &text),
                stream_record::parse(&l, &tree)
            );
        }
    }

    /// The native worker's reader (records read with the event, plain touches decided there)
    /// decides exactly as the tree reader and the rules: the same change or the same rejection,
    /// and a record it calls quiet is a MODIFY in which the rules find nothing.
    #[test]
    fn the_native_reader_agrees_with_the_tree_reader_and_the_rules(raw in stream_record_json()) {
        agree_on_native(&raw.to_string());
    }

    #[test]
    fn layout_read_takes_any_item(item in any_item(), at in at()) {
        for l in layouts() {
            if let Layout::Mapped(m) = l {
                let _ = layout::read(&m, &item, at);
                let _ = layout::id_of(&m, &item);
            }
        }
    }

    #[test]
    fn layout_read_takes_any_item_on_any_layout_that_parses(
        layout in arb::layout_json(),
        item in any_item(),
        at in at(),
    ) {
        if let Ok(Layout::Mapped(m)) = Layout::parse(&layout.to_string()) {
            let _ = layout::read(&m, &item, at);
        }
    }

    #[test]
    fn times_read_and_write_at_any_value(v in av(), at in any::<i64>(), fence in any::<String>()) {
        for format in [TimeFormat::EpochSeconds, TimeFormat::EpochMillis, TimeFormat::Iso8601] {
            let f = TimeField { attribute: "t".into(), format };
            let _ = layout::time(&HashMap::from([("t".to_string(), v.clone())]), &f);
            let _ = layout::time_value(format, at);
        }
        let _ = layout::fence_value(&fence);
    }
}

/// Found by `times_read_and_write_at_any_value`: `time_value` multiplied a far-future time by
/// 1000 and overflowed (a panic in debug builds, a wrapped, wrong time in release).
#[test]
fn a_time_past_what_milliseconds_hold_is_written_saturated() {
    let v = layout::time_value(TimeFormat::EpochMillis, 9_223_372_036_854_776);
    assert_eq!(
        v,
        aws_sdk_dynamodb::types::AttributeValue::N(i64::MAX.to_string())
    );
    let _ = layout::time_value(TimeFormat::EpochMillis, i64::MIN);
    let _ = layout::time_value(TimeFormat::Iso8601, i64::MAX);
}

/// Found by `layout_read_takes_any_item`: an idle timeout in minutes too large for seconds
/// overflowed when `read` converted it (`v * 60`).
#[test]
fn an_idle_timeout_in_minutes_too_large_for_seconds_does_not_overflow() {
    let Layout::Mapped(m) = Layout::parse(IS_CURRENT_EXAMPLE).unwrap() else {
        unreachable!()
    };
    for huge in [
        "9223372036854775807",
        "1e300",
        "-1e300",
        "153722867280912931",
    ] {
        let item: Item = [
            ("id", Av::S("s1".into())),
            ("isCurrent", Av::Bool(true)),
            ("sessionTimeout", Av::N(huge.into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let _ = layout::read(&m, &item, 1_800_000_000);
    }
}

/// [`the_native_reader_agrees_with_the_tree_reader_and_the_rules`] for one record's text.
fn agree_on_native(text: &str) {
    let raw = serde_json::value::RawValue::from_string(text.to_string()).unwrap();
    let tree: Value = serde_json::from_str(raw.get()).unwrap();
    let policy = ExpiryPolicy::default();
    let by_tree = stream_record::parse(&Layout::Native, &tree);
    match stream_record::read_native(&raw, Some(&policy)) {
        Ok(Read::Quiet) => {
            let c = by_tree
                .expect("quiet only for a readable record")
                .expect("a session");
            assert_eq!(c.kind, ChangeKind::Modify, "{text}");
            let d = detect(&c, None, &policy);
            assert!(d.findings.is_empty() && d.facts.is_empty(), "{text}: {d:?}");
        }
        Ok(Read::Change(c)) => assert_eq!(Ok(Some(*c)), by_tree, "{text}"),
        Ok(Read::NotSession) => assert_eq!(Ok(None), by_tree, "{text}"),
        Err(r) => {
            assert_eq!(Err(r.malformed), by_tree, "{text}");
            assert_eq!(r.raw, tree, "{text}");
        }
    }
}

/// Records the one-pass reader once read otherwise than the tree reader (found by review): an
/// attribute value with a second member or a null string, values written as arrays, and an
/// identity written as an array. Each now goes the tree path; a plain touch stays quiet.
#[test]
fn the_native_reader_leaves_odd_shapes_to_the_tree_reader() {
    let touch = |old_ua: &str, identity: &str| {
        format!(
            r#"{{"eventName":"MODIFY",{identity}"dynamodb":{{"SequenceNumber":"1","Keys":{{"sessionId":{{"S":"s"}}}},"OldImage":{{"sessionId":{{"S":"s"}},"status":{{"S":"ACTIVE"}},"userAgent":{old_ua},"lastActivityAt":{{"N":"100"}}}},"NewImage":{{"sessionId":{{"S":"s"}},"status":{{"S":"ACTIVE"}},"userAgent":{{"S":"ua"}},"lastActivityAt":{{"N":"160"}}}}}}}}"#
        )
    };
    let plain = touch(r#"{"S":"ua"}"#, "");
    let raw = serde_json::value::RawValue::from_string(plain.clone()).unwrap();
    assert!(matches!(
        stream_record::read_native(&raw, Some(&ExpiryPolicy::default())),
        Ok(Read::Quiet)
    ));
    for odd in [
        touch(r#"{"S":"ua","BOOL":true}"#, ""),
        touch(r#"{"S":null,"N":"5"}"#, ""),
        touch(r#"["ua"]"#, ""),
        touch(r#"{"S":"ua","S":"ua"}"#, ""),
        touch(
            r#"{"S":"ua"}"#,
            r#""userIdentity":["Service","dynamodb.amazonaws.com"],"#,
        ),
        plain.replacen(
            r#""Keys":{"sessionId":{"S":"s"}}"#,
            r#""Keys":{"sessionId":{"S":"s","X":0}}"#,
            1,
        ),
        r#"{"eventName":"MODIFY","dynamodb":["1",null,{"sessionId":{"S":"s"}}]}"#.to_string(),
        r#"["MODIFY",null,{"SequenceNumber":"1","Keys":{"sessionId":{"S":"s"}}}]"#.to_string(),
    ] {
        agree_on_native(&odd);
    }
    let remove = r#"{"eventName":"REMOVE","userIdentity":["Service","dynamodb.amazonaws.com"],"dynamodb":{"SequenceNumber":"2","Keys":{"sessionId":{"S":"s"}},"OldImage":{"sessionId":{"S":"s"},"status":{"S":"ACTIVE"}}}}"#;
    agree_on_native(remove);
}
