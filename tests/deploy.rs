//! `just deploy`, end to end on moto's CloudFormation: `infra/deploy.py` packages
//! `infra/template.yaml` (each function's zip uploaded to S3, CodeUri pointing at it, the SAM
//! transform expanded offline), creates the stack, and every resource reaches CREATE_COMPLETE.
//!
//! The zips are a placeholder bootstrap (`fixtures/placeholder-bootstrap.zip`): building the real
//! ones takes minutes (`just package`), and moto never runs them. The deploy script is the one
//! `just deploy` runs, from the repo's `.venv` (`just test` installs boto3 and aws-sam-translator).
//!
//! moto 5.2.5's CloudFormation skips the resource types it does not implement, with only a warning
//! in its log, and lists a blank CREATE_COMPLETE entry in their place. [`UNSUPPORTED_BY_MOTO`] names
//! them; the test fails on any other missing resource, and also when moto starts creating one of
//! these, so the list cannot go stale.

use std::collections::BTreeMap;
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

/// Python with boto3 pointed at the emulator.
fn python_on_emulator() -> Command {
    let mut cmd = Command::new(python());
    cmd.env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION");
    cmd
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
    let mut cmd = python_on_emulator();
    cmd.args(["-c", DESCRIBE, stack]);
    let out = output(cmd);
    assert!(out.status.success(), "describing {stack}\n{}", show(&out));
    serde_json::from_slice(&out.stdout).expect("the description is JSON")
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

#[test]
fn packaged_template_deploys_and_every_resource_is_create_complete() {
    let started = Instant::now();
    let stack = unique("deploy");
    let artifacts = placeholder_artifacts("artifacts");
    let key_param = format!("SessionRefKey={TEST_REF_KEY}");
    deploy_on_moto(&stack, &artifacts, &["--parameter", &key_param]);

    // The packaged template: plain CloudFormation, code from the uploaded zips.
    let packaged = packaged(&artifacts);
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

    // Every resource through CloudFormation's own view of the stack.
    let described = describe(&stack);
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

    // What moto did not create is exactly the resources of the types it does not implement.
    let unsupported: BTreeMap<&str, &str> = UNSUPPORTED_BY_MOTO.iter().copied().collect();
    let mut skipped = Vec::new();
    for (id, kind) in &template {
        match (created.contains_key(id), unsupported.get(kind.as_str())) {
            (true, None) => {}
            (false, Some(why)) => skipped.push(format!("{id} ({kind}: {why})")),
            (false, None) => panic!("{id} ({kind}) was not created"),
            (true, Some(_)) => {
                panic!("moto now creates {kind}: remove it from UNSUPPORTED_BY_MOTO")
            }
        }
    }
    assert_eq!(blank, skipped.len(), "blank entries vs skipped resources");
    assert!(
        created.len() >= 19,
        "only {} resources created",
        created.len()
    );
    println!(
        "{} of {} resources CREATE_COMPLETE in {:.1} s; not implemented by moto, so not created:\n  {}",
        created.len(),
        template.len(),
        started.elapsed().as_secs_f64(),
        skipped.join("\n  ")
    );
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
