//! Decoders that never panic (issue 10, point 5): `SESSION_LAYOUT` and cascade messages, fed
//! arbitrary strings and JSON, return `Ok` or `Err`. A panic fails the property; a failing case
//! found this way is kept below as an ordinary test.

use proptest::prelude::*;
use serde_json::{json, Value};
use sessionwarden_core::cascade_message;
use sessionwarden_core::layout::{Layout, IS_CURRENT_EXAMPLE};

mod support;
use support::arb;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A cascade message: the known fields, each well-formed, another JSON value or absent, and
/// sometimes a field of its own.
fn cascade_json() -> impl Strategy<Value = Value> {
    let field = |v: BoxedStrategy<Value>| -> BoxedStrategy<Option<Value>> {
        prop_oneof![4 => v.prop_map(Some), 1 => arb::json_leaf().prop_map(Some), 1 => Just(None)]
            .boxed()
    };
    let s = || arb::tricky_string().prop_map(Value::String).boxed();
    (
        (
            field(
                prop_oneof![
                    4 => Just(json!(1)),
                    1 => any::<i64>().prop_map(Value::from),
                    1 => any::<f64>().prop_map(|f| json!(f)),
                ]
                .boxed(),
            ),
            field(
                prop::sample::select(vec!["user", "tenant", "family", "session", "planet"])
                    .prop_map(|s| json!(s))
                    .boxed(),
            ),
            field(s()),
            field(s()),
            field(s()),
            field(s()),
        ),
        (
            field(s()),
            field(s()),
            field(s()),
            field(s()),
            field(any::<u64>().prop_map(Value::from).boxed()),
            field(
                prop::collection::vec(s(), 0..4)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
            prop::option::weighted(0.1, (arb::tricky_string(), arb::json_leaf())),
        ),
    )
        .prop_map(
            |(
                (version, scope, user, tenant, session, reason),
                (by, request, root, cursor, depth, path, extra),
            )| {
                let mut o = serde_json::Map::new();
                for (k, v) in [
                    ("version", version),
                    ("scope", scope),
                    ("userId", user),
                    ("tenantId", tenant),
                    ("sessionId", session),
                    ("reason", reason),
                    ("requestedBy", by),
                    ("requestId", request),
                    ("rootId", root),
                    ("cursor", cursor),
                    ("depth", depth),
                    ("path", path),
                ] {
                    if let Some(v) = v {
                        o.insert(k.into(), v);
                    }
                }
                if let Some((k, v)) = extra {
                    o.insert(k, v);
                }
                Value::Object(o)
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn layout_parse_takes_any_string(raw in prop_oneof![
        3 => any::<String>(),
        1 => arb::tricky_string(),
        1 => any::<String>().prop_map(|s| format!("{{{s}")),
    ]) {
        let _ = Layout::parse(&raw);
    }

    #[test]
    fn layout_parse_takes_any_json(value in arb::layout_json()) {
        let _ = Layout::parse(&value.to_string());
        let _ = Layout::parse(&serde_json::to_string_pretty(&value).unwrap());
    }

    #[test]
    fn layout_parse_takes_the_example_with_one_field_replaced(
        field in prop::sample::select(vec![
            "layout", "key", "user", "active", "lastActivity", "idleTimeout", "end", "ip", "ttl",
            "ttlIsDeadline", "prefix", "tenant",
        ]),
        value in prop::option::of(arb::json()),
    ) {
        let mut v: Value = serde_json::from_str(IS_CURRENT_EXAMPLE).unwrap();
        match value {
            Some(x) => v[field] = x,
            None => { v.as_object_mut().unwrap().remove(field); }
        }
        let _ = Layout::parse(&v.to_string());
    }

    #[test]
    fn cascade_message_parse_takes_any_string(body in any::<String>(), id in arb::tricky_string()) {
        let _ = cascade_message::parse(&body, &id);
    }

    #[test]
    fn cascade_message_parse_takes_any_json(body in prop_oneof![3 => cascade_json(), 1 => arb::json()]) {
        if let Ok(job) = cascade_message::parse(&body.to_string(), "m-1") {
            // What parses, re-encodes as a continuation that parses again.
            let again = job.message(&job.target, job.cursor.clone(), job.depth, job.path.clone());
            prop_assert!(cascade_message::parse(&serde_json::to_string(&again).unwrap(), "m-2").is_ok());
        }
    }
}
