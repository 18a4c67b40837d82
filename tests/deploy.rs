//! `just deploy`, end to end on moto's CloudFormation: `infra/deploy.py` packages
//! `infra/template.yaml` (each function's zip uploaded to S3, CodeUri pointing at it, the SAM
//! transform expanded offline), creates the stack, and every resource reaches CREATE_COMPLETE.
//! Both modes are deployed: the stack with its own sessions table, and the stack next to an
//! existing table (`ExistingSessionsTableName`), which creates none and whose IAM names only that
//! table, its token index and its stream.
//!
//! The zips are a placeholder bootstrap (`fixtures/placeholder-bootstrap.zip`): building the real
//! ones takes minutes (`just package`), and moto never runs them. The deploy script is the one
//! `just deploy` runs, from the repo's `.venv` (`just test` installs boto3 and aws-sam-translator).
//!
//! moto 5.2.5's CloudFormation skips the resource types it does not implement, with only a warning
//! in its log, and lists a blank CREATE_COMPLETE entry in their place. [`UNSUPPORTED_BY_MOTO`] names
//! them; the test fails on any other missing resource, and also when moto starts creating one of
//! these, so the list cannot go stale.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;
use sessionwarden_tests::{endpoint, unique, TEST_REF_KEY};

/// Resource types of the expanded template that moto 5.2.5's CloudFormation cannot create, and why.
const UNSUPPORTED_BY_MOTO: &[(&str, &str)] = &[
    (
        "AWS::CloudWatch::Alarm",
        "moto's CloudWatch has a CloudFormation model only for AWS::CloudWatch::Dashboard",
    ),
    (
        "AWS::Lambda::EventInvokeConfig",
        "moto implements PutFunctionEventInvokeConfig, but has no CloudFormation model for it",
    ),
];

const WORKERS: [(&str, &str); 3] = [
    ("CleanupFunction", "sessionwarden-cleanup"),
    ("StreamFunction", "sessionwarden-stream"),
    ("CascadeFunction", "sessionwarden-cascade"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python that has boto3 and aws-sam-translator: `PYTHON`, the repo's `.venv`, or `python3`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// A fresh artifacts folder laid out as `just package` writes it: `<bin>/bootstrap.zip`.
fn placeholder_artifacts(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    let zip = repo().join("tests/fixtures/placeholder-bootstrap.zip");
    for (_, bin) in WORKERS {
        std::fs::create_dir_all(dir.join(bin)).expect("create artifacts dir");
        std::fs::copy(&zip, dir.join(bin).join("bootstrap.zip")).expect("copy placeholder zip");
    }
    dir
}

/// Python with boto3 pointed at moto, for every service. moto's CloudFormation creates the stack's
/// tables in moto's DynamoDB, so an existing table must be made there too, and boto3 would honour
/// the per-service endpoints `tests/with-emulators` exports for DynamoDB Local.
fn python_on_emulator() -> Command {
    let mut cmd = Command::new(python());
    cmd.env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION");
    cmd
}

/// Runs a Python snippet with `args` against moto and parses what it prints as JSON.
fn python_json(what: &str, script: &str, args: &[&str]) -> Value {
    let mut cmd = python_on_emulator();
    cmd.args(["-c", script]).args(args);
    let out = output(cmd);
    assert!(out.status.success(), "{what}\n{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e})"))
}

fn output(mut cmd: Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} ({e}); run `just test`, which creates .venv, or set PYTHON",
            python().display()
        )
    })
}

/// Runs `infra/deploy.py STACK ...` against the emulator.
fn deploy_py(stack: &str, artifacts: &Path, extra: &[&str]) -> Output {
    let mut cmd = python_on_emulator();
    cmd.arg(repo().join("infra/deploy.py"))
        .arg(stack)
        .arg("--artifacts")
        .arg(artifacts)
        .arg("--bucket")
        .arg(format!("{stack}-artifacts"))
        .arg("--output")
        .arg(artifacts.join("packaged.json"))
        .args(extra);
    output(cmd)
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// CloudFormation's own view of a stack, read with boto3 apart from `deploy.py`: DescribeStacks
/// (status, parameters) and every resource through ListStackResources (paged).
const DESCRIBE: &str = r#"
import boto3, json, sys
cfn = boto3.client("cloudformation", region_name="us-east-1")
stack = cfn.describe_stacks(StackName=sys.argv[1])["Stacks"][0]
pages = cfn.get_paginator("list_stack_resources").paginate(StackName=sys.argv[1])
print(json.dumps({
    "status": stack["StackStatus"],
    "parameters": {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])},
    "resources": [r for page in pages for r in page["StackResourceSummaries"]],
}, default=str))
"#;

