//! Creates sessionwarden's resources against whatever endpoint the SDK is configured for: the
//! sessions table (stream, TTL, GSIs), the state table, the cascade queue with its dead-letter
//! queue, and the alerts topic. Used by `sessionctl init` and by the integration tests, so local
//! runs and tests use one definition. `infra/` holds the production equivalent (CloudFormation).
//! Re-running with the same prefix reuses what already exists.

use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use sessionwarden_aws::state::{STATE_PK, STATE_SK};
use sessionwarden_aws::{sdk_error, AwsClients, PortError};
use sessionwarden_core::layout::Layout;
use sessionwarden_core::session::{attr, PARENT_INDEX, SWEEP_INDEX, TENANT_INDEX, USER_INDEX};

/// What `init` created, and the environment the workers need to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// Sessions table name.
    pub sessions_table: String,
    /// State table name.
    pub state_table: String,
    /// Stream ARN of the sessions table.
    pub sessions_stream_arn: Option<String>,
    /// Cascade queue URL.
    pub cascade_queue_url: String,
    /// Dead-letter queue URL.
    pub dead_letter_queue_url: String,
    /// Alerts topic ARN.
    pub alerts_topic_arn: String,
    /// Session events topic ARN.
    pub events_topic_arn: String,
}

impl Resources {
    /// The worker environment as `(KEY, VALUE)` pairs, in a stable order.
    pub fn env(&self, metrics_namespace: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SESSIONS_TABLE", self.sessions_table.clone()),
            ("STATE_TABLE", self.state_table.clone()),
            ("CASCADE_QUEUE_URL", self.cascade_queue_url.clone()),
            ("DEAD_LETTER_QUEUE_URL", self.dead_letter_queue_url.clone()),
            ("ALERTS_TOPIC_ARN", self.alerts_topic_arn.clone()),
            ("SESSION_EVENTS_TOPIC_ARN", self.events_topic_arn.clone()),
            ("METRICS_NAMESPACE", metrics_namespace.to_string()),
        ]
    }
}

fn key(name: &str, kt: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kt)
        .build()
        .unwrap_or_else(|_| unreachable!("name and key type are set"))
}

fn attr_def(name: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .unwrap_or_else(|_| unreachable!("name and type are set"))
}

fn gsi(name: &str, hash: &str, range: &str, include: &[&str]) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(include.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .build()
        .unwrap_or_else(|_| unreachable!("name, keys and projection are set"))
}

/// Creates the sessions table with its stream, TTL and GSIs, or reuses an existing one.
/// Returns the stream ARN.
pub async fn create_sessions_table(
    clients: &AwsClients,
    table: &str,
) -> Result<Option<String>, PortError> {
    use ScalarAttributeType::{N, S};
    // `terminatedBy` lets a redelivered cascade page recognise the sessions its own job ended.
    let cascade_attrs = [attr::STATUS, attr::USER_ID, attr::TENANT_ID, "terminatedBy"];
    let created = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(attr::SESSION_ID, KeyType::Hash))
        .attribute_definitions(attr_def(attr::SESSION_ID, S))
        .attribute_definitions(attr_def(attr::USER_ID, S))
        .attribute_definitions(attr_def(attr::TENANT_ID, S))
        .attribute_definitions(attr_def(attr::PARENT_SESSION_ID, S))
        .attribute_definitions(attr_def(attr::STATUS, S))
        .attribute_definitions(attr_def(attr::CREATED_AT, N))
        .attribute_definitions(attr_def(attr::SWEEP_AT, N))
        .global_secondary_indexes(gsi(
            USER_INDEX,
            attr::USER_ID,
            attr::CREATED_AT,
            &cascade_attrs,
        ))
        .global_secondary_indexes(gsi(
            TENANT_INDEX,
            attr::TENANT_ID,
            attr::CREATED_AT,
            &cascade_attrs,
        ))
        .global_secondary_indexes(gsi(
            PARENT_INDEX,
            attr::PARENT_SESSION_ID,
            attr::CREATED_AT,
            &cascade_attrs,
        ))
        .global_secondary_indexes(gsi(
            SWEEP_INDEX,
            attr::STATUS,
            attr::SWEEP_AT,
            &[
                attr::LAST_ACTIVITY_AT,
                attr::CREATED_AT,
                attr::IDLE_TIMEOUT_SECONDS,
                attr::ABSOLUTE_EXPIRES_AT,
            ],
        ))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap_or_else(|_| unreachable!("stream_enabled is set")),
        )
        .send()
        .await;
    reuse_existing(created)?;
    enable_ttl(clients, table).await?;
    stream_arn(clients, table).await
}

