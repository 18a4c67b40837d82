//! Seeding and whole-table reads of the sessions table, for `sessionctl`, the demo and the tests.
//! Unconditional writes: never used by a worker.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt, TryStreamExt};
use sessionwarden_aws::items::{self, ItemError};
use sessionwarden_aws::sessions::DynamoSessions;
use sessionwarden_aws::PortError;
use sessionwarden_core::session::{Session, SessionId};

/// The sessions table, for seeding and reports.
#[derive(Clone, Debug)]
pub struct SeedTable {
    client: Client,
    table: String,
}

impl SeedTable {
    /// Tooling over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        SeedTable {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The session adapter the workers use, over the same table.
    pub fn adapter(&self) -> DynamoSessions {
        DynamoSessions::new(self.client.clone(), self.table.clone())
    }

    /// Reads one session with a consistent read.
    pub async fn get(
        &self,
        id: &SessionId,
    ) -> Result<Option<Result<Session, ItemError>>, PortError> {
        self.adapter().get(id).await
    }

    /// Writes sessions with BatchWriteItem (25 per request, 8 requests in flight), retrying
    /// unprocessed items. For seeding: unconditional, so it overwrites.
    pub async fn put_sessions(&self, sessions: &[Session]) -> Result<(), PortError> {
        let (client, table) = (&self.client, self.table.as_str());
        stream::iter(sessions.chunks(sessionwarden_aws::batch::MAX_WRITE))
            .map(|chunk| async move {
                let writes: Vec<WriteRequest> = chunk
                    .iter()
                    .map(|s| {
                        PutRequest::builder()
                            .set_item(Some(items::session_to_item(s)))
                            .build()
                            .map(|p| WriteRequest::builder().put_request(p).build())
                            .map_err(|e| PortError::Permanent {
                                operation: "DynamoDB.BatchWriteItem",
                                source: Box::new(e),
                            })
                    })
                    .collect::<Result<_, _>>()?;
                sessionwarden_aws::batch::write_all(client, table, writes)
                    .await
                    .map(|_| ())
            })
            .buffer_unordered(8)
            .try_collect::<()>()
            .await
    }

    /// Reads the whole table. For reports and tests on small tables only.
    pub async fn scan_all(&self) -> Result<Vec<Result<Session, ItemError>>, PortError> {
        let found = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sessionwarden_aws::sdk_error("DynamoDB.Scan", e))?;
        Ok(found.iter().map(items::session_from_item).collect())
    }
}
