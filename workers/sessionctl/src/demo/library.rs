//! Two session libraries' own writes, item for item, so the layout demo's table holds what a
//! real app's table holds. Each function does the DynamoDB request the library does:
//!
//! - **connect-dynamodb**, the express-session store (`lib/connect-dynamodb.js` in
//!   <https://github.com/ca98am79/connect-dynamodb>): `set` is a PutItem of
//!   `{id: "sess:<sid>", expires: N (epoch seconds, now + cookie.maxAge), type: "connect-session",
//!   sess: S (JSON.stringify(session))}`; `touch` is an UpdateItem `set expires = :e`; `destroy`
//!   is a DeleteItem. express-session serialises the cookie as
//!   `{originalMaxAge, expires (ISO-8601), httpOnly, path}`; the app puts the user where its
//!   login code does (`user.id`, `userId`, or passport's `passport.user`).
//! - **Auth.js's DynamoDB adapter**, `@auth/dynamodb-adapter`
//!   (`packages/adapter-dynamodb/src/index.ts` in <https://github.com/nextauthjs/next-auth>):
//!   one table, `pk`/`sk` plus the `GSI1` index over `GSI1PK`/`GSI1SK`. `createUser` puts
//!   `{pk: USER#<id>, sk: USER#<id>, type: USER, id, email, GSI1PK: USER#<email>, ...}`;
//!   `linkAccount` puts `{pk: USER#<userId>, sk: ACCOUNT#<provider>#<providerAccountId>,
//!   GSI1PK: ACCOUNT#<provider>, GSI1SK: ACCOUNT#<providerAccountId>, ...account}` (its `type` is
//!   the account's own, e.g. `oauth`); `createSession` puts `{pk: USER#<userId>,
//!   sk: SESSION#<sessionToken>, GSI1PK and GSI1SK: SESSION#<sessionToken>, type: SESSION,
//!   sessionToken, userId, expires}` with `expires` = `Date.getTime() / 1000`, so a fractional
//!   number of seconds; `updateSession` and `deleteSession` find the item through `GSI1`, then
//!   UpdateItem (`set #sessionToken = .., #expires = ..`) or DeleteItem it.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_sdk_dynamodb::Client;

fn s(v: impl Into<String>) -> Av {
    Av::S(v.into())
}

