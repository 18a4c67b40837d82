"""The Powertools-for-Python peer of the sessionwarden stream worker, for `just bench stream`.

A Lambda handler for DynamoDB stream batches of a sessions table in the native layout
(`NEW_AND_OLD_IMAGES`, delivered with `ReportBatchItemFailures`), run by the real AWS Python Runtime
Interface Client (`python -m awslambdaric peer.handler`). It implements the same rules as the Rust
worker (`workers/stream`, `shared/core/src/stream/`), over the same records, with the same AWS
requests, so the bench compares two implementations of one job and nothing else. It is part of the
bench: never simplify it to move the ratio either way.

Powertools, as a Powertools user would write it:
- `BatchProcessor(event_type=EventType.DynamoDBStreams)` + `process_partial_response` build the
  partial batch response (and raise `BatchProcessingError` when every record failed, Powertools'
  own semantics for "retry the whole batch"). The rules need batch-level requests (one
  TransactWriteItems holds the claims of many sessions, one BatchGetItem reads every counter), so
  the handler first runs the batch, reading every record through the `DynamoDBRecord` data class
  (its `dynamodb.new_image` / `old_image` deserialize the DynamoDB JSON), and the record handler
  then settles each record: a record at or after the batch's failure point raises, so Powertools
  reports it and Lambda retries from the lowest one, exactly the checkpoint the Rust worker
  returns.
- `Logger` (structured JSON logs: the batch summary, anomalies, failures).
- `Metrics` (EMF, namespace `sessionwarden-peer`): the same series as the Rust worker's
  `METRICS_SINK=emf`, dimensioned series through `single_metric`.

The rules, and where each lives in the Rust code:
- Reading a record (`shared/aws/src/stream_record/native.rs` `parse_record`, `mod.rs`
  `native_image`/`number`/`kind_of`): sequence number, event name, `ApproximateCreationDateTime`
  (absent: 0), `Keys.sessionId` (a non-empty S), old and new image (absent, null or `{}`: none;
  keys-only: none), MODIFY without OldImage and INSERT/MODIFY without NewImage are malformed, a
  TTL delete is a REMOVE by the `dynamodb.amazonaws.com` service principal. Image attributes:
  `status` required (ACTIVE | TERMINATED | EXPIRED), S attributes `userId`, `tenantId`,
  `userAgent`, `ipAddress`, `revokeScope`, `terminationReason`, `parentSessionId`, N attributes
  `createdAt`, `lastActivityAt`, `idleTimeoutSeconds`, `absoluteExpiresAt` (a fraction is cut
  off), NULL reads as absent, any other type is malformed, in the Rust reader's order. An ended
  image carries a fingerprint of every attribute but `sessionId` and `expiresAt`
  (`native.rs` `json_fingerprint`; here: equality of the raw attribute values).
- Malformed records are dead-lettered raw with their reason, never block the shard
  (`stream/mod.rs` `process_batch` steps 1 and 6, `shared/aws/src/dlq.rs`, `shared/aws/src/sqs.rs`,
  `ports.rs` `DeadLetter::id`): SQS SendMessageBatch, 10 letters and 250 KB per request, only the
  letters before the failure point.
- Grouping by session, records of one session in stream order (`process_batch` step 2);
  sessions run `STREAM_CONCURRENCY` at a time where they make requests (`buffer_unordered`).
- Claims (`stream/plan.rs` `claims`, `prior`, `binding_expiry`, `counter_expiry`;
  `shared/aws/src/state/bindings.rs` `claim`/`claim_once`): the first INSERT of each session
  claims `binding#<HMAC-SHA256(SESSION_REF_KEY, sessionId)>` with a conditional Put
  (`attribute_not_exists(pk)`, `ALL_OLD` on failure), its user and tenant burst counters
  (`burst#user#<id>` / `burst#tenant#<id>`, sort key the window index) ride as `ADD count`
  Updates and its parent's marker (`parent#<digest>`) as a Put, packed in TransactWriteItems of
  at most 100 actions exactly as the Rust packer packs them; a cancelled transaction names the
  claims whose binding existed, the rest are sent again. `prior`: a new binding is no prior,
  an existing one is (unless it is this INSERT's own redelivery, same `insertSeq`), a later
  INSERT of the same ID in the batch has the binding known so far.
- Bursts (`stream/mod.rs` `bursts`, `plan.rs` `counter_keys`/`burst_findings`/`burst_owner`,
  `bindings.rs` `counters`, `shared/aws/src/batch.rs` `get_all`): every counter the claims
  touched, sorted and deduplicated, read with consistent BatchGetItem (100 keys per request,
  unprocessed keys retried with 25 ms << attempt backoff, 8 attempts); a count above
  `BURST_USER_THRESHOLD` / `BURST_TENANT_THRESHOLD` is a SESSION_CREATION_BURST, owned by
  `burst#<window>`.
- Detection (`shared/core/src/anomaly/rules.rs` `detect`/`modify_rules`, `anomaly/mod.rs` for the
  catalogue and severities, `shared/core/src/expiry.rs` `deadlines`): INSERT with a prior binding:
  SESSION_USER_CHANGED / SESSION_TENANT_CHANGED, else SESSION_RESURRECTED. MODIFY (from its own
  two images, no request): user changed (CRITICAL), else anonymous to a user: SESSION_FIXATION;
  tenant changed; ended -> ACTIVE: SESSION_RESURRECTED; ended -> ended with `lastActivityAt`
  advancing or any other attribute changing: ACTIVITY_AFTER_TERMINATION; ACTIVE -> ended: the
  `Ended` fact (revokeScope user/tenant cascades, family cascade); ACTIVE -> ACTIVE with
  `lastActivityAt` advancing to or past the old image's earliest deadline (idle timeout or
  absolute lifetime, per-session overrides first): IDLE_TIMEOUT_NOT_ENFORCED; `userAgent`
  changed, compared as parsed by woothee (anomaly/client.rs): a script client taking a browser
  session over is SESSION_CLIENT_SCRIPTED, another browser family, OS or device class
  SESSION_CONTEXT_CHANGED (a step stronger, with a `network` evidence line, when `ipAddress`
  also moved to another network: IPv4 /24, IPv6 /48, `anomaly/network.rs`), a version update
  nothing; `ipAddress` changed: the IpChanged fact (a metric). REMOVE:
  TTL delete or delete by a write. A keys-only image: nothing. So a touch (same user, tenant,
  agent, IP; `lastActivityAt` advancing inside its window) makes no request, as in Rust.
- Decisions (`stream/plan.rs` `decide`, `respond`, `gate_key`, `alert_id`, `family_parents`,
  `drop_childless`; `shared/core/src/config/stream.rs` for the policies): revokeScope
  user/tenant cascades, a family cascade for every ended session (native layout: sessions can
  have children) unless it ended by `cascade:family`, a family cascade for a TTL delete of an
  ACTIVE session; SESSION_FIXATION first records the late binding (`bindings.rs` `bind`:
  UpdateItem with `if_not_exists`); each finding's containment (`CONTAINMENT_<TYPE>`, default
  terminate_session for the two identity changes, none otherwise; terminate_user asks for a USER
  cascade), its dedup gate (`alert#<TYPE>#s:<digest>|u:<user>|t:<tenant>`), its severity (the
  type's `SEVERITY_<TYPE>`, default the catalogue's, plus the steps its rule raised it by), and
  whether it alerts (`ALERT_MIN_SEVERITY[_<TYPE>]`, default LOW).
- Execution (`stream/execute.rs` `Executor::session`/`respond`, `shared/aws/src/sessions.rs`
  `DynamoSessions::end`, `shared/aws/src/state/mod.rs` `GateStore`): containment first (the
  conditional UpdateItem `#st = :active` that ends the session with reason `containment` and
  `terminatedBy = stream:<seq>`, `ALL_OLD` telling Gone / Touched / AlreadyEnded / our own end),
  then the gate (conditional PutItem `attribute_not_exists(pk) OR expiresAt <= :now`, `ALL_OLD`
  telling Ours / Published / Taken); an alert below its severity threshold marks its gate
  published at once; a session stops at its first failed record.
- Publication (`stream/mod.rs` `publish`, `shared/core/src/alert.rs` `render`/`digest`,
  `shared/aws/src/sns.rs`): one SNS message per alert (PublishBatch, 10 per request,
  `MessageStructure=json`, attributes alertId/severity/anomalyType/tenantId, FIFO dedup on a
  `.fifo` topic); above `ALERT_STORM_THRESHOLD`, HIGH and CRITICAL alerts still one by one and
  the rest (two or more) in one digest; then each gate is marked
  PUBLISHED (conditional UpdateItem, up to 5 tries).
- Family cascades only for parents marked by a child (this batch's claims, else a consistent
  BatchGetItem of the markers), unless `FAMILY_CASCADES=always`; cascade requests go to the
  cascade queue with SQS SendMessageBatch, 10 per request (`shared/aws/src/cascade_queue.rs`,
  `shared/core/src/cascade_message.rs` `request`).
- Failure point, counts and metrics (`stream/mod.rs` steps 5 to 8, `stream/report.rs`
  `metrics_of`): the lowest sequence number whose work did not complete; per-record counts only
  before it; the report logged as one `stream batch summary` line; the same metric series
  (zeros included), `AnomaliesDetected` by Type and Severity and, with
  `METRICS_TENANT_DIMENSION`, by capped Tenant.
- Configuration (`shared/core/src/config/mod.rs`, `config/stream.rs`): the same variables,
  defaults and ranges; a bad value fails the cold start naming the variable.

Where the peer differs, and why:
- Only the native layout (the bench's), and only EMF metrics (Powertools Metrics is EMF; the
  bench runs the Rust worker with `METRICS_SINK=emf`). The native layout files nothing in own
  indexes (`stream/filing.rs` returns no filing for it), so neither does the peer.
- A call's budget: the Rust worker abandons a call that outlives the invocation's deadline
  (minus 500 ms); boto3 cannot abandon a call in flight, so the peer checks the budget before
  each call and bounds each attempt with the same SDK settings (standard retries, 3 attempts,
  3 s connect, 10 s per attempt).
- Alert text shows a value as a JSON string where Rust uses its `Debug` quoting (they differ only
  for control characters).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

import boto3
import woothee
from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

SOURCE = "sessionwarden-stream"
NAMESPACE = "sessionwarden-peer"
logger = Logger(service="sessionwarden-peer")
metrics = Metrics(namespace=NAMESPACE)

# ---------------------------------------------------------------------------------------------
# Configuration (shared/core/src/config/mod.rs, config/stream.rs)
# ---------------------------------------------------------------------------------------------

SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
# The catalogue, in order, with each type's default severity (anomaly/mod.rs; SEVERITY_<TYPE>
# configures another).
TYPES = {
    "SESSION_USER_CHANGED": "CRITICAL",
    "SESSION_TENANT_CHANGED": "CRITICAL",
    "ACTIVITY_AFTER_TERMINATION": "HIGH",
    "SESSION_RESURRECTED": "HIGH",
    "SESSION_FIXATION": "MEDIUM",
    "IDLE_TIMEOUT_NOT_ENFORCED": "MEDIUM",
    "SESSION_CREATION_BURST": "MEDIUM",
    "SESSION_CONTEXT_CHANGED": "LOW",
    "SESSION_CLIENT_SCRIPTED": "HIGH",
}
# anomaly/client.rs: agents that mark a program, not a person.
SCRIPT_MARKERS = (
    "curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "aiohttp",
    "go-http-client", "okhttp", "axios/", "node-fetch", "undici", "java-http-client",
    "apache-httpclient", "libwww-perl", "postmanruntime", "httpie", "scrapy", "headlesschrome",
    "phantomjs", "puppeteer", "playwright", "selenium",
)


def classify(user_agent):
    """anomaly/client.rs `classify`: (family, os, device, script), parsed by woothee."""
    marked = any(m in user_agent.lower() for m in SCRIPT_MARKERS)
    r = woothee.parse(user_agent)
    if r["name"] == "UNKNOWN" and r["category"] == "UNKNOWN":
        family = re.split(r"[/ ]", user_agent, maxsplit=1)[0]
        return (family, "UNKNOWN", "UNKNOWN", marked)
    script = marked or r["name"] == "HTTP Library" or r["category"] == "crawler"
    return (r["name"], r["os"], r["category"], script)


def raised(severity, steps):
    """anomaly/mod.rs `Severity::raised`: `steps` levels up, at most CRITICAL."""
    return SEVERITIES[min(RANK[severity] + steps, len(SEVERITIES) - 1)]


def network(address):
    """anomaly/network.rs `network`: an IPv4 address's /24, an IPv6 address's /48 (IPv4-mapped
    counts as IPv4); anything else is its own network, as written."""
    text = address.strip()
    try:
        if "%" in text:  # a scoped IPv6 address: Rust's parser refuses it
            raise ValueError(text)
        a = ipaddress.ip_address(text)
    except ValueError:
        return address
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    prefix = 24 if a.version == 4 else 48
    return str(ipaddress.ip_network(f"{a}/{prefix}", strict=False))
YEAR = 366 * 86_400
MIN_KEY_BYTES = 16


class ConfigError(Exception):
    pass


def _raw(var):
    v = os.environ.get(var)
    return v if v is not None and v.strip() else None


def _required(var):
    v = _raw(var)
    if v is None:
        raise ConfigError(f"configuration error: {var} is required but not set")
    return v


def _int(var, default, lo, hi):
    v = _raw(var)
    reason = f"expected an integer from {lo} to {hi}"
    if v is None:
        n = default
    else:
        try:
            n = int(v.strip())
        except ValueError:
            raise ConfigError(f"configuration error: {var}={v!r} is invalid: {reason}") from None
    if n < lo or n > hi:
        raise ConfigError(f"configuration error: {var}={n} is invalid: {reason}")
    return n


def _choice(var, default, allowed, reason):
    v = _raw(var)
    if v is None:
        return default
    if v.strip() not in allowed:
        raise ConfigError(f"configuration error: {var}={v!r} is invalid: {reason}")
    return v.strip()


def _severity(var, default):
    v = _raw(var)
    if v is None:
        return default
    s = v.strip().upper()
    if s not in RANK:
        raise ConfigError(f"configuration error: {var}={v!r} is invalid: expected INFO, LOW, MEDIUM, HIGH or CRITICAL")
    return s


class StreamConfig:
    """The stream worker's settings, read once at cold start."""

    def __init__(self):
        key = _required("SESSION_REF_KEY").encode()
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"configuration error: SESSION_REF_KEY=<redacted> is invalid: must be at least {MIN_KEY_BYTES} bytes long, got {len(key)}"
            )
        self.key = key
        timeout = _raw("FUNCTION_TIMEOUT_SECONDS")
        if timeout is not None:
            _int("FUNCTION_TIMEOUT_SECONDS", 0, 1, 900)
        self.sessions_table = _required("SESSIONS_TABLE")
        sink = _choice("METRICS_SINK", "cloudwatch", ("cloudwatch", "emf"), "expected cloudwatch or emf")
        if sink != "emf":
            raise ConfigError("configuration error: the peer publishes metrics with Powertools (EMF): set METRICS_SINK=emf")
        self.default_idle = _int("DEFAULT_IDLE_TIMEOUT_SECONDS", 28_800, 1, YEAR)
        self.max_lifetime = _int("DEFAULT_MAX_LIFETIME_SECONDS", 86_400, 1, 10 * YEAR)
        self.retention = _int("AUDIT_RETENTION_SECONDS", 604_800, 0, 10 * YEAR)
        layout = _raw("SESSION_LAYOUT")
        if layout is not None and layout.strip() != "native":
            raise ConfigError(f"configuration error: SESSION_LAYOUT={layout!r} is invalid: the peer reads the native layout only")
        _int("DUE_INDEX_BUCKET_SECONDS", 900, 60, 86_400)
        _int("DUE_INDEX_SHARDS", 16, 1, 256)
        _int("DUE_INDEX_LOOKBACK_SECONDS", 21_600, 0, 30 * 86_400)
        self.family_cascades = _choice("FAMILY_CASCADES", "marked", ("marked", "always"), "expected marked or always")
        self.state_table = _required("STATE_TABLE")
        self.alerts_topic_arn = _required("ALERTS_TOPIC_ARN")
        self.dead_letter_queue_url = _required("DEAD_LETTER_QUEUE_URL")
        self.cascade_queue_url = _required("CASCADE_QUEUE_URL")
        self.runbook_base_url = _raw("RUNBOOK_BASE_URL") or "https://github.com/sessionwarden/sessionwarden/blob/main/README.md"
        global_min = _severity("ALERT_MIN_SEVERITY", "LOW")
        self.min_severity = {}
        self.containment = {}
        self.severity = {}
        for kind in TYPES:
            self.severity[kind] = _severity(f"SEVERITY_{kind}", TYPES[kind])
            self.min_severity[kind] = _severity(f"ALERT_MIN_SEVERITY_{kind}", global_min)
            default = "terminate_session" if kind in ("SESSION_USER_CHANGED", "SESSION_TENANT_CHANGED") else "none"
            self.containment[kind] = _choice(
                f"CONTAINMENT_{kind}",
                default,
                ("none", "terminate_session", "terminate_user"),
                "expected none, terminate_session or terminate_user",
            )
        self.dedup_window = _int("ALERT_DEDUP_WINDOW_SECONDS", 3_600, 1, 30 * 86_400)
        self.storm_threshold = _int("ALERT_STORM_THRESHOLD", 10, 1, 10_000)
        self.burst_window = _int("BURST_WINDOW_SECONDS", 300, 1, 86_400)
        self.burst_user_threshold = _int("BURST_USER_THRESHOLD", 10, 1, 1_000_000)
        self.burst_tenant_threshold = _int("BURST_TENANT_THRESHOLD", 500, 1, 100_000_000)
        self.concurrency = _int("STREAM_CONCURRENCY", 16, 1, 256)
        self.tenant_dimension = _choice("METRICS_TENANT_DIMENSION", "false", ("true", "false"), "expected true or false") == "true"
        self.tenant_dimension_max = _int("METRICS_TENANT_DIMENSION_MAX", 20, 1, 1_000)

    # session_ref.rs: the keyed digest of a session ID (state keys) and its 12-hex reference.
    def state_key(self, session_id):
        return hmac.new(self.key, session_id.encode(), hashlib.sha256).hexdigest()

    def reference(self, text):
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()[:12]

    # expiry.rs
    def deadline(self, img):
        """The earliest of the idle and absolute deadlines of an image, or None."""
        last = img.last_activity_at if img.last_activity_at is not None else img.created_at
        if last is None:
            return None
        t = img.idle_timeout_seconds
        idle = last + (t if t is not None and t > 0 else self.default_idle)
        absolute = img.absolute_expires_at
        if absolute is None and img.created_at is not None:
            absolute = img.created_at + self.max_lifetime
        return idle if absolute is None else min(absolute, idle)

    def binding_expiry(self, now):
        return now + self.max_lifetime + self.retention

    def counter_expiry(self, now):
        return now + 2 * self.burst_window + self.retention