/// The stack as CloudFormation describes it (see [`DESCRIBE`]).
fn describe(stack: &str) -> Value {
    python_json(&format!("describing {stack}"), DESCRIBE, &[stack])
}

/// What the created stack gives its functions, read back from the services: the outputs, each
/// function's environment and event sources, each role's inline policy statements, and moto's
/// DynamoDB tables.
const VIEW: &str = r#"
import ast, boto3, json, sys
cfn = boto3.client("cloudformation", region_name="us-east-1")
iam = boto3.client("iam", region_name="us-east-1")
lam = boto3.client("lambda", region_name="us-east-1")
ddb = boto3.client("dynamodb", region_name="us-east-1")
stack = sys.argv[1]

def document(doc):
    if isinstance(doc, dict):
        return doc
    try:
        return json.loads(doc)
    except ValueError:
        # moto 5.2.5 returns a policy its CloudFormation made as the Python repr of a dict.
        return ast.literal_eval(doc)

view = {
    "outputs": {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])},
    "environment": {}, "event_sources": {}, "statements": {},
    "tables": [n for page in ddb.get_paginator("list_tables").paginate() for n in page["TableNames"]],
}
for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
    for r in page["StackResourceSummaries"]:
        logical, physical = r["LogicalResourceId"], r["PhysicalResourceId"]
        if r["ResourceType"] == "AWS::Lambda::Function":
            view["environment"][logical] = lam.get_function_configuration(FunctionName=physical)["Environment"]["Variables"]
            mappings = lam.list_event_source_mappings(FunctionName=physical)["EventSourceMappings"]
            view["event_sources"][logical] = [m["EventSourceArn"] for m in mappings]
        elif r["ResourceType"] == "AWS::IAM::Role":
            names = iam.list_role_policies(RoleName=physical)["PolicyNames"]
            docs = [document(iam.get_role_policy(RoleName=physical, PolicyName=n)["PolicyDocument"]) for n in names]
            # CloudFormation drops a list item that is AWS::NoValue; moto keeps it as null.
            view["statements"][logical] = [s for d in docs for s in d["Statement"] if s is not None]
print(json.dumps(view, default=str))
"#;

/// The created stack as its functions see it (see [`VIEW`]).
fn view(stack: &str) -> Value {
    python_json(&format!("reading back {stack}"), VIEW, &[stack])
}

/// Creates, on moto, a sessions table as an app made it (the Auth.js adapter's layout: `pk`/`sk`
/// and the token index `GSI1`), with a NEW_AND_OLD_IMAGES stream. Returns its ARN and stream ARN.
const EXISTING_TABLE: &str = r#"
import boto3, json, sys
table = boto3.client("dynamodb", region_name="us-east-1").create_table(
    TableName=sys.argv[1],
    BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "GSI1PK", "GSI1SK")],
    GlobalSecondaryIndexes=[{
        "IndexName": "GSI1",
        "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"}, {"AttributeName": "GSI1SK", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }],
    StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
)["TableDescription"]
print(json.dumps({"arn": table["TableArn"], "stream": table["LatestStreamArn"]}))
"#;

/// An app's sessions table on moto (see [`EXISTING_TABLE`]): (table ARN, stream ARN).
fn existing_sessions_table(name: &str) -> (String, String) {
    let t = python_json(&format!("creating table {name}"), EXISTING_TABLE, &[name]);
    let s = |k: &str| t[k].as_str().expect(k).to_string();
    (s("arn"), s("stream"))
}

