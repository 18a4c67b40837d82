//! Generators shared by the never-panic property tests of `sessionwarden-core` and
//! `sessionwarden-aws` (which includes this file by path): arbitrary JSON of bounded depth,
//! strings and number spellings that have broken decoders elsewhere, and `SESSION_LAYOUT`
//! objects that are mostly well-shaped, so the checks behind the shape are reached too.

#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Strings that decoders treat specially: empty, blank, JSON, prefixes, control characters.
pub fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[a-zA-Z0-9:#._ -]{0,12}",
        1 => prop::sample::select(vec![
            "", " ", "\u{0}", "\n", "null", "{}", "[]", "{\"id\":\"u\"}", "{\"user\":{\"id\":7}}",
            "sess:", "sess:abc", "SESSION#", "SESSION#s1", "USER#", "USER#u1", "ACTIVE", "ENDED",
            "true", "false", "SESSION", "custom", "2026-11-20T10:00:00Z", "+275760-09-13T00:00:00Z",
            "1e400", "NaN", "-0", "9223372036854775808", "{\"id\":", "\u{feff}x", "é", "𝄞",
        ])
        .prop_map(String::from),
    ]
}

/// Number spellings, as DynamoDB `N` strings or JSON strings: ordinary, huge, tiny, not finite,
/// not numbers at all.
pub fn number_string() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_map(|f| f.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        2 => prop::sample::select(vec![
            "", " ", "0", "-0", "1e400", "-1e400", "1e-400", "NaN", "nan", "inf", "-inf",
            "Infinity", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
            "1.7976931348623157e308", "179769313486231570000000000000000000000000000000000000000000",
            "1800000000", "1800000000000", "1800000000.999", "  42  ", "0x10", "1_000", "--1",
            "4.2e", ".5", "5.", "+7",
        ])
        .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// A JSON leaf: null, a boolean, a number (integer, huge, float), a string.
pub fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        tricky_string().prop_map(Value::String),
        number_string().prop_map(Value::String),
    ]
}

/// Any JSON value, nested at most `depth` levels, with object keys from `keys` or arbitrary.
pub fn json_with_keys(depth: u32, keys: Vec<&'static str>) -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(depth, 48, 6, move |inner| {
        let key = prop_oneof![
            3 => prop::sample::select(keys.clone()).prop_map(String::from),
            1 => tricky_string(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any JSON value, nested at most 4 levels.
pub fn json() -> impl Strategy<Value = Value> {
    json_with_keys(
        4,
        vec![
            "id", "S", "N", "M", "L", "version", "scope", "preset", "layout",
        ],
    )
}

/// `value` (mostly), another JSON value, or absent.
fn maybe(value: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        4 => value.prop_map(Some),
        1 => json_with_keys(2, vec!["attribute", "format"]).prop_map(Some),
        2 => Just(None),
    ]
    .boxed()
}

fn name() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "id", "userId", "user", "tenantId", "isCurrent", "status", "lastActivity", "createdAt",
            "expires", "expiredAt", "sessionTimeout", "ipAddress", "sess", "sess.user.id", "", ".",
            "a..b", "pk", "sk", "type",
        ])
        .prop_map(|s| json!(s)),
        1 => tricky_string().prop_map(Value::String),
    ]
}

fn time_field() -> impl Strategy<Value = Value> {
    (
        name(),
        prop_oneof![
            4 => prop::sample::select(vec!["epoch-seconds", "epoch-millis", "iso-8601", "iso8601"])
                .prop_map(|s| json!(s)),
            1 => json_leaf(),
        ],
    )
        .prop_map(|(a, f)| json!({"attribute": a, "format": f}))
}

fn names() -> impl Strategy<Value = Value> {
    prop_oneof![
        name(),
        prop::collection::vec(name(), 0..4).prop_map(Value::Array)
    ]
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect::<Map<_, _>>(),
    )
}

/// A `custom` layout object: every field present or not, mostly of the right shape.
pub fn custom_layout() -> impl Strategy<Value = Value> {
    let active = (
        maybe(name()),
        maybe(name()),
        maybe(prop::collection::vec(name(), 0..3).prop_map(Value::Array)),
        maybe(name()),
        maybe(any::<bool>().prop_map(Value::Bool)),
    )
        .prop_map(|(flag, status, values, ended, exists)| {
            object(vec![
                ("flag", flag),
                ("status", status),
                ("activeValues", values),
                ("endedValue", ended),
                ("exists", exists),
            ])
        });
    let idle = (
        maybe(name()),
        maybe(prop::sample::select(vec!["seconds", "minutes", "hours"]).prop_map(|s| json!(s))),
        maybe(prop_oneof![any::<i64>().prop_map(Value::from), json_leaf()]),
    )
        .prop_map(|(a, u, d)| object(vec![("attribute", a), ("unit", u), ("defaultSeconds", d)]));
    let end = (
        maybe(prop::sample::select(vec!["set", "delete", "drop"]).prop_map(|s| json!(s))),
        maybe(time_field()),
    )
        .prop_map(|(a, e)| object(vec![("action", a), ("endedAt", e)]));
    (
        (
            maybe(prop_oneof![4 => Just(json!("custom")), 1 => json_leaf()]),
            maybe(name()),
            maybe(tricky_string().prop_map(Value::String)),
            maybe(names()),
            maybe(names()),
            maybe(active),
        ),
        (
            maybe(time_field()),
            maybe(time_field()),
            maybe(time_field()),
            maybe(idle),
            maybe(time_field()),
            maybe(any::<bool>().prop_map(Value::Bool)),
        ),
        (maybe(end), maybe(name()), maybe(name()), maybe(name())),
    )
        .prop_map(
            |(
                (layout, key, prefix, user, tenant, active),
                (last, created, absolute, idle, ttl, ttl_is_deadline),
                (end, ip, ua, parent),
            )| {
                object(vec![
                    ("layout", layout),
                    ("key", key),
                    ("prefix", prefix),
                    ("user", user),
                    ("tenant", tenant),
                    ("active", active),
                    ("lastActivity", last),
                    ("createdAt", created),
                    ("absoluteExpiry", absolute),
                    ("idleTimeout", idle),
                    ("ttl", ttl),
                    ("ttlIsDeadline", ttl_is_deadline),
                    ("end", end),
                    ("ip", ip),
                    ("userAgent", ua),
                    ("parent", parent),
                ])
            },
        )
}

/// A preset object with options, mostly of the right shape.
pub fn preset_layout() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            4 => prop::sample::select(vec!["native", "connect-dynamodb", "authjs"]).prop_map(|s| json!(s)),
            1 => json_leaf(),
        ],
        maybe(name()),
        maybe(tricky_string().prop_map(Value::String)),
        maybe(prop::collection::vec(name(), 0..3).prop_map(Value::Array)),
        maybe(name()),
        maybe(name()),
        maybe(name()),
        maybe(name()),
    )
        .prop_map(|(preset, hash_key, prefix, user_paths, tenant, pk, sk, index)| {
            object(vec![
                ("preset", Some(preset)),
                ("hashKey", hash_key),
                ("prefix", prefix),
                ("userPaths", user_paths),
                ("tenantPath", tenant),
                ("partitionKey", pk),
                ("sortKey", sk),
                ("indexName", index),
            ])
        })
}

/// `SESSION_LAYOUT` as JSON: a custom layout, a preset, or anything.
pub fn layout_json() -> impl Strategy<Value = Value> {
    prop_oneof![3 => custom_layout(), 2 => preset_layout(), 1 => json()]
}