CFG = StreamConfig()

# The SDK clients, built once per process (as the Rust worker builds its AwsClients), with the
# Rust worker's Lambda settings: standard retries, 3 attempts, 3 s connect, 10 s per attempt.
_SDK = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
DDB = boto3.client("dynamodb", config=_SDK)
SNS = boto3.client("sns", config=_SDK)
SQS = boto3.client("sqs", config=_SDK)

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
# Sessions that make requests run STREAM_CONCURRENCY at a time (the Rust worker's
# `buffer_unordered`); the pool lives as long as the process, like the Rust worker's runtime, and
# starts its threads on first use.
POOL = ThreadPoolExecutor(max_workers=CFG.concurrency)

# ---------------------------------------------------------------------------------------------
# Records (shared/aws/src/stream_record/, shared/core/src/change.rs)
# ---------------------------------------------------------------------------------------------

ACTIVE = "ACTIVE"
STATUSES = ("ACTIVE", "TERMINATED", "EXPIRED")
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
EVENT_KINDS = ("INSERT", "MODIFY", "REMOVE")


def seq_key(seq):
    """Sequence numbers compare as numbers (change.rs `SeqNo`): decimal strings of varying length."""
    s = seq.lstrip("0")
    return (len(s), s)


@dataclass(slots=True)
class Image:
    user_id: str | None
    tenant_id: str | None
    status: str
    created_at: int | None
    last_activity_at: int | None
    idle_timeout_seconds: int | None
    absolute_expires_at: int | None
    user_agent: str | None
    ip_address: str | None
    revoke_scope: str | None
    termination_reason: str | None
    parent_session_id: str | None
    fingerprint: dict | None

    @property
    def ended(self):
        return self.status != ACTIVE