/// Runs `deploy.py` as `just deploy` does on an emulator (the types moto lacks may be missing),
/// plus `extra`, and asserts it succeeded.
fn deploy_on_moto(stack: &str, artifacts: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&str> = extra.to_vec();
    for (kind, _) in UNSUPPORTED_BY_MOTO {
        args.extend(["--tolerate-missing", kind]);
    }
    let out = deploy_py(stack, artifacts, &args);
    assert!(out.status.success(), "deploy.py failed\n{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packaged template `deploy.py` wrote.
fn packaged(artifacts: &Path) -> Value {
    let text = std::fs::read_to_string(artifacts.join("packaged.json")).expect("packaged template");
    serde_json::from_str(&text).expect("packaged template is JSON")
}

/// Checks the packaged template and the stack `deploy.py` made of it, and returns the created
/// resources (logical ID -> physical ID): plain CloudFormation with code from the uploaded zips;
/// the stack CREATE_COMPLETE; every resource of the template created, except those of the types
/// moto lacks and `conditioned_out`, the resources whose Condition is false with this deploy's
/// parameters (moto lists a blank entry for each of both).
fn assert_deployed(
    stack: &str,
    artifacts: &Path,
    conditioned_out: &[&str],
) -> BTreeMap<String, String> {
    let started = Instant::now();
    // The packaged template: plain CloudFormation, code from the uploaded zips.
    let packaged = packaged(artifacts);
    assert!(packaged.get("Transform").is_none(), "SAM transform left in");
    let template: BTreeMap<String, String> = packaged["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .map(|(id, r)| (id.clone(), r["Type"].as_str().expect("Type").to_string()))
        .collect();
    for (id, bin) in WORKERS {
        let f = &packaged["Resources"][id];
        assert_eq!(f["Type"], "AWS::Lambda::Function", "{id}");
        let p = &f["Properties"];
        assert_eq!(p["Code"]["S3Bucket"], format!("{stack}-artifacts"), "{id}");
        let key = p["Code"]["S3Key"].as_str().expect("S3Key");
        assert!(
            key.starts_with(&format!("{bin}/")) && key.ends_with(".zip"),
            "{id}: {key}"
        );
        assert_eq!(p["Handler"], "bootstrap", "{id}");
        assert_eq!(p["Runtime"], "provided.al2023", "{id}");
        assert_eq!(p["Architectures"], serde_json::json!(["arm64"]), "{id}");
    }
    for id in conditioned_out {
        assert!(
            packaged["Resources"][id]["Condition"].is_string(),
            "{id} has no Condition"
        );
    }

    // Every resource through CloudFormation's own view of the stack.
    let described = describe(stack);
    assert_eq!(described["status"], "CREATE_COMPLETE");
    let mut created = BTreeMap::new();
    let mut blank = 0;
    for r in described["resources"].as_array().expect("resources") {
        assert_eq!(r["ResourceStatus"], "CREATE_COMPLETE", "{r}");
        match r["LogicalResourceId"].as_str().filter(|id| !id.is_empty()) {
            Some(id) => {
                assert!(template.contains_key(id), "{id} is not in the template");
                assert_eq!(r["ResourceType"], template[id].as_str(), "{id}");
                let physical = r["PhysicalResourceId"].as_str().unwrap_or_default();
                created.insert(id.to_string(), physical.to_string());
            }
            None => blank += 1,
        }
    }
    for (id, bin) in WORKERS {
        let suffix = bin.trim_start_matches("sessionwarden-");
        assert_eq!(created[id], format!("{stack}-{suffix}"), "{id}");
    }

    // What moto did not create is exactly the resources of the types it does not implement, and
    // those whose Condition is false.
    let unsupported: BTreeMap<&str, &str> = UNSUPPORTED_BY_MOTO.iter().copied().collect();
    let mut skipped = Vec::new();
    for (id, kind) in &template {
        let expected = !conditioned_out.contains(&id.as_str());
        match (created.contains_key(id), unsupported.get(kind.as_str())) {
            (true, _) if !expected => panic!("{id} ({kind}) was created; its Condition is false"),
            (false, _) if !expected => {}
            (true, None) => {}
            (false, Some(why)) => skipped.push(format!("{id} ({kind}: {why})")),
            (false, None) => panic!("{id} ({kind}) was not created"),
            (true, Some(_)) => {
                panic!("moto now creates {kind}: remove it from UNSUPPORTED_BY_MOTO")
            }
        }
    }
    assert_eq!(
        blank,
        skipped.len() + conditioned_out.len(),
        "blank entries vs skipped and conditioned-out resources"
    );
    assert!(
        created.len() + conditioned_out.len() >= 19,
        "only {} resources created",
        created.len()
    );
    println!(
        "{stack}: {} of {} resources CREATE_COMPLETE in {:.1} s; not created by their Condition: {conditioned_out:?}; \
         not implemented by moto, so not created:\n  {}",
        created.len(),
        template.len(),
        started.elapsed().as_secs_f64(),
        skipped.join("\n  ")
    );
    created
}

const SESSION_ITEMS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
];
const READ_STREAM: &[&str] = &[
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];

/// Role -> DynamoDB resource -> actions.
type Grants = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// The sessions table the stack uses, as its IAM must name it.
struct SessionsTable<'a> {
    arn: &'a str,
    stream: &'a str,
    /// The indexes each role may Query: cleanup, stream, cascade.
    indexes: [&'a [&'a str]; 3],
}

