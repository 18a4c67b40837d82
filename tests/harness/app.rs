//! What the app does to its sessions table, as the tests play it: updates and deletes of session
//! items, attribute values, and the REMOVE records of DynamoDB's TTL.

use aws_sdk_dynamodb::types::AttributeValue;
use sessionwarden_core::session::SessionId;

use crate::TestEnv;

impl TestEnv {
    /// The app's write: `UpdateItem SET` of string/number attributes on one session.
    pub async fn app_update(&self, id: &SessionId, set: &[(&str, AttributeValue)]) {
        let mut expr = Vec::new();
        let mut req = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.resources.sessions_table)
            .key("sessionId", AttributeValue::S(id.expose().into()));
        for (i, (name, value)) in set.iter().enumerate() {
            expr.push(format!("#a{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#a{i}"), *name)
                .expression_attribute_values(format!(":v{i}"), value.clone());
        }
        req.update_expression(format!("SET {}", expr.join(", ")))
            .send()
            .await
            .expect("app update");
    }

    /// The app deletes a session item.
    pub async fn app_delete(&self, id: &SessionId) {
        self.clients
            .dynamodb
            .delete_item()
            .table_name(&self.resources.sessions_table)
            .key("sessionId", AttributeValue::S(id.expose().into()))
            .send()
            .await
            .expect("app delete");
    }
}

/// `S` attribute value.
pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// `N` attribute value.
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A REMOVE record exactly as DynamoDB's TTL delivers it (moto does not run TTL, and DynamoDB
/// Local's TTL records say `UNKNOWN_TO_SDK_VERSION` with no `userIdentity`), built from a
/// real INSERT or MODIFY record: its NewImage becomes the OldImage, re-keyed to `session` and
/// given `old_status`; `userIdentity` is the DynamoDB service principal.
pub fn ttl_remove(
    from: &serde_json::Value,
    session: &SessionId,
    old_status: &str,
    seq: &str,
) -> serde_json::Value {
    let mut r = crate::ttl_remove_of(from, seq);
    let db = &mut r["dynamodb"];
    db["OldImage"]["sessionId"] = serde_json::json!({"S": session.expose()});
    db["OldImage"]["status"] = serde_json::json!({"S": old_status});
    db["Keys"] = serde_json::json!({"sessionId": {"S": session.expose()}});
    r
}