@dataclass(slots=True)
class Change:
    seq: str
    kind: str
    session_id: str
    old: Image | None
    new: Image | None
    by_ttl: bool
    at: int


class Malformed(Exception):
    def __init__(self, seq, reason):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


def _s(img, name):
    v = img.get(name)
    if v is None or isinstance(v, str):
        return v
    raise ValueError(f"attribute {name} is not a string (S)")


def _n(img, name):
    v = img.get(name)
    if v is None:
        return None
    if isinstance(v, Decimal) and v.is_finite():
        return int(v)
    raise ValueError(f"attribute {name} is not a number (N)")


def _image(img, raw):
    """An image from its deserialized attributes (`raw`: the DynamoDB JSON, for the fingerprint);
    None for a keys-only image."""
    if all(k == "sessionId" for k in img):
        return None
    status = _s(img, "status")
    if status is None:
        raise ValueError("attribute status is missing")
    if status not in STATUSES:
        raise ValueError(f"unknown session status {status!r} (expected ACTIVE, TERMINATED or EXPIRED)")
    # Only ended images are compared (zombie writes): every attribute but the key and expiresAt.
    fingerprint = None
    if status != ACTIVE:
        fingerprint = {k: v for k, v in raw.items() if k != "sessionId" and k != "expiresAt"}
    return Image(
        user_id=_s(img, "userId"),
        tenant_id=_s(img, "tenantId"),
        status=status,
        created_at=_n(img, "createdAt"),
        last_activity_at=_n(img, "lastActivityAt"),
        idle_timeout_seconds=_n(img, "idleTimeoutSeconds"),
        absolute_expires_at=_n(img, "absoluteExpiresAt"),
        user_agent=_s(img, "userAgent"),
        ip_address=_s(img, "ipAddress"),
        revoke_scope=_s(img, "revokeScope"),
        termination_reason=_s(img, "terminationReason"),
        parent_session_id=_s(img, "parentSessionId"),
        fingerprint=fingerprint,
    )


