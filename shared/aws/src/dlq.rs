//! SQS dead-letter adapter: a malformed record goes to `DEAD_LETTER_QUEUE_URL` exactly as it was
//! received, wrapped with its reason and sequence number, so nothing is lost and an operator can
//! replay it after a fix. The queue holds raw records (and so raw session IDs): restrict its access.

use aws_sdk_sqs::Client;

use crate::PortError;
use sessionwarden_core::ports::{DeadLetter, DeadLetters};

use crate::sqs::MAX_BATCH;
/// SQS caps a message, and a whole batch, at 256 KiB; stay clear of it.
const MAX_BYTES: usize = 250_000;

/// The dead-letter queue.
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
    source: &'static str,
}

impl SqsDeadLetters {
    /// A sender to `queue_url`, tagging letters with the worker `source`.
    pub fn new(client: Client, queue_url: impl Into<String>, source: &'static str) -> Self {
        SqsDeadLetters {
            client,
            queue_url: queue_url.into(),
            source,
        }
    }

    /// The message body of one letter. A record too large for one SQS message is cut to a
    /// prefix of its JSON text and marked `truncated`, so it still cannot block the shard.
    pub fn body(&self, l: &DeadLetter) -> String {
        let full = serde_json::json!({
            "source": self.source,
            "reason": l.reason,
            "sequenceNumber": l.seq,
            "record": l.raw,
        })
        .to_string();
        if full.len() <= MAX_BYTES {
            return full;
        }
        let raw = l.raw.to_string();
        let mut cut = MAX_BYTES - 2_000;
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        serde_json::json!({
            "source": self.source,
            "reason": l.reason,
            "sequenceNumber": l.seq,
            "truncated": true,
            "recordBytes": raw.len(),
            "recordPrefix": &raw[..cut],
        })
        .to_string()
    }
}

impl DeadLetters for SqsDeadLetters {
    /// Sends letters in batches of at most 10 entries and 250 KB; any failed entry is an error.
    async fn send(&self, letters: &[DeadLetter]) -> Result<(), PortError> {
        let mut chunks: Vec<Vec<&DeadLetter>> = Vec::new();
        let mut size = 0;
        for l in letters {
            let len = self.body(l).len();
            match chunks.last_mut() {
                Some(c) if c.len() < MAX_BATCH && size + len <= MAX_BYTES => {
                    c.push(l);
                    size += len;
                }
                _ => {
                    chunks.push(vec![l]);
                    size = len;
                }
            }
        }
        for chunk in chunks {
            let bodies = chunk.into_iter().map(|l| self.body(l)).collect();
            crate::sqs::send_batch(&self.client, &self.queue_url, bodies).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_record_is_truncated_below_the_sqs_limit() {
        let client = Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .build(),
        );
        let d = SqsDeadLetters::new(client, "q", "test");
        let big = DeadLetter {
            seq: Some("1".into()),
            reason: "r".into(),
            raw: serde_json::json!({"x": "é".repeat(200_000)}),
        };
        let body = d.body(&big);
        assert!(body.len() <= MAX_BYTES, "{}", body.len());
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["sequenceNumber"], "1");
        let small = DeadLetter {
            seq: None,
            reason: "r".into(),
            raw: serde_json::json!({"x": 1}),
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&d.body(&small)).unwrap()["record"]["x"],
            1
        );
    }
}
