//! Checks on `infra/template.yaml` that cfn-lint does not make: least-privilege IAM (no wildcard
//! actions, and a wildcard resource only where AWS offers no resource type), and the resource
//! layout matching what `sessionctl init` provisions for local runs.

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
        "CodeUri: ../target/lambda/sessionwarden-cleanup/",
    ] {
        assert!(TEMPLATE.contains(needle), "template lacks {needle:?}");
    }
    assert_eq!(sessionwarden_core::session::SWEEP_INDEX, "by-sweep");
}