def read_record(raw) -> Change:
    """One record of the batch, read through Powertools' `DynamoDBRecord`; raises `Malformed`."""
    record = DynamoDBRecord(raw) if isinstance(raw, dict) else None
    ddb_raw = record.get("dynamodb") if record is not None else None
    seq = ddb_raw.get("SequenceNumber") if isinstance(ddb_raw, dict) else None
    seq = seq if isinstance(seq, str) and seq else None

    def not_a_record(what):
        return Malformed(seq, f"not a DynamoDB stream record: {what}")

    if not isinstance(ddb_raw, dict):
        raise not_a_record("dynamodb is missing or not an object")
    event_name = record.get("eventName")
    if not isinstance(event_name, str):
        raise not_a_record("eventName is missing or not a string")
    ddb = record.dynamodb
    at = ddb_raw.get("ApproximateCreationDateTime")
    if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
        raise not_a_record("ApproximateCreationDateTime is not a number")
    at = 0 if at is None else ddb.approximate_creation_date_time
    if seq is None:
        raise Malformed(None, "dynamodb.SequenceNumber is missing")
    if event_name not in EVENT_KINDS:
        raise Malformed(seq, f"unknown eventName {event_name!r}")
    kind = record.event_name.name
    raws = {}
    for name in ("OldImage", "NewImage"):
        v = ddb_raw.get(name)
        if v is not None and not isinstance(v, dict):
            raise not_a_record(f"{name} is not an object")
        raws[name] = v or None
    if kind == "MODIFY" and raws["OldImage"] is None:
        raise Malformed(seq, "MODIFY without OldImage: the stream view type must be NEW_AND_OLD_IMAGES")
    if kind != "REMOVE" and raws["NewImage"] is None:
        raise Malformed(seq, f"{event_name} without NewImage: the stream view type must be NEW_AND_OLD_IMAGES")
    identity = record.user_identity
    by_ttl = isinstance(identity, dict) and identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL
    keys = ddb_raw.get("Keys")
    if not isinstance(keys, dict) or "sessionId" not in keys:
        raise Malformed(seq, "key sessionId is missing")
    try:
        session_id = ddb.keys.get("sessionId")
    except (TypeError, ValueError, AttributeError, IndexError, ArithmeticError):
        session_id = None
    if not isinstance(session_id, str) or not session_id:
        raise Malformed(seq, "key sessionId is not a non-empty string (S)")
    images = {}
    for name, attr in (("OldImage", "old_image"), ("NewImage", "new_image")):
        if raws[name] is None:
            images[name] = None
            continue
        try:
            images[name] = _image(getattr(ddb, attr), raws[name])
        except (TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
            raise Malformed(seq, f"{name}: {e}") from None
    return Change(seq, kind, session_id, images["OldImage"], images["NewImage"], by_ttl, at)


# ---------------------------------------------------------------------------------------------
# Detection (shared/core/src/anomaly/)
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Finding:
    kind: str
    subject: tuple  # ("session", id) | ("user", id) | ("tenant", id)
    tenant_id: str | None
    users: list
    evidence: list  # [(field, before, after)]
    headline: str
    raised: int = 0  # steps above the type's severity (a client change from another network)
    severity: str = ""  # the type's default, raised; respond() re-stamps it with SEVERITY_<TYPE>

    def __post_init__(self):
        self.severity = raised(TYPES[self.kind], self.raised)


def _differs(a, b):
    return a is not None and b is not None and a != b


def _users(a, b):
    v = [x for x in (a, b) if x is not None]
    return v[:1] if len(v) == 2 and v[0] == v[1] else v


def _num(v):
    return None if v is None else str(v)


def _identity_changed(what, session_id, before_user, before_tenant, new, headline):
    if what == "user":
        kind, fld, was, now = "SESSION_USER_CHANGED", "userId", before_user, new.user_id
        tenant = new.tenant_id if new.tenant_id is not None else before_tenant
    else:
        kind, fld, was, now = "SESSION_TENANT_CHANGED", "tenantId", before_tenant, new.tenant_id
        tenant = new.tenant_id
    if not _differs(was, now):
        return None
    return Finding(kind, ("session", session_id), tenant, _users(before_user, new.user_id), [(fld, was, now)], headline)


def detect(change, prior):
    """(findings, facts) of one change; `prior` is the binding (user, tenant, insertSeq) an INSERT
    must be compared with. Facts: ("ended", status, reason, scope), ("ip",), ("ttl",),
    ("deleted",), ("keys_only",)."""
    findings, facts = [], []
    sid = change.session_id
    if change.kind == "REMOVE":
        facts.append(("ttl",) if change.by_ttl else ("deleted",))
        return findings, facts
    new = change.new
    if change.kind == "INSERT":
        if new is None:
            facts.append(("keys_only",))
            return findings, facts
        if prior is not None:
            b_user, b_tenant, _ = prior
            for what, headline in (
                ("user", "session ID re-inserted for a second user"),
                ("tenant", "session ID re-inserted for a second tenant"),
            ):
                f = _identity_changed(what, sid, b_user, b_tenant, new, headline)
                if f is not None:
                    findings.append(f)
            if not findings:
                findings.append(
                    Finding(
                        "SESSION_RESURRECTED",
                        ("session", sid),
                        new.tenant_id,
                        _users(b_user, new.user_id),
                        [("sessionId", "previously used (binding exists)", f"inserted again as {new.status}")],
                        "ended session ID inserted again",
                    )
                )
        return findings, facts
    old = change.old
    if old is None or new is None:
        facts.append(("keys_only",))
        return findings, facts
    # MODIFY (rules.rs `modify_rules`): judged from its own two images, no request.
    tenant = new.tenant_id if new.tenant_id is not None else old.tenant_id
    both = _users(old.user_id, new.user_id)
    f = _identity_changed("user", sid, old.user_id, old.tenant_id, new, "session bound to 2 users")
    if f is not None:
        findings.append(f)
    elif old.user_id is None and new.user_id is not None:
        findings.append(
            Finding(
                "SESSION_FIXATION",
                ("session", sid),
                tenant,
                both,
                [("userId", old.user_id, new.user_id)],
                "login kept the anonymous session ID (fixation)",
            )
        )
    f = _identity_changed("tenant", sid, old.user_id, old.tenant_id, new, "session moved between 2 tenants")
    if f is not None:
        findings.append(f)
    old_ended, new_ended = old.ended, new.ended
    if old_ended and not new_ended:
        # A native image never lapses (no TTL deadline of its own): only the resurrection rule.
        if new.status == ACTIVE:
            findings.append(
                Finding(
                    "SESSION_RESURRECTED",
                    ("session", sid),
                    tenant,
                    both,
                    [
                        ("status", old.status, new.status),
                        ("terminationReason", old.termination_reason, new.termination_reason),
                    ],
                    "ended session came back to ACTIVE",
                )
            )
    elif old_ended and new_ended:
        a, b = old.last_activity_at, new.last_activity_at
        advanced = (a is not None and b is not None and b > a) or (a is None and b is not None)
        if advanced or old.fingerprint != new.fingerprint:
            findings.append(
                Finding(
                    "ACTIVITY_AFTER_TERMINATION",
                    ("session", sid),
                    tenant,
                    both,
                    [("lastActivityAt", _num(a), _num(b)), ("status", old.status, new.status)],
                    "activity on an ended session (zombie)",
                )
            )
    elif new_ended:
        facts.append(("ended", new.status, new.termination_reason, new.revoke_scope))
    # Activity on a session that should already have been expired; touches that do not move
    # lastActivityAt forward are not activity.
    if old.status == ACTIVE and new.status == ACTIVE:
        before, after = old.last_activity_at, new.last_activity_at
        if before is not None and after is not None and after > before:
            deadline = CFG.deadline(old)
            if deadline is not None and after >= deadline:
                findings.append(
                    Finding(
                        "IDLE_TIMEOUT_NOT_ENFORCED",
                        ("session", sid),
                        tenant,
                        both,
                        [("deadline", None, str(deadline)), ("lastActivityAt", str(before), str(after))],
                        f"activity {after - deadline} s after the session's deadline",
                    )
                )
    # The client, compared as parsed: a browser's own update is not a change.
    if old.user_agent is not None and new.user_agent is not None and old.user_agent != new.user_agent:
        was, now = classify(old.user_agent), classify(new.user_agent)
        kind = None
        if now[3] and not was[3]:
            kind = ("SESSION_CLIENT_SCRIPTED", "a browser session is now driven by a script client")
        elif was[:3] != now[:3]:
            kind = ("SESSION_CONTEXT_CHANGED", "the client changed within a session")
        if kind is not None:
            evidence = [("client", " / ".join(was[:3]), " / ".join(now[:3])), ("userAgent", old.user_agent, new.user_agent)]
            steps, headline = 0, kind[1]
            # A new client from another network is a step stronger, and the alert shows both.
            if kind[0] == "SESSION_CONTEXT_CHANGED" and old.ip_address is not None and new.ip_address is not None:
                nets = (network(old.ip_address), network(new.ip_address))
                if nets[0] != nets[1]:
                    evidence.insert(1, ("network", nets[0], nets[1]))
                    steps, headline = 1, "the client and its network changed within a session"
            findings.append(Finding(kind[0], ("session", sid), tenant, both, evidence, headline, steps))
    if _differs(old.ip_address, new.ip_address):
        facts.append(("ip",))
    return findings, facts


# ---------------------------------------------------------------------------------------------
# Decisions (shared/core/src/stream/plan.rs, cascade_message.rs, alert.rs)
# ---------------------------------------------------------------------------------------------


def cascade_request(scope, subject, reason, request_id):
    """cascade_message.rs `request`: serialized in the struct's field order, absent fields left out."""
    m = {"version": 1, "scope": scope}
    m[{"user": "userId", "tenant": "tenantId"}.get(scope, "sessionId")] = subject
    m["reason"] = reason
    m["requestedBy"] = SOURCE
    m["requestId"] = request_id
    return m


def family_request(session_id, why, seq):
    return cascade_request("family", session_id, f"parent session ended ({why})", f"stream:{seq}:family")


@dataclass(slots=True)
class Response:
    finding: Finding
    containment: tuple  # ("end_session", id, termination) | ("end_user", user, request) | ("none", kind)
    gate: tuple  # (kind, subject)
    alert: bool


def gate_key(f):
    kind, subject = f.subject
    if kind == "session":
        return (f.kind, f"s:{CFG.state_key(subject)}")
    return (f.kind, f"{kind[0]}:{subject}")


def respond(f, seq, now):
    f.severity = raised(CFG.severity[f.kind], f.raised)
    policy = CFG.containment[f.kind]
    if policy == "terminate_session" and f.subject[0] == "session":
        termination = {
            "status": "TERMINATED",
            "reason": "containment",
            "at": now,
            "retain_until": now + CFG.retention,
            "by": f"stream:{seq}",
        }
        containment = ("end_session", f.subject[1], termination)
    elif policy == "terminate_user" and f.users:
        user = f.users[-1]
        request = cascade_request("user", user, f"containment of {f.kind}", f"stream:{seq}:containment:{user}")
        containment = ("end_user", user, request)
    else:
        containment = ("none", f.kind)
    return Response(f, containment, gate_key(f), RANK[f.severity] >= RANK[CFG.min_severity[f.kind]])


def action(containment, ended):
    kind = containment[0]
    if kind == "end_session":
        if ended == "ended":
            return "session terminated (terminationReason containment)"
        if ended == "gone":
            return "session no longer exists"
        return "session already ended; left as it was"
    if kind == "end_user":
        return f"termination of every session of user {containment[1]} requested (USER cascade)"
    return f"none: the policy for {containment[1]} is alert only"


@dataclass(slots=True)
class Plan:
    ip_changes: int = 0
    ttl_deletes: int = 0
    write_deletes: int = 0
    cascades: list = field(default_factory=list)
    steps: list = field(default_factory=list)  # ("bind", user, tenant) | ("respond", Response)


def decide(change, prior, now):
    findings, facts = detect(change, prior)
    plan = Plan()
    for fact in facts:
        kind = fact[0]
        if kind == "ip":
            plan.ip_changes += 1
        elif kind == "ended":
            _, _, reason, scope = fact
            new = change.new
            why = reason if reason is not None else "ended"
            user = new.user_id if new is not None else None
            tenant = new.tenant_id if new is not None else None
            if scope == "user" and user is not None:
                plan.cascades.append(cascade_request("user", user, f"revokeScope=user ({why})", f"stream:{change.seq}:user"))
            elif scope == "tenant" and tenant is not None:
                plan.cascades.append(cascade_request("tenant", tenant, f"revokeScope=tenant ({why})", f"stream:{change.seq}:tenant"))
            # Native sessions can have children: any ended session takes its family with it.
            if reason != "cascade:family":
                plan.cascades.append(family_request(change.session_id, why, change.seq))
        elif kind == "ttl":
            plan.ttl_deletes += 1
            if change.old is not None and change.old.status == ACTIVE:
                plan.cascades.append(family_request(change.session_id, "deleted by TTL while ACTIVE", change.seq))
        elif kind == "deleted":
            plan.write_deletes += 1
    for f in findings:
        if f.kind == "SESSION_FIXATION" and change.new is not None and change.new.user_id is not None:
            plan.steps.append(("bind", change.new.user_id, change.new.tenant_id))
        plan.steps.append(("respond", respond(f, change.seq, now)))
    return plan


def prior_of(change, state):
    """plan.rs `prior`; `state` holds the session's claim outcome (taken on use) and known binding."""
    if change.kind != "INSERT" or change.new is None:
        return None
    outcome = state.pop("first", None)
    if outcome is None:
        return state.get("known")
    if outcome == "claimed":
        state["known"] = (change.new.user_id, change.new.tenant_id, change.seq)
        return None
    binding = outcome[1]
    state["known"] = binding
    return None if binding[2] == change.seq else binding


# -- alert.rs -----------------------------------------------------------------------------------


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_subject(s, limit=99):
    cleaned = "".join(" " if unicodedata.category(c) == "Cc" else c for c in s)
    if len(cleaned) <= limit:
        return cleaned
    return cleaned[: limit - 1] + "\u2026"


def runbook(kind):
    return f"{CFG.runbook_base_url.rstrip('/')}#{kind.lower().replace('_', '-')}"


def dumps(v):
    """serde_json's compact text of a `json!` value (its maps are sorted)."""
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(slots=True)
class Alert:
    id: str
    kind: str
    severity: str
    tenant: str
    subject: str
    text: str
    document: dict


def render(f, act, seq, now, alert_id):
    tenant = f.tenant_id if f.tenant_id is not None else "none"
    kind, subj = f.subject
    session_ref = CFG.reference(subj) if kind == "session" else None
    if kind == "session":
        subject_of = {"kind": "session", "sessionRef": session_ref}
    elif kind == "user":
        subject_of = {"kind": "user", "userId": subj}
    else:
        subject_of = {"kind": "tenant", "tenantId": subj}
    link = runbook(f.kind)
    tenant_part = f" (tenant {f.tenant_id})" if f.tenant_id is not None else ""
    subject = clean_subject(f"[{f.severity}] sessionwarden: {f.headline}{tenant_part}")

    def show(v):
        return "(absent)" if v is None else json.dumps(v, ensure_ascii=False)

    text = f"{f.severity} {f.kind} \u2014 {f.headline}\n\n"
    text += f"Tenant:    {f.tenant_id if f.tenant_id is not None else '(none)'}\n"
    text += f"Users:     {' -> '.join(f.users) if f.users else '(none)'}\n"
    if kind == "session":
        text += f"Session:   ref {session_ref}  (resolve with: sessionctl resolve {session_ref})\n"
    elif kind == "user":
        text += f"User:      {subj}\n"
    else:
        text += f"Tenant:    {subj} (whole tenant)\n"
    text += "Evidence:\n"
    for fld, before, after in f.evidence:
        text += f"  {fld}: {show(before)} -> {show(after)}\n"
    text += f"Action:    {act}\n"
    text += f"Runbook:   {link}\n"
    text += f"Detected:  {iso(now)} (stream record {seq})\n"
    document = {
        "schemaVersion": 1,
        "source": SOURCE,
        "type": f.kind,
        "severity": f.severity,
        "headline": f.headline,
        "tenantId": f.tenant_id,
        "users": f.users,
        "sessionRef": session_ref,
        "subject": subject_of,
        "evidence": [{"field": a, "before": b, "after": c} for a, b, c in f.evidence],
        "action": act,
        "runbook": link,
        "detectedAt": iso(now),
        "streamSequenceNumber": seq,
        "text": text,
        "alertId": alert_id,
    }
    return Alert(alert_id, f.kind, f.severity, tenant, subject, text, document)


def digest(alerts, now):
    counts = {}
    for a in alerts:
        k = (RANK[a.severity], a.kind)
        counts[k] = counts.get(k, 0) + 1
    ordered = sorted(counts.items())
    worst = max(((RANK[a.severity], a.kind) for a in alerts), default=(RANK["LOW"], "SESSION_CONTEXT_CHANGED"))
    tenants = sorted({a.tenant for a in alerts})
    tenant = tenants[0] if len(tenants) == 1 else "multiple"
    # As alert::digest: the most severe first, then by ID, whatever order the sessions finished in.
    examples = sorted(alerts, key=lambda a: (-RANK[a.severity], a.id))[:5]
    base = CFG.runbook_base_url.rstrip("/")
    document = {
        "schemaVersion": 1,
        "source": SOURCE,
        "type": "DIGEST",
        "severity": SEVERITIES[worst[0]],
        "headline": f"{len(alerts)} anomalies in one batch",
        "counts": [{"type": t, "severity": SEVERITIES[s], "count": n} for (s, t), n in ordered],
        "tenants": tenants,
        "examples": [a.document for a in examples],
        "runbook": f"{base}#alert-storms",
        "detectedAt": iso(now),
    }
    text = f"{len(alerts)} anomalies in one batch; individual alerts were folded into this digest.\n\n"
    for (s, t), n in reversed(ordered):
        text += f"  {n:>5}  {SEVERITIES[s]:<8} {t}\n"
    text += "\nExamples:\n"
    for a in examples:
        text += f"  - {a.subject}\n"
    text += f"\nTenants: {', '.join(tenants)}\n"
    digest_id = CFG.reference("digest|" + "|".join(sorted(a.id for a in alerts)))
    document["alertId"] = digest_id
    subject = clean_subject(f"[{SEVERITIES[worst[0]]}] sessionwarden: {len(alerts)} anomalies in one batch (digest)")
    return Alert(digest_id, worst[1], SEVERITIES[worst[0]], tenant, subject, text, document)


# ---------------------------------------------------------------------------------------------
# AWS (shared/aws/src/): errors, deadline budget, state table, sessions table, SNS, SQS
# ---------------------------------------------------------------------------------------------

TRANSIENT_CODES = {
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "KMSThrottlingException",
}
RESERVE_MS = 500


class PortError(Exception):
    def __init__(self, operation, message, transient):
        super().__init__(f"{operation}: {message}")
        self.transient = transient


def port_error(operation, e):
    """lib.rs `sdk_error`: transient for throttling, 5xx and transport failures."""
    if isinstance(e, ClientError):
        code = e.response.get("Error", {}).get("Code", "")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        return PortError(operation, str(e), code in TRANSIENT_CODES or status >= 500)
    return PortError(operation, str(e), isinstance(e, BotoCoreError))


def _code(e):
    return e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else ""


class Budget:
    """deadline.rs `bounded`: no call starts within the last 500 ms of the invocation."""

    def __init__(self, context):
        self.context = context

    def check(self, operation):
        if self.context is not None and self.context.get_remaining_time_in_millis() <= RESERVE_MS:
            raise PortError(operation, "no time left before the Lambda deadline", True)


def _pause(attempt, base_ms):
    if attempt > 0:
        time.sleep((base_ms << min(attempt, 5)) / 1000)


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def binding_key(session_id):
    return {"pk": S(f"binding#{CFG.state_key(session_id)}"), "sk": S("binding")}


def parent_key(session_id):
    return {"pk": S(f"parent#{CFG.state_key(session_id)}"), "sk": S("parent")}


def counter_key(k):
    scope, ident, bucket = k
    return {"pk": S(f"burst#{'user' if scope == 0 else 'tenant'}#{ident}"), "sk": S(str(bucket))}


def gate_item_key(gate):
    return {"pk": S(f"alert#{gate[0]}#{gate[1]}"), "sk": S("gate")}


def get_all(table, keys, consistent, budget, operation):
    """batch.rs `get_all`: BatchGetItem, 100 keys per request, unprocessed keys retried."""
    found = []
    for i in range(0, len(keys), 100):
        pending = keys[i : i + 100]
        for attempt in range(8):
            if not pending:
                break
            _pause(attempt, 25)
            budget.check(operation)
            try:
                resp = DDB.batch_get_item(RequestItems={table: {"Keys": pending, "ConsistentRead": consistent}})
            except (ClientError, BotoCoreError) as e:
                raise port_error("DynamoDB.BatchGetItem", e) from None
            found.extend(resp.get("Responses", {}).get(table, []))
            pending = resp.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if pending:
            raise PortError("DynamoDB.BatchGetItem", f"{len(pending)} keys still unprocessed after retries", True)
    return found


def _item_s(item, name):
    v = (item or {}).get(name)
    return v.get("S") if isinstance(v, dict) else None


def claim(claims, now, budget):
    """bindings.rs `claim`: one outcome per claim, "claimed" or ("existing", binding)."""
    expires_at, counter_expires_at = CFG.binding_expiry(now), CFG.counter_expiry(now)
    outcomes = [None] * len(claims)
    start = 0
    while start < len(claims):
        end, counters, parents = start, [], []
        while end < len(claims):
            extra = []
            for k in claims[end]["counters"]:
                if k not in counters and (not extra or extra[-1] != k):
                    extra.append(k)
            parent = claims[end]["parent"]
            if parent is not None and parent in parents:
                parent = None
            actions = (end - start) + 1 + len(counters) + len(extra)
            if actions + len(parents) + (parent is not None) > 100:
                break
            counters.extend(extra)
            if parent is not None:
                parents.append(parent)
            end += 1
        open_ = list(range(start, end))
        while open_:
            existing = claim_once(claims, open_, expires_at, counter_expires_at, budget)
            if existing is None:
                for i in open_:
                    outcomes[i] = "claimed"
                open_ = []
            else:
                for i, b in existing:
                    outcomes[i] = ("existing", b)
                    open_ = [j for j in open_ if j != i]
        start = end
    return [o if o is not None else "claimed" for o in outcomes]


def claim_once(claims, idx, expires_at, counter_expires_at, budget):
    table = CFG.state_table
    actions, counts, parents = [], {}, []
    for i in idx:
        c = claims[i]
        user, tenant, insert_seq = c["binding"]
        item = binding_key(c["session_id"])
        if user is not None:
            item["userId"] = S(user)
        if tenant is not None:
            item["tenantId"] = S(tenant)
        item["insertSeq"] = S(insert_seq)
        item["expiresAt"] = N(expires_at)
        actions.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        )
        for k in c["counters"]:
            counts[k] = counts.get(k, 0) + 1
    # Parent markers ride in the same transaction, after the claims, one per distinct parent.
    for i in idx:
        p = claims[i]["parent"]
        if p is not None and p not in parents:
            parents.append(p)
    for k, v in counts.items():
        actions.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": counter_key(k),
                    "UpdateExpression": "ADD #n :v SET expiresAt = :ttl",
                    "ExpressionAttributeNames": {"#n": "count"},
                    "ExpressionAttributeValues": {":v": N(v), ":ttl": N(counter_expires_at)},
                }
            }
        )
    for p in parents:
        item = parent_key(p)
        item["expiresAt"] = N(expires_at)
        actions.append({"Put": {"TableName": table, "Item": item}})
    budget.check("DynamoDB.TransactWriteItems")
    try:
        DDB.transact_write_items(TransactItems=actions)
        return None
    except (ClientError, BotoCoreError) as e:
        if _code(e) == "TransactionCanceledException":
            existing = []
            for pos, r in enumerate(e.response.get("CancellationReasons", [])):
                if r.get("Code") == "ConditionalCheckFailed" and pos < len(idx):
                    old = r.get("Item") or {}
                    existing.append((idx[pos], (_item_s(old, "userId"), _item_s(old, "tenantId"), _item_s(old, "insertSeq"))))
            if existing:
                return existing
            # Cancelled for another reason (a conflict with a concurrent invocation): retry later.
            raise PortError("DynamoDB.TransactWriteItems", str(e), True) from None
        raise port_error("DynamoDB.TransactWriteItems", e) from None