fn iso(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where an express app keeps the logged-in user inside the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAt {
    /// `req.session.user = {id, name}`.
    UserObject,
    /// `req.session.userId = id`.
    UserId,
    /// passport's `req.session.passport = {user: id}`.
    Passport,
}

/// An express-session session object, as the store receives it.
#[derive(Debug, Clone)]
pub struct ExpressSession {
    /// The session ID (the cookie's value, unsigned).
    pub sid: String,
    /// The user, and where the app put it; `None` for an anonymous visitor.
    pub user: Option<(String, UserAt)>,
    /// `cookie.maxAge`, in seconds.
    pub max_age: i64,
    /// Anything else the app keeps in the session (a cart, a return URL).
    pub extra: serde_json::Value,
}

impl ExpressSession {
    /// `JSON.stringify(sess)` as express-session hands it to the store at `at`.
    pub fn to_json(&self, at: i64) -> String {
        let mut v = serde_json::json!({
            "cookie": {
                "originalMaxAge": self.max_age * 1000,
                "expires": iso(at + self.max_age),
                "httpOnly": true,
                "path": "/",
            }
        });
        if let (Some(o), Some(extra)) = (v.as_object_mut(), self.extra.as_object()) {
            for (k, x) in extra {
                o.insert(k.clone(), x.clone());
            }
        }
        if let (Some(o), Some((user, at_))) = (v.as_object_mut(), &self.user) {
            match at_ {
                UserAt::UserObject => {
                    o.insert(
                        "user".into(),
                        serde_json::json!({"id": user, "name": format!("User {user}")}),
                    );
                }
                UserAt::UserId => {
                    o.insert("userId".into(), serde_json::json!(user));
                }
                UserAt::Passport => {
                    o.insert("passport".into(), serde_json::json!({"user": user}));
                }
            }
        }
        v.to_string()
    }
}

/// connect-dynamodb's `DynamoDBStore` with its defaults (`hashKey` `id`, `prefix` `sess:`).
#[derive(Debug, Clone)]
pub struct ConnectStore {
    client: Client,
    table: String,
}

impl ConnectStore {
    /// The store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        ConnectStore {
            client,
            table: table.into(),
        }
    }

    fn key(sid: &str) -> HashMap<String, Av> {
        HashMap::from([("id".to_string(), s(format!("sess:{sid}")))])
    }

    /// `store.set(sid, sess)` at `at`: `expires` = `at + cookie.maxAge`, in whole seconds.
    pub async fn set(&self, sess: &ExpressSession, at: i64) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::key(&sess.sid)))
            .item("expires", Av::N((at + sess.max_age).to_string()))
            .item("type", s("connect-session"))
            .item("sess", s(sess.to_json(at)))
            .send()
            .await
            .context("connect-dynamodb set (PutItem)")?;
        Ok(())
    }

    /// `store.touch(sid, sess)` at `at`: `set expires = :e`.
    pub async fn touch(&self, sess: &ExpressSession, at: i64) -> anyhow::Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&sess.sid)))
            .update_expression("set expires = :e")
            .expression_attribute_values(":e", Av::N((at + sess.max_age).to_string()))
            .send()
            .await
            .context("connect-dynamodb touch (UpdateItem)")?;
        Ok(())
    }

    /// `store.destroy(sid)`: a logout.
    pub async fn destroy(&self, sid: &str) -> anyhow::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(sid)))
            .send()
            .await
            .context("connect-dynamodb destroy (DeleteItem)")?;
        Ok(())
    }
}