/// The DynamoDB grants the three roles must have, and no more: the sessions table, its indexes
/// and its stream as `sessions` names them, and the state table.
fn expected_grants(sessions: &SessionsTable, state: &str) -> Grants {
    let set = |actions: &[&str]| {
        actions
            .iter()
            .map(|a| a.to_string())
            .collect::<BTreeSet<_>>()
    };
    let roles = [
        (
            "CleanupRole",
            // BatchGetItem: the re-check of due-index entries on non-native layouts.
            [SESSION_ITEMS, &["dynamodb:Scan", "dynamodb:BatchGetItem"]].concat(),
            vec![
                "dynamodb:Query",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            ],
        ),
        (
            "StreamRole",
            SESSION_ITEMS.to_vec(),
            vec![
                // The session limit's rosters: a consistent GetItem, then a conditional Put.
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchGetItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:Query",
            ],
        ),
        (
            "CascadeRole",
            SESSION_ITEMS.to_vec(),
            // DeleteItem: an end note taken back when its end did not happen.
            vec![
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
        ),
    ];
    let mut grants = Grants::new();
    for ((role, on_table, on_state), indexes) in roles.into_iter().zip(sessions.indexes) {
        let g = grants.entry(role.to_string()).or_default();
        g.insert(sessions.arn.to_string(), set(&on_table));
        g.insert(state.to_string(), set(&on_state));
        for index in indexes {
            g.insert(
                format!("{}/index/{index}", sessions.arn),
                set(&["dynamodb:Query"]),
            );
        }
    }
    grants
        .get_mut("StreamRole")
        .expect("stream")
        .insert(sessions.stream.to_string(), set(READ_STREAM));
    grants
}

/// The DynamoDB grants of the created roles' policies (`view`). Also checks that no action is a
/// wildcard, and that the one wildcard resource is the namespace-scoped PutMetricData.
fn dynamodb_grants(view: &Value) -> Grants {
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .map(|s| s.as_str().expect("string").to_string())
                .collect(),
            other => panic!("not a string or list: {other}"),
        }
    };
    let mut grants = Grants::new();
    for (role, statements) in view["statements"].as_object().expect("statements") {
        for s in statements.as_array().expect("statement list") {
            assert_eq!(s["Effect"], "Allow", "{role}: {s}");
            let actions = strings(&s["Action"]);
            assert!(
                actions.iter().all(|a| !a.contains('*')),
                "{role}: wildcard action in {s}"
            );
            for resource in strings(&s["Resource"]) {
                if resource.contains('*') {
                    assert_eq!(
                        actions,
                        ["cloudwatch:PutMetricData"],
                        "{role}: wildcard resource in {s}"
                    );
                    assert!(
                        s["Condition"]["StringEquals"]["cloudwatch:namespace"].is_string(),
                        "{role}: {s}"
                    );
                }
                if resource.starts_with("arn:aws:dynamodb:") {
                    let g = grants
                        .entry(role.clone())
                        .or_default()
                        .entry(resource)
                        .or_default();
                    g.extend(actions.iter().cloned());
                }
            }
        }
    }
    grants
}