def counters(keys, budget):
    """bindings.rs `counters`: consistent BatchGetItem of the counters, by key."""
    requested = [counter_key(k) for k in keys]
    by_key = {(r["pk"]["S"], r["sk"]["S"]): k for r, k in zip(requested, keys)}
    out = {}
    for item in get_all(CFG.state_table, requested, True, budget, "DynamoDB.BatchGetItem"):
        k = by_key.get((_item_s(item, "pk"), _item_s(item, "sk")))
        if k is not None:
            try:
                n = int(Decimal(item.get("count", {}).get("N", "0")))
            except (ArithmeticError, ValueError):
                n = 0
            out[k] = max(n, 0)
    return out


def marked_parents(ids, budget):
    keys = [parent_key(i) for i in ids]
    by_pk = {k["pk"]["S"]: i for k, i in zip(keys, ids)}
    found = get_all(CFG.state_table, keys, True, budget, "DynamoDB.BatchGetItem")
    return {by_pk[pk] for pk in (_item_s(item, "pk") for item in found) if pk in by_pk}


def bind(session_id, user, tenant, now, budget):
    budget.check("DynamoDB.UpdateItem")
    try:
        DDB.update_item(
            TableName=CFG.state_table,
            Key=binding_key(session_id),
            UpdateExpression="SET userId = if_not_exists(userId, :u), tenantId = if_not_exists(tenantId, :t), expiresAt = :ttl",
            ExpressionAttributeValues={
                ":u": S(user),
                ":t": S(tenant) if tenant is not None else {"NULL": True},
                ":ttl": N(CFG.binding_expiry(now)),
            },
        )
    except (ClientError, BotoCoreError) as e:
        raise port_error("DynamoDB.UpdateItem", e) from None


