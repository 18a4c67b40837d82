//! DynamoDB's batch calls, whole: BatchGetItem in requests of 100 keys and BatchWriteItem in
//! requests of 25 writes, each retrying what DynamoDB left unprocessed with [`crate::retry_pause`]
//! backoff. One place, so every adapter (and the local seeding) pages and retries the same way.

use aws_sdk_dynamodb::types::{KeysAndAttributes, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::items::Item;
use crate::{PortError, PortResult};

/// Keys per BatchGetItem request (DynamoDB's limit).
pub const MAX_GET: usize = 100;
/// Writes per BatchWriteItem request (DynamoDB's limit).
pub const MAX_WRITE: usize = 25;
/// Attempts at the unprocessed part of one request before giving up (transiently).
const ATTEMPTS: u32 = 8;

/// Reads `keys` of `table`, in any order. Returns the items found and the requests sent.
pub async fn get_all(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    consistent: bool,
) -> PortResult<(Vec<Item>, u64)> {
    let mut found = Vec::new();
    let mut requests = 0;
    for chunk in keys.chunks(MAX_GET) {
        let mut pending = chunk.to_vec();
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            crate::retry_pause(attempt, 25).await;
            let ka = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(consistent)
                .build()
                .map_err(|e| PortError::Permanent {
                    operation: "DynamoDB.BatchGetItem",
                    source: Box::new(e),
                })?;
            let resp = client
                .batch_get_item()
                .request_items(table, ka)
                .send()
                .await
                .map_err(|e| crate::sdk_error("DynamoDB.BatchGetItem", e))?;
            requests += 1;
            found.extend(
                resp.responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default(),
            );
            pending = resp
                .unprocessed_keys
                .and_then(|mut m| m.remove(table))
                .map(|ka| ka.keys)
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(PortError::Transient {
                operation: "DynamoDB.BatchGetItem",
                source: format!("{} keys still unprocessed after retries", pending.len()).into(),
            });
        }
    }
    Ok((found, requests))
}

/// Applies `writes` (puts and deletes) to `table`. Returns the requests sent.
pub async fn write_all(client: &Client, table: &str, writes: Vec<WriteRequest>) -> PortResult<u64> {
    let mut requests = 0;
    for chunk in writes.chunks(MAX_WRITE) {
        let mut pending = chunk.to_vec();
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            crate::retry_pause(attempt, 25).await;
            let resp = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| crate::sdk_error("DynamoDB.BatchWriteItem", e))?;
            requests += 1;
            pending = resp
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(PortError::Transient {
                operation: "DynamoDB.BatchWriteItem",
                source: format!("{} writes still unprocessed after retries", pending.len()).into(),
            });
        }
    }
    Ok(requests)
}