/// Creates the state table (`pk`, `sk`, TTL `expiresAt`) or reuses an existing one.
pub async fn create_state_table(clients: &AwsClients, table: &str) -> Result<(), PortError> {
    let created = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(STATE_PK, KeyType::Hash))
        .key_schema(key(STATE_SK, KeyType::Range))
        .attribute_definitions(attr_def(STATE_PK, ScalarAttributeType::S))
        .attribute_definitions(attr_def(STATE_SK, ScalarAttributeType::S))
        .send()
        .await;
    reuse_existing(created)?;
    enable_ttl(clients, table).await
}

/// Creates (or reuses) a sessions table shaped as `layout` stores sessions, with a
/// NEW_AND_OLD_IMAGES stream: the native table, an
/// express-session table as connect-dynamodb creates it (`id`), the Auth.js adapter's table
/// (`pk`, `sk`, `GSI1` over `GSI1PK`/`GSI1SK`), or a custom table keyed by its key attribute.
/// Returns the stream ARN.
pub async fn create_layout_table(
    clients: &AwsClients,
    table: &str,
    layout: &Layout,
) -> Result<Option<String>, PortError> {
    use ScalarAttributeType::S;
    let m = match layout {
        Layout::Native => return create_sessions_table(clients, table).await,
        Layout::Mapped(m) => m,
    };
    let mut req = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap_or_else(|_| unreachable!("stream_enabled is set")),
        );
    req = match &m.home {
        None => req
            .key_schema(key(&m.id.attribute, KeyType::Hash))
            .attribute_definitions(attr_def(&m.id.attribute, S)),
        Some(home) => req
            .key_schema(key(&home.attribute, KeyType::Hash))
            .key_schema(key(&m.id.attribute, KeyType::Range))
            .attribute_definitions(attr_def(&home.attribute, S))
            .attribute_definitions(attr_def(&m.id.attribute, S)),
    };
    if let Some(ix) = &m.id_index {
        // The Auth.js adapter's GSI1: GSI1PK (hash) and GSI1SK (range), all attributes.
        let sk = ix.key.attribute.replace("PK", "SK");
        req = req
            .attribute_definitions(attr_def(&ix.key.attribute, S))
            .attribute_definitions(attr_def(&sk, S))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&ix.name)
                    .key_schema(key(&ix.key.attribute, KeyType::Hash))
                    .key_schema(key(&sk, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap_or_else(|_| unreachable!("name, keys and projection are set")),
            );
    }
    reuse_existing(req.send().await)?;
    // No TTL on the layout's own attribute: DynamoDB Local deletes expired items within seconds,
    // which would hide the TTL-lateness window (expires passed, item still there) that cleanup
    // closes and the tests and demo show. On AWS the app's table keeps its own TTL setting.
    stream_arn(clients, table).await
}

/// Like [`init`], with the sessions table shaped as `layout` stores sessions.
pub async fn init_with_layout(
    clients: &AwsClients,
    prefix: &str,
    layout: &Layout,
) -> Result<Resources, PortError> {
    let sessions_table = format!("{prefix}-sessions");
    let stream = create_layout_table(clients, &sessions_table, layout).await?;
    let mut r = init(clients, prefix).await?;
    r.sessions_stream_arn = stream;
    Ok(r)
}

async fn enable_ttl(clients: &AwsClients, table: &str) -> Result<(), PortError> {
    enable_ttl_on(clients, table, attr::EXPIRES_AT).await
}

async fn enable_ttl_on(
    clients: &AwsClients,
    table: &str,
    attribute: &str,
) -> Result<(), PortError> {
    let r = clients
        .dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .unwrap_or_else(|_| unreachable!("enabled and attribute are set")),
        )
        .send()
        .await;
    match r {
        Ok(_) => Ok(()),
        // Re-running init: TTL is already enabled.
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().message())
                // Re-running init, or a layout table whose TTL is on its own attribute.
                .is_some_and(|m| {
                    m.contains("already enabled") || m.contains("active on a different")
                }) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error("DynamoDB.UpdateTimeToLive", e)),
    }
}

/// A CreateTable that found the table already there is a success: `init` is re-runnable.
fn reuse_existing<T>(
    created: Result<
        T,
        aws_smithy_runtime_api::client::result::SdkError<
            CreateTableError,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
) -> Result<(), PortError> {
    match created {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error("DynamoDB.CreateTable", e)),
    }
}

