//! Checks on `infra/template.yaml` that cfn-lint does not make: least-privilege IAM (no wildcard
//! actions, and a wildcard resource only where AWS offers no resource type), the sessions table
//! optional (every reference to it has the existing table as its alternative), the resource
//! layout matching what `sessionctl init` provisions for local runs, and the functions' SAM build
//! settings matching the workspace's binaries.

const TEMPLATE: &str = include_str!("../infra/template.yaml");

#[test]
fn iam_has_no_wildcards_except_the_namespace_scoped_put_metric_data() {
    let lines: Vec<&str> = TEMPLATE.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        assert!(
            !t.contains(":*\"") && !t.ends_with(":*") && !t.contains("Action: \"*\""),
            "wildcard action at line {}: {t}",
            i + 1
        );
        // No `*` anywhere else either: not in an ARN (`table/*`, `index/*`), an action list or a
        // resource list item. The one `*` is PutMetricData's `Resource: "*"`, checked below;
        // comments and parameters' AllowedPattern (a regular expression) are not IAM.
        let exempt = t.starts_with('#') || t.starts_with("AllowedPattern:");
        assert!(
            exempt || !t.contains('*') || t == "Resource: \"*\"",
            "wildcard at line {}: {t}",
            i + 1
        );
        if t.starts_with("Resource:") && t.contains('*') {
            let around = lines[i.saturating_sub(3)..(i + 5).min(lines.len())].join("\n");
            assert!(
                around.contains("Action: cloudwatch:PutMetricData")
                    && around.contains("cloudwatch:namespace"),
                "wildcard resource at line {} is not the namespace-scoped PutMetricData:\n{around}",
                i + 1
            );
        }
    }
    assert!(
        !TEMPLATE.contains("ManagedPolicyArns"),
        "managed policies carry wildcard resources"
    );
}

#[test]
fn every_reference_to_the_created_sessions_table_has_the_existing_table_as_alternative() {
    assert!(
        TEMPLATE.contains(
            "  SessionsTable:\n    Type: AWS::DynamoDB::Table\n    Condition: CreateSessionsTable\n"
        ),
        "SessionsTable is not conditional on CreateSessionsTable"
    );
    // A reference is `!Ref SessionsTable`, `!GetAtt SessionsTable.X` or `${SessionsTable.X}`; it
    // must be a branch of an !If on CreateSessionsTable or UseExistingSessionsStream (the
    // stream's), written on one line or as a block whose condition is at most 3 lines above.
    let lines: Vec<&str> = TEMPLATE.lines().collect();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut references = 0;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.starts_with('#') || t == "SessionsTable:" {
            continue;
        }
        let refers = t.match_indices("SessionsTable").any(|(at, m)| {
            !t[..at].ends_with(is_ident) && !t[at + m.len()..].starts_with(is_ident)
        });
        if !refers {
            continue;
        }
        references += 1;
        let guarded = lines[i.saturating_sub(3)..=i].iter().any(|above| {
            let above = above.trim();
            ["CreateSessionsTable", "UseExistingSessionsStream"]
                .iter()
                .any(|c| above == format!("- {c}") || above.contains(&format!("!If [{c},")))
        });
        assert!(
            guarded,
            "line {}: a reference to SessionsTable outside an !If on CreateSessionsTable: {t}",
            i + 1
        );
    }
    assert!(references >= 10, "only {references} references found");
}

#[test]
fn tables_and_indexes_match_local_provisioning() {
    for needle in [
        "IndexName: by-user",
        "IndexName: by-tenant",
        "IndexName: by-parent",
        "IndexName: by-sweep",
        "StreamViewType: NEW_AND_OLD_IMAGES",
        "AttributeName: expiresAt",
        "Schedule: rate(1 hour)",
        "maxReceiveCount: 5",
    ] {
        assert!(TEMPLATE.contains(needle), "template lacks {needle:?}");
    }
    assert_eq!(sessionwarden_core::session::SWEEP_INDEX, "by-sweep");
}

#[test]
fn every_function_is_an_arm64_cargo_lambda_build_of_its_worker() {
    // `sam build` runs cargo-lambda in CodeUri (the workspace root, where target/ is) for the
    // named Binary; `infra/deploy.py` takes target/lambda/<Binary>/bootstrap.zip.
    for count in [
        "Type: AWS::Serverless::Function",
        "CodeUri: ../\n",
        "BuildMethod: rust-cargolambda",
        "Handler: bootstrap",
        "Runtime: provided.al2023",
        "Architectures: [arm64]",
    ] {
        assert_eq!(TEMPLATE.matches(count).count(), 3, "{count:?}");
    }
    for worker in ["cleanup", "stream", "cascade"] {
        let binary = format!("Binary: sessionwarden-{worker}\n");
        assert_eq!(TEMPLATE.matches(&binary).count(), 1, "{binary:?}");
        let manifest = format!("../workers/{worker}/Cargo.toml");
        let cargo = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(manifest),
        )
        .expect("worker manifest");
        assert!(
            cargo.contains(&format!(
                "name = \"sessionwarden-{worker}\"\npath = \"src/main.rs\""
            )),
            "workers/{worker} has no binary sessionwarden-{worker}"
        );
    }
}

#[test]
fn every_function_tells_its_worker_its_timeout() {
    // FUNCTION_TIMEOUT_SECONDS is what the workers check their deadline margins against: it must
    // be the function's own Timeout, in every function.
    let mut checked = 0;
    let mut timeout = None;
    for l in TEMPLATE.lines() {
        let t = l.trim();
        if t == "Type: AWS::Serverless::Function" {
            timeout = None;
        }
        if let Some(v) = t.strip_prefix("Timeout: ") {
            timeout = Some(v.to_string());
        }
        if let Some(v) = t.strip_prefix("FUNCTION_TIMEOUT_SECONDS: ") {
            let own = timeout
                .take()
                .expect("FUNCTION_TIMEOUT_SECONDS before any Timeout");
            assert_eq!(
                v,
                format!("\"{own}\""),
                "FUNCTION_TIMEOUT_SECONDS is not the Timeout"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked, 3,
        "not every function sets FUNCTION_TIMEOUT_SECONDS"
    );
}

#[test]
fn metrics_go_as_emf_by_default_and_put_metric_data_is_granted_only_for_the_cloudwatch_sink() {
    assert!(
        TEMPLATE.contains("  MetricsSink:\n    Type: String\n    Default: emf\n"),
        "MetricsSink defaults to emf"
    );
    assert_eq!(
        TEMPLATE.matches("METRICS_SINK: !Ref MetricsSink").count(),
        3,
        "every function gets METRICS_SINK"
    );
    let lines: Vec<&str> = TEMPLATE.lines().collect();
    let grants: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == "Action: cloudwatch:PutMetricData")
        .collect();
    assert_eq!(grants.len(), 3);
    for i in grants {
        let before = lines[i.saturating_sub(4)..i].join("\n");
        assert!(
            before.contains("- !If") && before.contains("- MetricsByApi"),
            "PutMetricData at line {} is not conditional on MetricsByApi:\n{before}",
            i + 1
        );
    }
}
