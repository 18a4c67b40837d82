//! [`Tail`]: the tests' reader of a table's stream. It is the production
//! [`StreamTail`](sessionwarden_local::streams::StreamTail), plus a recovery from one DynamoDB
//! Local defect.
//!
//! DynamoDB Local numbers stream records with one counter for all tables. A shard iterator taken
//! while a shard is still empty (as a test takes it, before its first write) points at the
//! counter's next value; when another table's write takes that value first, which happens
//! whenever tests share one DynamoDB Local, reading the iterator fails with
//! `TrimmedDataAccessException` ("read past the oldest stream record"). Once a shard holds a
//! record, its iterators work. So on that error [`Tail`] starts a new `StreamTail` at
//! TRIM_HORIZON, as a consumer of AWS does after a trim, and drops the records that an earlier
//! tail already returned. In normal operation it passes the `StreamTail`'s output through
//! untouched, so the tests still check `StreamTail` itself.

use std::collections::HashSet;

use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use sessionwarden_core::error::PortError;
use sessionwarden_local::streams::StreamTail;

/// How many times one read starts over before it gives up.
const MAX_RESTARTS: usize = 5;

/// A stream reader that survives DynamoDB Local's trimmed-iterator defect (see the module docs).
pub struct Tail {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    inner: StreamTail,
    /// Event IDs returned by the current inner tail.
    current: HashSet<String>,
    /// Event IDs returned by earlier inner tails: a restarted tail reads them again.
    earlier: HashSet<String>,
}

fn event_id(r: &serde_json::Value) -> String {
    r["eventID"].as_str().unwrap_or_default().to_string()
}

fn is_trimmed(e: &PortError) -> bool {
    let PortError::Permanent { source, .. } = e else {
        return false;
    };
    source
        .downcast_ref::<SdkError<GetRecordsError, HttpResponse>>()
        .and_then(|e| e.as_service_error())
        .is_some_and(|e| e.is_trimmed_data_access_exception())
}

impl Tail {
    /// Starts at the beginning (TRIM_HORIZON) of every shard of `stream_arn`.
    pub async fn from_start(
        client: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
    ) -> Result<Self, PortError> {
        let inner = StreamTail::from_start(client.clone(), stream_arn.clone()).await?;
        Ok(Tail {
            client,
            stream_arn,
            inner,
            current: HashSet::new(),
            earlier: HashSet::new(),
        })
    }

    /// Every record written since the last call, in Lambda's shape (see
    /// [`StreamTail::next_records`]).
    pub async fn next_records(&mut self) -> Result<Vec<serde_json::Value>, PortError> {
        for _ in 0..MAX_RESTARTS {
            match self.inner.next_records().await {
                Ok(records) => {
                    let fresh: Vec<serde_json::Value> = records
                        .into_iter()
                        .filter(|r| !self.earlier.contains(&event_id(r)))
                        .collect();
                    self.current.extend(fresh.iter().map(event_id));
                    return Ok(fresh);
                }
                Err(e) if is_trimmed(&e) => {
                    self.inner =
                        StreamTail::from_start(self.client.clone(), self.stream_arn.clone())
                            .await?;
                    self.earlier.extend(self.current.drain());
                }
                Err(e) => return Err(e),
            }
        }
        panic!("the stream of {} stayed trimmed", self.stream_arn);
    }
}
