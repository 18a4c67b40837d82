//! The layer boundaries, checked on the resolved dependency graph (`cargo tree`): the core
//! crate links no AWS SDK or Lambda crate, and no Lambda binary links the local tooling. The
//! compiler enforces the first for every module of the core; this test keeps the manifests honest.

use std::collections::BTreeSet;
use std::process::Command;

/// Every package `root` links (normal dependencies, for this host), by name.
fn closure(root: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", root, "-e", "normal", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    sessionwarden_tests::assert_success(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn the_core_links_no_aws_sdk_and_no_lambda_crate() {
    let core = closure("sessionwarden-core");
    let banned: Vec<&String> = core
        .iter()
        .filter(|d| {
            d.starts_with("aws-")
                || d.starts_with("aws_")
                || d.starts_with("lambda")
                || d.starts_with("sessionwarden-")
        })
        .collect();
    assert!(banned.is_empty(), "sessionwarden-core links {banned:?}");
}

#[test]
fn no_lambda_binary_links_the_local_tooling() {
    for worker in [
        "sessionwarden-cleanup",
        "sessionwarden-stream",
        "sessionwarden-cascade",
    ] {
        let deps = closure(worker);
        for local in ["sessionwarden-local", "aws-sdk-dynamodbstreams"] {
            assert!(!deps.contains(local), "{worker} links {local}");
        }
        assert!(deps.contains("sessionwarden-core") && deps.contains("sessionwarden-aws"));
    }
}