/// `Date.getTime() / 1000` of a time in milliseconds, as the adapter stores `expires`.
pub fn js_seconds(ms: i64) -> String {
    let (secs, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if frac == 0 {
        secs.to_string()
    } else {
        format!("{secs}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

/// The Auth.js DynamoDB adapter with its defaults (table keys `pk`/`sk`, index `GSI1`).
#[derive(Debug, Clone)]
pub struct AuthjsAdapter {
    client: Client,
    table: String,
}

impl AuthjsAdapter {
    /// The adapter over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        AuthjsAdapter {
            client,
            table: table.into(),
        }
    }

    async fn put(&self, item: HashMap<String, Av>, what: &'static str) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .context(what)?;
        Ok(())
    }

    /// `createUser`.
    pub async fn create_user(&self, id: &str, email: &str, name: &str) -> anyhow::Result<()> {
        self.put(
            HashMap::from([
                ("pk".into(), s(format!("USER#{id}"))),
                ("sk".into(), s(format!("USER#{id}"))),
                ("type".into(), s("USER")),
                ("id".into(), s(id)),
                ("name".into(), s(name)),
                ("email".into(), s(email)),
                ("emailVerified".into(), Av::Null(true)),
                ("GSI1PK".into(), s(format!("USER#{email}"))),
                ("GSI1SK".into(), s(format!("USER#{email}"))),
            ]),
            "Auth.js createUser (PutItem)",
        )
        .await
    }

    /// `linkAccount` of an OAuth account.
    pub async fn link_account(
        &self,
        user: &str,
        provider: &str,
        provider_account_id: &str,
    ) -> anyhow::Result<()> {
        self.put(
            HashMap::from([
                ("pk".into(), s(format!("USER#{user}"))),
                (
                    "sk".into(),
                    s(format!("ACCOUNT#{provider}#{provider_account_id}")),
                ),
                ("GSI1PK".into(), s(format!("ACCOUNT#{provider}"))),
                ("GSI1SK".into(), s(format!("ACCOUNT#{provider_account_id}"))),
                ("id".into(), s(format!("acct-{provider_account_id}"))),
                ("userId".into(), s(user)),
                ("type".into(), s("oauth")),
                ("provider".into(), s(provider)),
                ("providerAccountId".into(), s(provider_account_id)),
                ("token_type".into(), s("bearer")),
                ("scope".into(), s("read:user user:email")),
            ]),
            "Auth.js linkAccount (PutItem)",
        )
        .await
    }

    /// `createSession({sessionToken, userId, expires})`, `expires_ms` in milliseconds.
    pub async fn create_session(
        &self,
        token: &str,
        user: &str,
        expires_ms: i64,
    ) -> anyhow::Result<()> {
        self.put(
            HashMap::from([
                ("pk".into(), s(format!("USER#{user}"))),
                ("sk".into(), s(format!("SESSION#{token}"))),
                ("GSI1SK".into(), s(format!("SESSION#{token}"))),
                ("GSI1PK".into(), s(format!("SESSION#{token}"))),
                ("type".into(), s("SESSION")),
                ("sessionToken".into(), s(token)),
                ("userId".into(), s(user)),
                ("expires".into(), Av::N(js_seconds(expires_ms))),
            ]),
            "Auth.js createSession (PutItem)",
        )
        .await
    }

    /// The session item's key, found through `GSI1` as the adapter finds it.
    async fn find(&self, token: &str) -> anyhow::Result<Option<HashMap<String, Av>>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("#gsi1pk = :gsi1pk AND #gsi1sk = :gsi1sk")
            .expression_attribute_names("#gsi1pk", "GSI1PK")
            .expression_attribute_names("#gsi1sk", "GSI1SK")
            .expression_attribute_values(":gsi1pk", s(format!("SESSION#{token}")))
            .expression_attribute_values(":gsi1sk", s(format!("SESSION#{token}")))
            .send()
            .await
            .context("Auth.js session lookup (Query GSI1)")?;
        Ok(out.items.unwrap_or_default().into_iter().next().map(|i| {
            i.into_iter()
                .filter(|(k, _)| k == "pk" || k == "sk")
                .collect()
        }))
    }

    /// `updateSession({sessionToken, expires})`: false if no item has the token.
    pub async fn update_session(&self, token: &str, expires_ms: i64) -> anyhow::Result<bool> {
        let Some(key) = self.find(token).await? else {
            return Ok(false);
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("set #sessionToken = :sessionToken, #expires = :expires")
            .expression_attribute_names("#sessionToken", "sessionToken")
            .expression_attribute_names("#expires", "expires")
            .expression_attribute_values(":sessionToken", s(token))
            .expression_attribute_values(":expires", Av::N(js_seconds(expires_ms)))
            .send()
            .await
            .context("Auth.js updateSession (UpdateItem)")?;
        Ok(true)
    }

    /// `deleteSession(sessionToken)`, a sign-out: false if no item has the token.
    pub async fn delete_session(&self, token: &str) -> anyhow::Result<bool> {
        let Some(key) = self.find(token).await? else {
            return Ok(false);
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .context("Auth.js deleteSession (DeleteItem)")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_a_javascript_division() {
        assert_eq!(js_seconds(1_764_081_234_567), "1764081234.567");
        assert_eq!(js_seconds(1_764_081_234_500), "1764081234.5");
        assert_eq!(js_seconds(1_764_081_234_000), "1764081234");
    }

    #[test]
    fn express_session_json_has_the_cookie_and_the_user() {
        let sess = ExpressSession {
            sid: "abc".into(),
            user: Some(("u-1".into(), UserAt::Passport)),
            max_age: 86_400,
            extra: serde_json::json!({"returnTo": "/account"}),
        };
        let v: serde_json::Value = serde_json::from_str(&sess.to_json(0)).unwrap();
        assert_eq!(v["cookie"]["originalMaxAge"], 86_400_000);
        assert_eq!(v["cookie"]["expires"], "1970-01-02T00:00:00.000Z");
        assert_eq!(v["passport"]["user"], "u-1");
        assert_eq!(v["returnTo"], "/account");
    }
}
