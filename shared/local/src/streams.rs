//! Reads a table's DynamoDB stream with the Streams API (GetRecords) and wraps the records in the
//! exact shape Lambda's event source mapping delivers (`{"Records": [...]}`), so local runs and
//! tests feed the stream worker real records, not hand-written ones. Not used in production,
//! where Lambda does this.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde_json::{json, Map, Value};

use sessionwarden_aws::{sdk_error, PortError};

/// A position in every shard of one stream.
#[derive(Debug)]
pub struct StreamTail {
    client: Client,
    stream_arn: String,
    /// Next iterator per shard (`None` once a closed shard is drained).
    iterators: BTreeMap<String, Option<String>>,
    /// Event IDs already returned. moto hands out duplicate sequence numbers when writes race
    /// (its server is threaded), and its iterator then steps back and cycles; real DynamoDB
    /// never repeats a record. Remembering what was returned keeps every record exactly once.
    seen: HashSet<String>,
}

/// DynamoDB JSON of one attribute value, as in a Lambda event.
pub fn attribute_json(v: &AttributeValue) -> Value {
    use aws_smithy_types::base64::encode;
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": encode(b.as_ref())}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::Bs(v) => {
            json!({"BS": v.iter().map(|b| encode(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::M(m) => json!({"M": item_json(m)}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::Null(b) => json!({"NULL": b}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        _ => json!({"NULL": true}),
    }
}

fn item_json(m: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect::<Map<_, _>>(),
    )
}

/// One stream record in Lambda's event shape.
pub fn lambda_record(r: &Record, stream_arn: &str, region: &str) -> Value {
    let mut out = Map::new();
    out.insert("eventID".into(), json!(r.event_id()));
    out.insert(
        "eventName".into(),
        json!(r.event_name().map(|e| e.as_str())),
    );
    out.insert(
        "eventVersion".into(),
        json!(r.event_version().unwrap_or("1.1")),
    );
    out.insert(
        "eventSource".into(),
        json!(r.event_source().unwrap_or("aws:dynamodb")),
    );
    out.insert("awsRegion".into(), json!(r.aws_region().unwrap_or(region)));
    out.insert("eventSourceARN".into(), json!(stream_arn));
    if let Some(u) = r.user_identity() {
        out.insert(
            "userIdentity".into(),
            json!({"type": u.r#type(), "principalId": u.principal_id()}),
        );
    }
    if let Some(d) = r.dynamodb() {
        let mut db = Map::new();
        if let Some(t) = d.approximate_creation_date_time() {
            db.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
        }
        if let Some(k) = d.keys() {
            db.insert("Keys".into(), item_json(k));
        }
        if let Some(n) = d.new_image() {
            db.insert("NewImage".into(), item_json(n));
        }
        if let Some(o) = d.old_image() {
            db.insert("OldImage".into(), item_json(o));
        }
        db.insert("SequenceNumber".into(), json!(d.sequence_number()));
        db.insert("SizeBytes".into(), json!(d.size_bytes().unwrap_or(0)));
        db.insert(
            "StreamViewType".into(),
            json!(d.stream_view_type().map(|s| s.as_str())),
        );
        out.insert("dynamodb".into(), Value::Object(db));
    }
    Value::Object(out)
}

/// The whole Lambda event for a list of records.
pub fn lambda_event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

impl StreamTail {
    /// Starts at the beginning (TRIM_HORIZON) of every shard of `stream_arn`.
    pub async fn from_start(
        client: Client,
        stream_arn: impl Into<String>,
    ) -> Result<Self, PortError> {
        let stream_arn = stream_arn.into();
        let desc = client
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .map_err(|e| sdk_error("DynamoDBStreams.DescribeStream", e))?;
        let mut iterators = BTreeMap::new();
        for shard in desc
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let Some(id) = shard.shard_id() else { continue };
            let it = client
                .get_shard_iterator()
                .stream_arn(&stream_arn)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| sdk_error("DynamoDBStreams.GetShardIterator", e))?;
            iterators.insert(id.to_string(), it.shard_iterator);
        }
        Ok(StreamTail {
            client,
            stream_arn,
            iterators,
            seen: HashSet::new(),
        })
    }

    /// Every record written since the last call, in Lambda's shape, shard by shard in order.
    pub async fn next_records(&mut self) -> Result<Vec<Value>, PortError> {
        let mut out = Vec::new();
        for it in self.iterators.values_mut() {
            while let Some(current) = it.clone() {
                let page = self
                    .client
                    .get_records()
                    .shard_iterator(&current)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DynamoDBStreams.GetRecords", e))?;
                let mut fresh = 0;
                for r in page.records() {
                    if self
                        .seen
                        .insert(r.event_id().unwrap_or_default().to_string())
                    {
                        out.push(lambda_record(r, &self.stream_arn, "us-east-1"));
                        fresh += 1;
                    }
                }
                *it = page.next_shard_iterator;
                // An empty page: the shard is read up to now. A page of records already
                // returned: the emulator's iterator stepped back (see `seen`); stop here too.
                if fresh == 0 {
                    break;
                }
            }
        }
        Ok(out)
    }
}