/// `arn:...:table/NAME` of a stream ARN `arn:...:table/NAME/stream/LABEL`.
fn table_of_stream(stream: &str) -> &str {
    stream.split("/stream/").next().expect("a stream ARN")
}

/// The ARN of table `name` in the same account and region as `table_arn`.
fn sibling_table(table_arn: &str, name: &str) -> String {
    let (prefix, _) = table_arn.rsplit_once('/').expect("a table ARN");
    format!("{prefix}/{name}")
}

#[test]
fn packaged_template_deploys_and_every_resource_is_create_complete() {
    let stack = unique("deploy");
    let artifacts = placeholder_artifacts("artifacts");
    let key_param = format!("SessionRefKey={TEST_REF_KEY}");
    deploy_on_moto(&stack, &artifacts, &["--parameter", &key_param]);
    let created = assert_deployed(&stack, &artifacts, &[]);
    assert_eq!(created["SessionsTable"], format!("{stack}-sessions"));

    // The functions use the created table, in the native layout; IAM names it and its indexes.
    let view = view(&stack);
    let stream = view["outputs"]["SessionsStreamArn"]
        .as_str()
        .expect("stream output");
    let table = table_of_stream(stream);
    assert!(
        table.ends_with(&format!(":table/{stack}-sessions")),
        "{stream}"
    );
    assert_eq!(
        view["outputs"]["SessionsTableName"],
        format!("{stack}-sessions")
    );
    for (id, _) in WORKERS {
        let env = &view["environment"][id];
        assert_eq!(env["SESSIONS_TABLE"], format!("{stack}-sessions"), "{id}");
        assert_eq!(env["SESSION_LAYOUT"], "native", "{id}");
    }
    // Each function's Timeout, against which its worker checks the deadline margins.
    for (id, timeout) in [
        ("CleanupFunction", "300"),
        ("StreamFunction", "60"),
        ("CascadeFunction", "300"),
    ] {
        assert_eq!(
            view["environment"][id]["FUNCTION_TIMEOUT_SECONDS"], timeout,
            "{id}"
        );
    }
    assert_eq!(
        view["event_sources"]["StreamFunction"],
        serde_json::json!([stream])
    );
    let sessions = SessionsTable {
        arn: table,
        stream,
        indexes: [&["by-sweep"], &[], &["by-user", "by-tenant", "by-parent"]],
    };
    let state = sibling_table(table, &format!("{stack}-state"));
    assert_eq!(dynamodb_grants(&view), expected_grants(&sessions, &state));
    let _ = std::fs::remove_dir_all(&artifacts);
}