def end_session(session_id, t, budget):
    """sessions.rs `DynamoSessions::end`: "ended", "touched", "already_ended" or "gone"."""
    budget.check("DynamoDB.UpdateItem")
    try:
        DDB.update_item(
            TableName=CFG.sessions_table,
            Key={"sessionId": S(session_id)},
            UpdateExpression="SET #st = :ended, terminatedAt = :at, terminationReason = :reason, expiresAt = :ttl, terminatedBy = :by",
            ConditionExpression="#st = :active",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={
                ":active": S(ACTIVE),
                ":ended": S(t["status"]),
                ":at": N(t["at"]),
                ":reason": S(t["reason"]),
                ":ttl": N(t["retain_until"]),
                ":by": S(t["by"]),
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return "ended"
    except (ClientError, BotoCoreError) as e:
        if _code(e) != "ConditionalCheckFailedException":
            raise port_error("DynamoDB.UpdateItem", e) from None
        old = e.response.get("Item")
        if not old:
            return "gone"
        if _item_s(old, "status") == ACTIVE:
            return "touched"
        if _item_s(old, "terminationReason") == t["reason"] and _item_s(old, "terminatedBy") == t["by"]:
            return "ended"
        return "already_ended"


def gate_open(gate, owner, now, until, budget):
    """state/mod.rs `GateStore::open`: "ours", "published" or "taken"."""
    item = gate_item_key(gate)
    item.update({"expiresAt": N(until), "openedAt": N(now), "owner": S(owner), "status": S("PENDING")})
    budget.check("DynamoDB.PutItem")
    try:
        DDB.put_item(
            TableName=CFG.state_table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR expiresAt <= :now",
            ExpressionAttributeValues={":now": N(now)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return "ours"
    except (ClientError, BotoCoreError) as e:
        if _code(e) != "ConditionalCheckFailedException":
            raise port_error("DynamoDB.PutItem", e) from None
        old = e.response.get("Item") or {}
        if _item_s(old, "owner") == owner:
            return "published" if _item_s(old, "status") == "PUBLISHED" else "ours"
        return "taken"


def gate_published(gate, owner, budget):
    budget.check("DynamoDB.UpdateItem")
    try:
        DDB.update_item(
            TableName=CFG.state_table,
            Key=gate_item_key(gate),
            UpdateExpression="SET #st = :published",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#st": "status", "#owner": "owner"},
            ExpressionAttributeValues={":published": S("PUBLISHED"), ":owner": S(owner)},
        )
    except (ClientError, BotoCoreError) as e:
        if _code(e) != "ConditionalCheckFailedException":
            raise port_error("DynamoDB.UpdateItem", e) from None


def persist(call, tries, budget):
    """deadline.rs `persist`: re-sends an idempotent call that failed transiently."""
    attempt = 0
    while True:
        try:
            return call()
        except PortError as e:
            attempt += 1
            pause_ms = 100 << min(attempt - 1, 4)
            remaining = budget.context.get_remaining_time_in_millis() if budget.context is not None else 1 << 30
            if not e.transient or attempt >= tries or remaining <= RESERVE_MS + pause_ms:
                raise
            time.sleep(pause_ms / 1000)


def sns_publish(alerts, budget):
    """sns.rs: PublishBatch, 10 per request; a failed entry is an error."""
    fifo = CFG.alerts_topic_arn.endswith(".fifo")
    for i in range(0, len(alerts), 10):
        chunk = alerts[i : i + 10]
        entries = []
        for j, a in enumerate(chunk):
            doc = dumps(a.document)
            message = dumps({"default": doc, "email": a.text, "sqs": doc, "lambda": doc, "https": doc, "http": doc, "email-json": doc})
            attrs = {}
            entry = {"Id": f"a{j}", "Subject": a.subject, "Message": message, "MessageStructure": "json"}
            if a.id:
                attrs["alertId"] = {"DataType": "String", "StringValue": a.id}
                if fifo:
                    entry["MessageDeduplicationId"] = a.id
                    entry["MessageGroupId"] = a.kind
            attrs["severity"] = {"DataType": "String", "StringValue": a.severity}
            attrs["anomalyType"] = {"DataType": "String", "StringValue": a.kind}
            attrs["tenantId"] = {"DataType": "String", "StringValue": a.tenant}
            entry["MessageAttributes"] = attrs
            entries.append(entry)
        budget.check("SNS.PublishBatch")
        try:
            out = SNS.publish_batch(TopicArn=CFG.alerts_topic_arn, PublishBatchRequestEntries=entries)
        except (ClientError, BotoCoreError) as e:
            raise port_error("SNS.PublishBatch", e) from None
        failed = out.get("Failed") or []
        if failed:
            f = failed[0]
            raise PortError(
                "SNS.PublishBatch",
                f"{len(failed)} of {len(chunk)} entries failed, e.g. {f.get('Code')}: {f.get('Message', '')}",
                not f.get("SenderFault", False),
            )


def sqs_send(queue_url, messages, budget):
    """sqs.rs `send_batch`: one SendMessageBatch of at most 10; refused entries sent again."""
    pending = {}
    for i, (body, ident) in enumerate(messages):
        e = {"Id": f"m{i}", "MessageBody": body}
        if ident is not None:
            e["MessageAttributes"] = {ident[0]: {"DataType": "String", "StringValue": ident[1]}}
        pending[e["Id"]] = e
    last = ""
    for attempt in range(4):
        _pause(attempt, 50)
        budget.check("SQS.SendMessageBatch")
        try:
            out = SQS.send_message_batch(QueueUrl=queue_url, Entries=[pending[k] for k in sorted(pending)])
        except (ClientError, BotoCoreError) as e:
            raise port_error("SQS.SendMessageBatch", e) from None
        for ok in out.get("Successful") or []:
            pending.pop(ok.get("Id"), None)
        if not pending:
            return
        failed = out.get("Failed") or []
        for f in failed:
            if f.get("SenderFault"):
                raise PortError("SQS.SendMessageBatch", f"entry refused: {f.get('Code')}: {f.get('Message', '')}", False)
        if failed:
            last = f"{failed[0].get('Code')}: {failed[0].get('Message', '')}"
    raise PortError("SQS.SendMessageBatch", f"{len(pending)} entries refused after retries, e.g. {last}", True)


def send_cascades(messages, budget):
    """cascade_queue.rs: 10 per request."""
    for i in range(0, len(messages), 10):
        bodies = [(json.dumps(m, separators=(",", ":"), ensure_ascii=False), None) for m in messages[i : i + 10]]
        sqs_send(CFG.cascade_queue_url, bodies, budget)


MAX_LETTER_BYTES = 250_000


def letter_id(seq, raw):
    h = hashlib.sha256()
    h.update(SOURCE.encode())
    h.update(b"\0")
    h.update((seq if seq is not None else dumps(raw)).encode())
    return h.hexdigest()[:32]


def letter_body(seq, reason, raw):
    lid = letter_id(seq, raw)
    full = dumps({"letterId": lid, "source": SOURCE, "reason": reason, "sequenceNumber": seq, "record": raw})
    if len(full.encode()) <= MAX_LETTER_BYTES:
        return full
    text = dumps(raw).encode()
    prefix = text[: MAX_LETTER_BYTES - 2_000].decode("utf-8", "ignore")
    return dumps(
        {
            "letterId": lid,
            "source": SOURCE,
            "reason": reason,
            "sequenceNumber": seq,
            "truncated": True,
            "recordBytes": len(text),
            "recordPrefix": prefix,
        }
    )


def send_letters(letters, budget):
    """dlq.rs: batches of at most 10 letters and 250 KB."""
    chunks, size = [], 0
    for seq, reason, raw in letters:
        body = letter_body(seq, reason, raw)
        n = len(body.encode())
        if chunks and len(chunks[-1]) < 10 and size + n <= MAX_LETTER_BYTES:
            chunks[-1].append((body, ("letterId", letter_id(seq, raw))))
            size += n
        else:
            chunks.append([(body, ("letterId", letter_id(seq, raw)))])
            size = n
    for chunk in chunks:
        sqs_send(CFG.dead_letter_queue_url, chunk, budget)


# ---------------------------------------------------------------------------------------------
# The batch (shared/core/src/stream/mod.rs `process_batch`, execute.rs)
# ---------------------------------------------------------------------------------------------


def min_seq(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a if seq_key(a) <= seq_key(b) else b


@dataclass(slots=True)
class Part:
    failed_at: str | None = None
    done: list = field(default_factory=list)  # (seq, (ttl, write_deletes, ip))
    pending: list = field(default_factory=list)
    anomalies: list = field(default_factory=list)  # (kind, severity, tenant)
    suppressed: list = field(default_factory=list)
    terminated: int = 0
    user_requests: list = field(default_factory=list)
    cascades: list = field(default_factory=list)  # (message, seq)

    def fail(self, seq, e):
        logger.warning(
            "record not completed; Lambda will retry from it",
            extra={"seq": seq, "transient": getattr(e, "transient", False), "error": str(e)},
        )
        self.failed_at = min_seq(self.failed_at, seq)


class Batch:
    def __init__(self, now, budget):
        self.now = now
        self.budget = budget

    def respond(self, r, seq, owner, part):
        """execute.rs `Executor::respond`: contain, open the gate, then alert or settle."""
        ended = None
        kind = r.containment[0]
        if kind == "end_session":
            ended = end_session(r.containment[1], r.containment[2], self.budget)
        elif kind == "end_user":
            part.cascades.append((r.containment[2], seq))
            part.user_requests.append(seq)
        state = gate_open(r.gate, owner, self.now, self.now + CFG.dedup_window, self.budget)
        if state == "published":
            return
        if state == "taken":
            part.suppressed.append(seq)
            return
        f = r.finding
        anomaly = (f.kind, f.severity, f.tenant_id)
        ended_now = ended == "ended"
        if not r.alert:
            gate_published(r.gate, owner, self.budget)
            part.anomalies.append(anomaly)
            part.terminated += int(ended_now)
            return
        aid = CFG.reference(f"{r.gate[0]}|{r.gate[1]}|{owner}")
        alert = render(f, action(r.containment, ended), seq, self.now, aid)
        part.pending.append({"alert": alert, "gate": r.gate, "owner": owner, "seq": seq, "anomaly": anomaly, "ended": ended_now})

    def plan_session(self, changes, outcome):
        """The pure half of execute.rs `Executor::session`: each record's plan, in order."""
        state = {"first": outcome} if outcome is not None else {}
        planned = []
        for change in changes:
            prior = prior_of(change, state)
            planned.append((change, decide(change, prior, self.now)))
        return planned

    def run_session(self, planned):
        """The rest of `Executor::session`: each record's steps, in order; stops at a failure."""
        part = Part()
        for change, plan in planned:
            part.cascades.extend((m, change.seq) for m in plan.cascades)
            for step in plan.steps:
                try:
                    if step[0] == "bind":
                        bind(change.session_id, step[1], step[2], self.now, self.budget)
                    else:
                        f = step[1].finding
                        logger.info(
                            "anomaly detected",
                            extra={
                                "session_ref": CFG.reference(change.session_id),
                                "anomaly": f.kind,
                                "severity": f.severity,
                                "seq": change.seq,
                            },
                        )
                        self.respond(step[1], change.seq, change.seq, part)
                except PortError as e:
                    part.fail(change.seq, e)
                    return part
            part.done.append((change.seq, (plan.ttl_deletes, plan.write_deletes, plan.ip_changes)))
        return part

    def bursts(self, claims, last_seq, part):
        """stream/mod.rs `bursts`: re-read every counter the claims touched; respond to bursts."""
        keys = sorted({k for c in claims for k in c["counters"]})
        try:
            counts = counters(keys, self.budget)
        except PortError as e:
            part.fail(last_seq, e)
            return
        minutes = CFG.burst_window // 60
        window = f"{minutes} min" if minutes > 0 else f"{CFG.burst_window} s"
        for k in keys:
            scope, ident, bucket = k
            threshold = CFG.burst_user_threshold if scope == 0 else CFG.burst_tenant_threshold
            count = counts.get(k, 0)
            if count <= threshold:
                continue
            if scope == 0:
                tenant = next((c["binding"][1] for c in claims if c["binding"][0] == ident), None)
                f = Finding(
                    "SESSION_CREATION_BURST",
                    ("user", ident),
                    tenant,
                    [ident],
                    [("newSessionsInWindow", f"threshold {threshold}", str(count))],
                    f"{count} new sessions for user {ident} in {window}",
                )
            else:
                f = Finding(
                    "SESSION_CREATION_BURST",
                    ("tenant", ident),
                    ident,
                    [],
                    [("newSessionsInWindow", f"threshold {threshold}", str(count))],
                    f"{count} new sessions in tenant {ident} in {window}",
                )
            logger.info("anomaly detected", extra={"anomaly": f.kind, "headline": f.headline})
            try:
                self.respond(respond(f, last_seq, self.now), last_seq, f"burst#{bucket}", part)
            except PortError as e:
                part.fail(last_seq, e)

    def publish(self, pending, report):
        """stream/mod.rs `publish`: one message per alert; in a storm, HIGH and CRITICAL alerts
        still one by one and the rest (two or more) folded into one digest."""
        if not pending:
            return None, []
        alerts = [p["alert"] for p in pending]
        if len(pending) > CFG.storm_threshold:
            urgent = [a for a in alerts if RANK[a.severity] >= RANK["HIGH"]]
            rest = [a for a in alerts if RANK[a.severity] < RANK["HIGH"]]
            if len(rest) < 2:
                to_send = urgent + rest
            else:
                report["alertsInDigest"] = len(rest)
                to_send = urgent + [digest(rest, self.now)]
        else:
            to_send = alerts
        try:
            sns_publish(to_send, self.budget)
        except PortError as e:
            logger.warning("publishing alerts failed; their gates stay pending and their records will be retried", extra={"error": str(e)})
            failed = None
            for p in pending:
                failed = min_seq(failed, p["seq"])
            return failed, []
        report["alertsPublished"] = len(to_send)
        for p in pending:
            try:
                persist(lambda p=p: gate_published(p["gate"], p["owner"], self.budget), 5, self.budget)
            except PortError as e:
                logger.error("marking an alert gate published failed", extra={"error": str(e), "alert_id": p["alert"].id})
        report["sessionsTerminated"] += sum(1 for p in pending if p["ended"])
        return None, [p["anomaly"] for p in pending]

    def process(self, raws):
        report = {
            "records": len(raws),
            "processed": 0,
            "malformed": 0,
            "notSessions": 0,
            "anomalies": {},
            "alertsPublished": 0,
            "alertsSuppressed": 0,
            "alertsInDigest": 0,
            "sessionsTerminated": 0,
            "userTerminationsRequested": 0,
            "cascadesRequested": 0,
            "familyCascadesSkipped": 0,
            "deletedByTtl": 0,
            "deletedByWrite": 0,
            "indexFilings": 0,
            "ipChanges": 0,
            "failedFrom": None,
        }
        # 1. Read. Malformed records are dead-lettered (step 6), raw, and never block the shard.
        changes, letters, position = [], [], {}
        for i, raw in enumerate(raws):
            try:
                c = read_record(raw)
            except Malformed as m:
                logger.error(
                    "malformed stream record sent to the dead-letter queue",
                    extra={"seq": m.seq or "unknown", "reason": m.reason},
                )
                if m.seq is not None:
                    position[m.seq] = i
                letters.append((i, (m.seq, m.reason, raw)))
                continue
            position[c.seq] = i
            changes.append(c)
        failed = None
        # 2. Group by session, in stream order.
        groups = {}
        for c in changes:
            groups.setdefault(c.session_id, []).append(c)
        # 3. Claims of first INSERTs, then bursts.
        claims = []
        for sid, group in groups.items():
            first = next((c for c in group if c.kind == "INSERT" and c.new is not None), None)
            if first is None:
                continue
            n = first.new
            bucket = (n.created_at if n.created_at is not None else first.at) // CFG.burst_window
            counters_ = []
            if n.user_id is not None:
                counters_.append((0, n.user_id, bucket))
            if n.tenant_id is not None:
                counters_.append((1, n.tenant_id, bucket))
            claims.append(
                {
                    "session_id": sid,
                    "binding": (n.user_id, n.tenant_id, first.seq),
                    "counters": counters_,
                    "parent": n.parent_session_id,
                    "seq": first.seq,
                }
            )
        outcomes, blocked = {}, {}
        burst_part = Part()
        if claims:
            try:
                for c, o in zip(claims, claim(claims, self.now, self.budget)):
                    outcomes[c["session_id"]] = o
                last_seq = max((c["seq"] for c in claims), key=seq_key)
                self.bursts(claims, last_seq, burst_part)
            except PortError as e:
                for c in claims:
                    blocked[c["session_id"]] = c["seq"]
                logger.warning("claiming bindings failed; those sessions are retried from their INSERT", extra={"error": str(e)})
        # 4. Each session in order: decisions are pure; only sessions with something to do make
        # requests, STREAM_CONCURRENCY at a time.
        parts, busy = [], []
        for sid, group in groups.items():
            stop = blocked.get(sid)
            if stop is not None:
                group = [c for c in group if seq_key(c.seq) < seq_key(stop)]
            planned = self.plan_session(group, outcomes.get(sid))
            if any(plan.steps for _, plan in planned):
                busy.append((planned, stop))
                continue
            part = Part()
            for change, plan in planned:
                part.cascades.extend((m, change.seq) for m in plan.cascades)
                part.done.append((change.seq, (plan.ttl_deletes, plan.write_deletes, plan.ip_changes)))
            part.failed_at = min_seq(part.failed_at, stop)
            parts.append(part)
        if busy:
            for (planned, stop), part in zip(busy, POOL.map(self.run_session, [b[0] for b in busy])):
                part.failed_at = min_seq(part.failed_at, stop)
                parts.append(part)
        parts.append(burst_part)
        # 5. Merge, then publish.
        pending, anomalies, cascades, done, suppressed, user_requests = [], [], [], [], [], []
        for p in parts:
            cascades.extend(p.cascades)
            done.extend(p.done)
            suppressed.extend(p.suppressed)
            report["sessionsTerminated"] += p.terminated
            user_requests.extend(p.user_requests)
            failed = min_seq(failed, p.failed_at)
            anomalies.extend(p.anomalies)
            pending.extend(p.pending)
        publish_failed, published = self.publish(pending, report)
        failed = min_seq(failed, publish_failed)
        anomalies.extend(published)
        # Family cascades only for parents a child marked.
        childless = []
        if CFG.family_cascades != "always":
            asked = sorted({m["sessionId"] for m, _ in cascades if m["scope"] == "family"})
            if asked:
                marked = {c["parent"] for c in claims if c["parent"] is not None}
                unknown = [p for p in asked if p not in marked]
                if unknown:
                    try:
                        marked |= marked_parents(unknown, self.budget)
                    except PortError as e:
                        logger.warning("reading parent markers failed; every family cascade is requested", extra={"error": str(e)})
                        marked |= set(unknown)
                kept = []
                for m, seq in cascades:
                    if m["scope"] == "family" and m["sessionId"] in asked and m["sessionId"] not in marked:
                        childless.append(seq)
                    else:
                        kept.append((m, seq))
                cascades = kept
        if cascades:
            try:
                send_cascades([m for m, _ in cascades], self.budget)
            except PortError as e:
                logger.warning("requesting cascades failed; their records will be retried", extra={"error": str(e)})
                for _, s in cascades:
                    failed = min_seq(failed, s)
        # 6. Dead letters, for the malformed records before the failure point.
        cut = self.cut_at(position, failed)
        due = [letter for i, letter in letters if i < cut]
        if due:
            try:
                send_letters(due, self.budget)
                report["malformed"] = len(due)
            except PortError as e:
                logger.warning("dead-lettering failed; the records will be retried", extra={"error": str(e)})
                failed = min_seq(failed, due[0][0] or "")
        # 7. Counts, once per record: only the records before the final failure point.
        cut = self.cut_at(position, failed)

        def before(seq):
            i = position.get(seq)
            return i is not None and i < cut

        report["alertsSuppressed"] = sum(1 for s in suppressed if before(s))
        report["userTerminationsRequested"] = sum(1 for s in user_requests if before(s))
        report["cascadesRequested"] = sum(1 for _, s in cascades if before(s))
        report["familyCascadesSkipped"] = sum(1 for s in childless if before(s))
        for seq, (ttl, deletes, ip) in done:
            if before(seq):
                report["processed"] += 1
                report["deletedByTtl"] += ttl
                report["deletedByWrite"] += deletes
                report["ipChanges"] += ip
        counted = {}
        for kind, _, _ in anomalies:
            counted[kind] = counted.get(kind, 0) + 1
        report["anomalies"] = dict(sorted(counted.items()))
        report["failedFrom"] = failed
        # 8. Metrics (one flush, by `log_metrics`), and the summary line.
        self.metrics(report, anomalies)
        logger.info("stream batch summary", extra={"summary": json.dumps(report, separators=(",", ":"))})
        return failed

    @staticmethod
    def cut_at(position, failed):
        if failed is None:
            return float("inf")
        if failed == "":
            return 0
        return position.get(failed, float("inf"))

    @staticmethod
    def metrics(r, anomalies):
        """report.rs `metrics_of`."""
        for name, value in (
            ("StreamRecordsProcessed", r["processed"]),
            ("StreamRecordsMalformed", r["malformed"]),
            ("AlertsPublished", r["alertsPublished"]),
            ("AlertsSuppressed", r["alertsSuppressed"]),
            ("SessionsDeletedByTtl", r["deletedByTtl"]),
            ("SessionsDeletedByWrite", r["deletedByWrite"]),
            ("SessionIpChanged", r["ipChanges"]),
            ("CascadesRequested", r["cascadesRequested"]),
            ("FamilyCascadesSkipped", r["familyCascadesSkipped"]),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        series = {
            ("StreamRecordsSkipped", (("Reason", "not_a_session"),)): r["notSessions"],
            ("SessionsTerminated", (("Cause", "containment"),)): r["sessionsTerminated"],
        }
        if r["userTerminationsRequested"] > 0:
            series[("ContainmentRequested", (("Action", "terminate_user"),))] = r["userTerminationsRequested"]
        tenants = []
        for kind, severity, tenant in anomalies:
            k = ("AnomaliesDetected", (("Severity", severity), ("Type", kind)))
            series[k] = series.get(k, 0) + 1
            if CFG.tenant_dimension:
                t = tenant if tenant is not None else "none"
                if t in tenants or len(tenants) < CFG.tenant_dimension_max:
                    if t not in tenants:
                        tenants.append(t)
                    label = t
                else:
                    label = "other"
                k = ("AnomaliesDetected", (("Tenant", label), ("Type", kind)))
                series[k] = series.get(k, 0) + 1
        for (name, dims), value in series.items():
            with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as m:
                for dim, v in dims:
                    m.add_dimension(name=dim, value=v)


class RecordNotCompleted(Exception):
    """A record at or after the batch's failure point: Lambda redelivers from the lowest one."""


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event, context):
    failed = Batch(int(time.time()), Budget(context)).process(event.get("Records") or [])
    failed_key = None if failed is None else seq_key(failed)

    def settle(record: DynamoDBRecord):
        ddb = record.dynamodb
        seq = ddb.sequence_number if ddb is not None else None
        if failed_key is not None and (failed == "" or seq is None or seq_key(seq) >= failed_key):
            raise RecordNotCompleted(f"record {seq} not completed; the batch fails from {failed}")

    return process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