/// Creates (or reuses) every resource for `prefix`: `PREFIX-sessions`, `PREFIX-state`,
/// `PREFIX-cascade`, `PREFIX-cascade-dlq` and `PREFIX-alerts`.
pub async fn init(clients: &AwsClients, prefix: &str) -> Result<Resources, PortError> {
    let sessions_table = format!("{prefix}-sessions");
    let state_table = format!("{prefix}-state");
    let sessions_stream_arn = create_sessions_table(clients, &sessions_table).await?;
    create_state_table(clients, &state_table).await?;

    let dlq = clients
        .sqs
        .create_queue()
        .queue_name(format!("{prefix}-cascade-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| sdk_error("SQS.CreateQueue", e))?;
    let dead_letter_queue_url = dlq.queue_url.unwrap_or_default();
    let dlq_arn = queue_arn(clients, &dead_letter_queue_url).await?;
    let redrive =
        serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5 }).to_string();
    let cascade = clients
        .sqs
        .create_queue()
        .queue_name(format!("{prefix}-cascade"))
        .attributes(QueueAttributeName::VisibilityTimeout, "360")
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| sdk_error("SQS.CreateQueue", e))?;
    let topic = clients
        .sns
        .create_topic()
        .name(format!("{prefix}-alerts"))
        .send()
        .await
        .map_err(|e| sdk_error("SNS.CreateTopic", e))?;
    let events = clients
        .sns
        .create_topic()
        .name(format!("{prefix}-session-events"))
        .send()
        .await
        .map_err(|e| sdk_error("SNS.CreateTopic", e))?;
    Ok(Resources {
        sessions_table,
        state_table,
        sessions_stream_arn,
        cascade_queue_url: cascade.queue_url.unwrap_or_default(),
        dead_letter_queue_url,
        alerts_topic_arn: topic.topic_arn.unwrap_or_default(),
        events_topic_arn: events.topic_arn.unwrap_or_default(),
    })
}

/// Deletes the two tables of `prefix` (tests call this to keep the emulator small).
pub async fn delete_tables(clients: &AwsClients, prefix: &str) -> Result<(), PortError> {
    for t in [format!("{prefix}-sessions"), format!("{prefix}-state")] {
        match clients.dynamodb.delete_table().table_name(&t).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(sdk_error("DynamoDB.DeleteTable", e)),
        }
    }
    Ok(())
}

/// Creates an SQS queue subscribed to the alerts topic (an "inbox"), for local runs and tests
/// that want to see alerts as a subscriber does: a FIFO queue (`<queue_name>.fifo`) for a FIFO
/// topic. Returns the queue URL.
pub async fn subscribe_inbox(
    clients: &AwsClients,
    topic_arn: &str,
    queue_name: &str,
) -> Result<String, PortError> {
    // A FIFO topic delivers only to FIFO queues, whose names end in `.fifo`.
    let fifo = topic_arn.ends_with(".fifo");
    let mut create = clients.sqs.create_queue();
    if fifo {
        create = create
            .queue_name(format!("{queue_name}.fifo"))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
    } else {
        create = create.queue_name(queue_name);
    }
    let url = create
        .send()
        .await
        .map_err(|e| sdk_error("SQS.CreateQueue", e))?
        .queue_url
        .unwrap_or_default();
    let arn = queue_arn(clients, &url).await?;
    clients
        .sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .map_err(|e| sdk_error("SNS.Subscribe", e))?;
    Ok(url)
}

/// Receives and deletes every message currently in a queue; returns their bodies.
pub async fn drain_queue(clients: &AwsClients, queue_url: &str) -> Result<Vec<String>, PortError> {
    let mut out = Vec::new();
    loop {
        let msgs = crate::queues::receive_and_delete(&clients.sqs, queue_url).await?;
        if msgs.is_empty() {
            return Ok(out);
        }
        out.extend(msgs.into_iter().map(|m| m.body.unwrap_or_default()));
    }
}

/// The stream ARN of an existing table.
pub async fn stream_arn(clients: &AwsClients, table: &str) -> Result<Option<String>, PortError> {
    let desc = clients
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error("DynamoDB.DescribeTable", e))?;
    Ok(desc.table.and_then(|t| t.latest_stream_arn))
}

/// The ARN of a queue, from its URL.
pub async fn queue_arn(clients: &AwsClients, queue_url: &str) -> Result<String, PortError> {
    Ok(clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("SQS.GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default())
}
