//! Parsing of stream records in the Lambda event shape: every malformation is named and keeps
//! its sequence number.

use serde_json::json;
use sessionwarden_aws::stream_record::parse_record;
use sessionwarden_core::change::{ChangeKind, SeqNo};

fn record(
    event: &str,
    keys: serde_json::Value,
    new: serde_json::Value,
    old: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut d = json!({"ApproximateCreationDateTime": 1_800_000_000, "Keys": keys, "NewImage": new, "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_AND_OLD_IMAGES"});
    if let Some(o) = old {
        d["OldImage"] = o;
    }
    json!({"eventID": "1", "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": d, "eventSourceARN": "arn"})
}
fn good_image() -> serde_json::Value {
    json!({"sessionId": {"S": "s1"}, "userId": {"S": "u"}, "status": {"S": "ACTIVE"}, "createdAt": {"N": "1"}, "lastActivityAt": {"N": "2"}})
}

#[test]
fn parses_an_insert() {
    let c = parse_record(&record(
        "INSERT",
        json!({"sessionId": {"S": "s1"}}),
        good_image(),
        None,
    ))
    .unwrap();
    assert_eq!(c.kind, ChangeKind::Insert);
    assert_eq!(c.seq, SeqNo("111".into()));
    assert_eq!(c.new.unwrap().user_id.as_deref(), Some("u"));
}

#[test]
fn keys_only_image_is_not_malformed() {
    let c = parse_record(&record(
        "INSERT",
        json!({"sessionId": {"S": "s1"}}),
        json!({"sessionId": {"S": "s1"}}),
        None,
    ))
    .unwrap();
    assert!(c.new.is_none());
}

#[test]
fn every_malformation_is_named_and_keeps_the_sequence_number() {
    let cases = [
        (
            record("INSERT", json!({}), good_image(), None),
            "key sessionId is missing",
        ),
        (
            record(
                "INSERT",
                json!({"sessionId": {"N": "5"}}),
                good_image(),
                None,
            ),
            "key sessionId is not",
        ),
        (
            record(
                "UPSERT",
                json!({"sessionId": {"S": "s1"}}),
                good_image(),
                None,
            ),
            "unknown eventName",
        ),
        (
            record(
                "INSERT",
                json!({"sessionId": {"S": "s1"}}),
                json!({"sessionId": {"S": "s1"}, "status": {"S": "ZOMBIE"}}),
                None,
            ),
            "unknown session status",
        ),
        (
            record(
                "INSERT",
                json!({"sessionId": {"S": "s1"}}),
                json!({"sessionId": {"S": "s1"}, "status": {"S": "ACTIVE"}, "lastActivityAt": {"S": "now"}}),
                None,
            ),
            "lastActivityAt is not a number",
        ),
        (
            record(
                "MODIFY",
                json!({"sessionId": {"S": "s1"}}),
                good_image(),
                None,
            ),
            "MODIFY without OldImage",
        ),
    ];
    for (raw, want) in cases {
        let e = parse_record(&raw).unwrap_err();
        assert_eq!(e.seq.as_deref(), Some("111"));
        assert!(
            e.reason.contains(want),
            "{} does not contain {want}",
            e.reason
        );
    }
    let e = parse_record(&json!({"eventName": "INSERT"})).unwrap_err();
    assert!(
        e.seq.is_none() && e.reason.contains("not a DynamoDB stream record"),
        "{e}"
    );
}

#[test]
fn ttl_removes_are_recognised() {
    let mut raw = record(
        "REMOVE",
        json!({"sessionId": {"S": "s1"}}),
        json!(null),
        Some(good_image()),
    );
    raw["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    let c = parse_record(&raw).unwrap();
    assert!(c.by_ttl && c.kind == ChangeKind::Remove);
}

/// The lean parse reads only the attributes the rules use; every other attribute, of any type,
/// enters the image's fingerprint, so a write to it still tells an app write from a TTL change.
#[test]
fn other_attributes_of_any_type_are_fingerprinted_not_parsed() {
    // Fingerprints are compared between ended images (a write to a zombie): an ended one here.
    let mut image = good_image();
    image["status"] = json!({"S": "TERMINATED"});
    image["prefs"] = json!({"M": {"theme": {"S": "dark"}, "beta": {"BOOL": true}}});
    image["tags"] = json!({"SS": ["a", "b"]});
    let mut changed = image.clone();
    changed["prefs"]["M"]["theme"] = json!({"S": "light"});
    let mut ttl_only = image.clone();
    ttl_only["expiresAt"] = json!({"N": "99"});
    let key = json!({"sessionId": {"S": "s1"}});
    let of = |old: &serde_json::Value, new: &serde_json::Value| {
        let c = parse_record(&record(
            "MODIFY",
            key.clone(),
            new.clone(),
            Some(old.clone()),
        ))
        .unwrap();
        (c.old.unwrap().fingerprint, c.new.unwrap().fingerprint)
    };
    let (a, b) = of(&image, &image);
    assert!(a.is_some());
    assert_eq!(a, b);
    let (a, b) = of(&image, &changed);
    assert_ne!(a, b, "a nested value changed");
    let (a, b) = of(&image, &ttl_only);
    assert_eq!(a, b, "expiresAt is not part of the fingerprint");
    // An active image has none: the rules never compare it.
    let c = parse_record(&record("INSERT", key.clone(), good_image(), None)).unwrap();
    assert_eq!(c.new.unwrap().fingerprint, None);
    let mut bad_time = record("INSERT", key.clone(), good_image(), None);
    bad_time["dynamodb"]["ApproximateCreationDateTime"] = json!("yesterday");
    let e = parse_record(&bad_time).unwrap_err();
    assert!(e.reason.contains("ApproximateCreationDateTime"), "{e}");
    assert_eq!(e.seq.as_deref(), Some("111"));
}
