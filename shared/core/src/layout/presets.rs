//! The presets: connect-dynamodb's express-session store and the Auth.js DynamoDB adapter's
//! table, as [`Mapped`] layouts, with the options each takes in `SESSION_LAYOUT`'s JSON form.

use serde::Deserialize;

use super::{Active, End, IdIndex, KeyPart, Mapped, Path, TimeField, TimeFormat};

/// A preset named in `SESSION_LAYOUT`'s JSON form (`{"preset": ...}`), with its options.
#[derive(Deserialize)]
#[serde(tag = "preset", rename_all = "kebab-case")]
pub(super) enum Preset {
    Native,
    ConnectDynamodb(ConnectOptions),
    Authjs(AuthjsOptions),
}

/// Options of the `connect-dynamodb` preset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectOptions {
    /// Hash key attribute (connect-dynamodb's `hashKey`, default `id`).
    #[serde(default = "connect_key")]
    pub hash_key: String,
    /// Prefix of the key (connect-dynamodb's `prefix`, default `sess:`).
    #[serde(default = "connect_prefix")]
    pub prefix: String,
    /// Paths of the user inside `sess`, tried in order.
    #[serde(default = "connect_user_paths")]
    pub user_paths: Vec<String>,
    /// Path of the tenant inside `sess`, if any.
    #[serde(default)]
    pub tenant_path: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            hash_key: connect_key(),
            prefix: connect_prefix(),
            user_paths: connect_user_paths(),
            tenant_path: None,
        }
    }
}

fn connect_key() -> String {
    "id".into()
}
fn connect_prefix() -> String {
    "sess:".into()
}
fn connect_user_paths() -> Vec<String> {
    vec!["user.id".into(), "userId".into(), "passport.user".into()]
}

/// Options of the `authjs` preset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthjsOptions {
    /// Partition key (the adapter's `partitionKey`, default `pk`).
    #[serde(default = "authjs_pk")]
    pub partition_key: String,
    /// Sort key (default `sk`).
    #[serde(default = "authjs_sk")]
    pub sort_key: String,
    /// The GSI over the session token (default `GSI1`, partition key `GSI1PK`).
    #[serde(default = "authjs_index")]
    pub index_name: String,
    /// The partition key of that GSI (default `GSI1PK`).
    #[serde(default = "authjs_index_pk")]
    pub index_partition_key: String,
}

impl Default for AuthjsOptions {
    fn default() -> Self {
        AuthjsOptions {
            partition_key: authjs_pk(),
            sort_key: authjs_sk(),
            index_name: authjs_index(),
            index_partition_key: authjs_index_pk(),
        }
    }
}

fn authjs_pk() -> String {
    "pk".into()
}
fn authjs_sk() -> String {
    "sk".into()
}
fn authjs_index() -> String {
    "GSI1".into()
}
fn authjs_index_pk() -> String {
    "GSI1PK".into()
}

/// What the two TTL-deadline presets share: the item exists while `expires` (epoch seconds, the
/// session's own deadline) is ahead, and sessionwarden ends a session by a conditional delete.
fn expires_only(name: &str, id: KeyPart, user: Vec<Path>, tenant: Vec<Path>) -> Mapped {
    Mapped {
        name: name.into(),
        id,
        home: None,
        home_is_user: false,
        id_index: None,
        kind: None,
        user,
        tenant,
        active: Active::Exists,
        last_activity: None,
        created_at: None,
        absolute_expiry: None,
        idle_timeout: None,
        ttl: Some(TimeField {
            attribute: "expires".into(),
            format: TimeFormat::EpochSeconds,
        }),
        ttl_is_deadline: true,
        end: End::Delete,
        ip: None,
        user_agent: None,
        parent: None,
    }
}

/// The express-session store of connect-dynamodb: `id = sess:<sid>`, `expires` in epoch
/// seconds, `sess` the session as a JSON string (a map in old versions). Active while the item
/// exists and `expires` is ahead; ended by a conditional delete.
pub fn connect_dynamodb(o: &ConnectOptions) -> Mapped {
    let in_sess = |p: &String| Path::parse(&format!("sess.{p}"));
    expires_only(
        "connect-dynamodb",
        KeyPart {
            attribute: o.hash_key.clone(),
            prefix: o.prefix.clone(),
        },
        o.user_paths.iter().map(in_sess).collect(),
        o.tenant_path.iter().map(in_sess).collect(),
    )
}

/// The Auth.js (NextAuth) DynamoDB adapter's single table: session items are
/// `pk = USER#<userId>`, `sk = SESSION#<sessionToken>`, `type = SESSION`, `expires` in epoch
/// seconds (fractional) or ISO-8601. Users, accounts and verification tokens share the table and
/// are not sessions.
pub fn authjs(o: &AuthjsOptions) -> Mapped {
    let session = |attribute: &String| KeyPart {
        attribute: attribute.clone(),
        prefix: "SESSION#".into(),
    };
    Mapped {
        home: Some(KeyPart {
            attribute: o.partition_key.clone(),
            prefix: "USER#".into(),
        }),
        home_is_user: true,
        id_index: Some(IdIndex {
            name: o.index_name.clone(),
            key: session(&o.index_partition_key),
        }),
        kind: Some(("type".into(), "SESSION".into())),
        ..expires_only(
            "authjs",
            session(&o.sort_key),
            vec![Path::parse("userId")],
            vec![],
        )
    }
}