#[test]
fn next_to_an_existing_table_the_stack_creates_none_and_names_only_that_one() {
    let stack = unique("existing");
    let artifacts = placeholder_artifacts("existing");
    let table_name = unique("app-sessions");
    let (table, stream) = existing_sessions_table(&table_name);
    let params = [
        format!("SessionRefKey={TEST_REF_KEY}"),
        format!("ExistingSessionsTableName={table_name}"),
        format!("ExistingSessionsStreamArn={stream}"),
        "SessionLayout=authjs".to_string(),
    ];
    let args: Vec<&str> = params
        .iter()
        .flat_map(|p| ["--parameter", p.as_str()])
        .collect();
    deploy_on_moto(&stack, &artifacts, &args);

    // No sessions table: the only table of the stack is the state table.
    let created = assert_deployed(&stack, &artifacts, &["SessionsTable"]);
    let described = describe(&stack);
    let tables: Vec<&str> = described["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["ResourceType"] == "AWS::DynamoDB::Table")
        .map(|r| r["LogicalResourceId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(tables, ["StateTable"]);
    assert_eq!(created["StateTable"], format!("{stack}-state"));
    let view = view(&stack);
    let on_moto: Vec<&str> = view["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(Value::as_str)
        .filter(|t| t.starts_with(stack.as_str()))
        .collect();
    assert_eq!(on_moto, [format!("{stack}-state")]);

    // The functions use the existing table, in the layout given, and read its stream.
    assert_eq!(view["outputs"]["SessionsTableName"], table_name.as_str());
    assert_eq!(view["outputs"]["SessionsStreamArn"], stream.as_str());
    for (id, _) in WORKERS {
        let env = &view["environment"][id];
        assert_eq!(env["SESSIONS_TABLE"], table_name.as_str(), "{id}");
        assert_eq!(env["SESSION_LAYOUT"], "authjs", "{id}");
        assert_eq!(env["STATE_TABLE"], format!("{stack}-state"), "{id}");
    }
    assert_eq!(
        view["event_sources"]["StreamFunction"],
        serde_json::json!([stream])
    );

    // IAM names that table, its token index and its stream, the state table, and nothing else.
    let grants = dynamodb_grants(&view);
    let sessions = SessionsTable {
        arn: &table,
        stream: &stream,
        indexes: [&["GSI1"]; 3],
    };
    let state = sibling_table(&table, &format!("{stack}-state"));
    assert_eq!(grants, expected_grants(&sessions, &state));
    let _ = std::fs::remove_dir_all(&artifacts);
}

#[test]
fn an_existing_table_without_its_stream_is_refused_by_the_template_rules() {
    let stack = unique("nostream");
    let artifacts = placeholder_artifacts("nostream");
    let key_param = format!("SessionRefKey={TEST_REF_KEY}");
    let table_param = format!("ExistingSessionsTableName={}", unique("app-sessions"));
    let out = deploy_py(
        &stack,
        &artifacts,
        &["--parameter", &key_param, "--parameter", &table_param],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ExistingTableNeedsItsStream"),
        "{}",
        show(&out)
    );
    // moto does not check Rules; deploy.py stops before CreateStack.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("create:"), "{}", show(&out));
    let _ = std::fs::remove_dir_all(&artifacts);
}

#[test]
fn a_rerun_with_a_new_build_updates_the_stack_and_keeps_the_session_ref_key() {
    let stack = unique("redeploy");
    let artifacts = placeholder_artifacts("redeploy");
    let key_param = format!("SessionRefKey={TEST_REF_KEY}");
    deploy_on_moto(&stack, &artifacts, &["--parameter", &key_param]);
    let code = |t: &Value, id: &str| t["Resources"][id]["Properties"]["Code"]["S3Key"].clone();
    let before = packaged(&artifacts);

    // A new build of the stream worker: other bytes (a zip comment), still a valid zip.
    let zip_path = artifacts.join("sessionwarden-stream/bootstrap.zip");
    let mut zip = std::fs::read(&zip_path).expect("read zip");
    let n = zip.len();
    zip[n - 2] = 7;
    zip.extend_from_slice(b"rebuilt");
    std::fs::write(&zip_path, zip).expect("write zip");
    // No SessionRefKey this time: a parameter without a default keeps its previous value.
    let stdout = deploy_on_moto(&stack, &artifacts, &[]);
    assert!(stdout.contains(&format!("update: {stack}")), "{stdout}");

    let after = packaged(&artifacts);
    assert_ne!(
        code(&before, "StreamFunction"),
        code(&after, "StreamFunction")
    );
    assert_eq!(
        code(&before, "CleanupFunction"),
        code(&after, "CleanupFunction")
    );
    let described = describe(&stack);
    assert_eq!(described["status"], "UPDATE_COMPLETE");
    // moto echoes NoEcho values; AWS would show "****".
    assert_eq!(described["parameters"]["SessionRefKey"], TEST_REF_KEY);
    let _ = std::fs::remove_dir_all(&artifacts);
}

#[test]
fn a_zip_of_10_mb_or_more_is_refused_before_anything_is_uploaded() {
    let stack = unique("toobig");
    let artifacts = placeholder_artifacts("toobig");
    let big = artifacts.join("sessionwarden-stream/bootstrap.zip");
    std::fs::write(&big, vec![0u8; 10 * 1024 * 1024]).expect("write big zip");
    let out = deploy_py(&stack, &artifacts, &["--package-only"]);
    assert!(!out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("over the 10 MB budget"), "{}", show(&out));
    assert!(!artifacts.join("packaged.json").exists());
    let _ = std::fs::remove_dir_all(&artifacts);
}
