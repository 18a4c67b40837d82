//! SQS dead-letter adapter: a malformed record goes to `DEAD_LETTER_QUEUE_URL` exactly as it was
//! received, wrapped with its reason and sequence number, so nothing is lost and an operator can
//! replay it after a fix. The queue holds raw records (and so raw session IDs): restrict its access.
//!
//! Each letter carries a stable `letterId` (body field and message attribute), derived from its
//! worker and sequence number (or message ID), never from the attempt. The stream worker sends a
//! letter once per record, but the queue is a standard queue (it is also the redrive target of
//! the cascade queue and the stream's on-failure destination, and those must be standard): a
//! SendMessageBatch whose response was lost is sent again by the SDK, and SQS itself delivers at
//! least once. A consumer drops a repeated `letterId`.

use aws_sdk_sqs::Client;

use crate::PortError;
use sessionwarden_core::ports::{DeadLetter, DeadLetters};

use crate::sqs::{Outgoing, MAX_BATCH};
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

    /// The stable ID of one letter: the same for every attempt at the same record.
    pub fn letter_id(&self, l: &DeadLetter) -> String {
        l.id(self.source)
    }

    /// The message body of one letter. A record too large for one SQS message is cut to a
    /// prefix of its JSON text and marked `truncated`, so it still cannot block the shard.
    pub fn body(&self, l: &DeadLetter) -> String {
        let id = self.letter_id(l);
        let full = serde_json::json!({
            "letterId": id,
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
            "letterId": id,
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
    /// Sends letters in batches of at most 10 entries and 250 KB; an entry still refused after
    /// retries is an error.
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
            let messages = chunk
                .into_iter()
                .map(|l| Outgoing {
                    body: self.body(l),
                    id: Some(("letterId", self.letter_id(l))),
                })
                .collect();
            crate::sqs::send_batch(&self.client, &self.queue_url, messages).await?;
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
        assert_eq!(v["letterId"], d.letter_id(&big));
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
