#!/usr/bin/env python3
"""Package and deploy infra/template.yaml: what `just deploy STACK` runs, and what tests/deploy.rs tests.

1. Package. Every function built with `BuildMethod: rust-cargolambda` gets its zip from
   ARTIFACTS/<Binary>/bootstrap.zip (what `just package` writes). Each zip must be under 10 MB. It
   is uploaded to s3://BUCKET/<Binary>/<sha256>.zip and the function's CodeUri becomes that S3 URI,
   as `sam package` would write it. A changed zip gets a new key, so CloudFormation updates the code.
2. Expand. The SAM transform (AWS::Serverless-2016-10-31) is run here, offline, with
   aws-sam-translator, the library CloudFormation itself runs. The result is plain CloudFormation:
   the stack needs no CAPABILITY_AUTO_EXPAND, and emulators without the transform (moto) can create
   it. The packaged template is written to --output.
3. Deploy. The template's Rules are checked against the parameters first (CloudFormation checks
   them too, but moto does not), then CreateStack, or UpdateStack if the stack exists, then wait,
   then print every resource's status. Exit status 1 if the stack did not reach *_COMPLETE, or if a
   resource of the template is missing from the stack (an emulator that skips an unsupported type
   would otherwise pass silently), unless its type was named with --tolerate-missing or its
   Condition is false with the stack's parameters (e.g. SessionsTable next to an existing table).

AWS_ENDPOINT_URL, AWS_REGION and the credentials come from the environment as for any AWS SDK, so
the same command deploys to an account or to a local emulator. Needs boto3 and aws-sam-translator
(`just venv` installs both).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import boto3
from botocore.exceptions import ClientError, WaiterError
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

MAX_ZIP_BYTES = 10 * 1024 * 1024
# CreateStack's TemplateBody limit; larger templates go through S3 (TemplateURL).
MAX_TEMPLATE_BODY = 51_200
ROOT = Path(__file__).resolve().parent.parent


def rust_functions(template: dict) -> dict[str, str]:
    """Logical ID -> cargo binary of every function that SAM builds with cargo-lambda."""
    out = {}
    for logical_id, res in template.get("Resources", {}).items():
        meta = res.get("Metadata", {})
        if res.get("Type") == "AWS::Serverless::Function" and meta.get("BuildMethod") == "rust-cargolambda":
            binary = meta.get("BuildProperties", {}).get("Binary")
            if not binary:
                sys.exit(f"{logical_id}: Metadata.BuildProperties.Binary is required (the workspace has several binaries)")
            out[logical_id] = binary
    return out


def load_zips(template: dict, artifacts: Path) -> dict[str, tuple[str, bytes]]:
    """Logical ID -> (binary, zip bytes) of every Rust function; exits if one is missing or too big."""
    zips = {}
    for logical_id, binary in rust_functions(template).items():
        zip_path = artifacts / binary / "bootstrap.zip"
        if not zip_path.is_file():
            sys.exit(f"{zip_path} is missing: run `just package` first")
        data = zip_path.read_bytes()
        if len(data) >= MAX_ZIP_BYTES:
            sys.exit(f"{zip_path} is {len(data)} bytes, over the 10 MB budget")
        zips[logical_id] = (binary, data)
    return zips


def package(template: dict, zips: dict[str, tuple[str, bytes]], s3, bucket: str) -> None:
    """Uploads each function's zip and points its CodeUri at it, as `sam package` does."""
    for logical_id, (binary, data) in zips.items():
        key = f"{binary}/{hashlib.sha256(data).hexdigest()}.zip"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        template["Resources"][logical_id]["Properties"]["CodeUri"] = f"s3://{bucket}/{key}"
        print(f"{logical_id}: s3://{bucket}/{key} ({len(data) / 1e6:.1f} MB)")


def expand(template: dict, session: boto3.session.Session) -> dict:
    """Runs the SAM transform offline. The template uses no managed policies, so the map is empty."""
    if "Transform" not in template:
        return template
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session)
    return translator.translate(sam_template=template, parameter_values={}, get_managed_policy_map=lambda: {})


def ensure_bucket(s3, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


class Unknown(Exception):
    """A value that cannot be worked out offline (a function or a reference not evaluated here)."""


def evaluate(node, values: dict[str, str], conditions: dict):
    """Evaluates a condition or rule assertion: Fn::Equals, Fn::Not, Fn::And, Fn::Or and Condition
    over literals and Refs to parameters (`values`). Raises Unknown for anything else."""
    if isinstance(node, list):
        return [evaluate(x, values, conditions) for x in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise Unknown(json.dumps(node))
    ((fn, arg),) = node.items()
    if fn == "Ref":
        if arg not in values:
            raise Unknown(f"Ref {arg}")
        return values[arg]
    if fn == "Condition":
        return evaluate(conditions[arg], values, conditions)
    if fn == "Fn::Equals":
        left, right = evaluate(arg, values, conditions)
        return str(left) == str(right)
    if fn == "Fn::Not":
        return not evaluate(arg[0], values, conditions)
    if fn == "Fn::And":
        return all(evaluate(arg, values, conditions))
    if fn == "Fn::Or":
        return any(evaluate(arg, values, conditions))
    raise Unknown(fn)


def kept_parameters(declared: dict, params: dict[str, str], previous: dict[str, str]) -> list[str]:
    """The parameters an update leaves out that keep their previous value: those without a default
    (SessionRefKey) and those set to something else than the default. The others follow the
    template's default."""
    return sorted(
        k
        for k, decl in declared.items()
        if k in previous and k not in params and ("Default" not in decl or previous[k] != str(decl["Default"]))
    )


def effective_parameters(declared: dict, params: dict[str, str], previous: dict[str, str]) -> dict[str, str]:
    """The parameter values the stack will have: given, else kept from the previous deploy, else default."""
    values = {k: str(decl["Default"]) for k, decl in declared.items() if "Default" in decl}
    values.update({k: previous[k] for k in kept_parameters(declared, params, previous)})
    values.update(params)
    return values


def broken_rules(template: dict, values: dict[str, str]) -> list[str]:
    """The AssertDescription of every assertion of the template's Rules that `values` break."""
    conditions = template.get("Conditions", {})
    broken = []
    for name, rule in template.get("Rules", {}).items():
        try:
            if not evaluate(rule.get("RuleCondition", True), values, conditions):
                continue
            for assertion in rule.get("Assertions", []):
                if not evaluate(assertion["Assert"], values, conditions):
                    broken.append(f"{name}: {' '.join(assertion.get('AssertDescription', 'assertion failed').split())}")
        except Unknown as e:
            print(f"rule {name} not checked here ({e}); CloudFormation checks it")
    return broken


def stack_parameters(cfn, stack: str) -> dict[str, str] | None:
    """The parameters of the deployed stack, or None if there is no such stack."""
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError:
        return None
    return {p["ParameterKey"]: p.get("ParameterValue") for p in described.get("Parameters", [])}


def deploy(cfn, s3, bucket: str, stack: str, template: dict, params: dict[str, str]) -> str:
    """CreateStack or UpdateStack; returns the operation ("create", "update" or "none")."""
    body = json.dumps(template, separators=(",", ":"), sort_keys=True)
    declared = template.get("Parameters", {})
    source = {"TemplateBody": body}
    if len(body.encode()) > MAX_TEMPLATE_BODY:
        key = f"templates/{stack}-{hashlib.sha256(body.encode()).hexdigest()}.json"
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        source = {"TemplateURL": f"https://{bucket}.s3.amazonaws.com/{key}"}
    args = dict(
        StackName=stack,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
        Capabilities=["CAPABILITY_IAM"],
        **source,
    )
    previous = stack_parameters(cfn, stack)
    if previous is None:
        cfn.create_stack(**args)
        cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 2, "MaxAttempts": 600})
        return "create"
    keep = kept_parameters(declared, params, previous)
    args["Parameters"] += [{"ParameterKey": k, "UsePreviousValue": True} for k in keep]
    try:
        cfn.update_stack(**args)
    except ClientError as e:
        if "No updates are to be performed" in str(e):
            return "none"
        raise
    cfn.get_waiter("stack_update_complete").wait(StackName=stack, WaiterConfig={"Delay": 2, "MaxAttempts": 600})
    return "update"


def report(cfn, stack: str, template: dict, tolerated: set[str]) -> bool:
    """Prints every stack resource's status; True if all are complete and none is missing.

    A resource whose Condition is false with the stack's parameters is not expected. A resource of
    a type in `tolerated` may be missing: moto 5.2.5's CloudFormation skips the types it does not
    implement (AWS::CloudWatch::Alarm, AWS::Lambda::EventInvokeConfig) with a warning, and lists a
    blank CREATE_COMPLETE entry in their place (as it does for a resource whose Condition is false).
    """
    resources = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        resources += page["StackResourceSummaries"]
    ok = True
    named = [r for r in resources if r.get("LogicalResourceId")]
    for r in sorted(named, key=lambda r: r["LogicalResourceId"]):
        status = r["ResourceStatus"]
        ok &= status.endswith("_COMPLETE") and "ROLLBACK" not in status
        print(f"  {status:<16} {r['ResourceType']:<36} {r['LogicalResourceId']}")
    values = effective_parameters(template.get("Parameters", {}), stack_parameters(cfn, stack) or {}, {})
    conditions = template.get("Conditions", {})
    missing = []
    for logical_id in sorted(set(template["Resources"]) - {r["LogicalResourceId"] for r in named}):
        condition = template["Resources"][logical_id].get("Condition")
        try:
            expected = condition is None or evaluate(conditions[condition], values, conditions)
        except Unknown:
            expected = True
        if expected:
            missing.append(logical_id)
        else:
            kind = template["Resources"][logical_id]["Type"]
            print(f"  {'NOT CREATED':<16} {kind:<36} {logical_id}  (condition {condition} is false)")
    for logical_id in missing:
        kind = template["Resources"][logical_id]["Type"]
        ok &= kind in tolerated
        note = "  (not implemented by the emulator; tolerated)" if kind in tolerated else ""
        print(f"  {'MISSING':<16} {kind:<36} {logical_id}{note}")
    if len(named) < len(resources):
        print(f"  ({len(resources) - len(named)} blank entries: the emulator's stand-ins for skipped resources)")
    stack_status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    print(f"stack {stack}: {stack_status}, {len(named)} resources created, {len(missing)} missing")
    return ok and stack_status in ("CREATE_COMPLETE", "UPDATE_COMPLETE")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stack", help="stack name; also the Prefix parameter unless --parameter Prefix=... is given")
    ap.add_argument("--template", type=Path, default=ROOT / "infra/template.yaml")
    ap.add_argument("--artifacts", type=Path, default=ROOT / "target/lambda", help="where `just package` put <bin>/bootstrap.zip")
    ap.add_argument("--bucket", help="artifact bucket (created if missing); default sessionwarden-artifacts-ACCOUNT-REGION")
    ap.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="stack parameter, repeatable")
    ap.add_argument("--output", type=Path, default=ROOT / "target/lambda/packaged.json", help="where to write the packaged template")
    ap.add_argument("--package-only", action="store_true", help="upload and write the packaged template, do not deploy")
    ap.add_argument(
        "--tolerate-missing",
        action="append",
        default=[],
        metavar="TYPE",
        help="a resource type the target may skip (an emulator that lacks it), repeatable",
    )
    args = ap.parse_args()

    params = dict(p.split("=", 1) for p in args.parameter)
    params.setdefault("Prefix", args.stack)
    # The Rust SDK reads AWS_REGION; boto3 only AWS_DEFAULT_REGION or its config file.
    region = os.environ.get("AWS_REGION") or boto3.session.Session().region_name or "us-east-1"
    session = boto3.session.Session(region_name=region)
    s3 = session.client("s3", region_name=region)
    cfn = session.client("cloudformation", region_name=region)
    template = yaml_parse(args.template.read_text())
    zips = load_zips(template, args.artifacts)
    bucket = args.bucket
    if not bucket:
        account = session.client("sts", region_name=region).get_caller_identity()["Account"]
        bucket = f"sessionwarden-artifacts-{account}-{region}"
    ensure_bucket(s3, bucket, region)

    package(template, zips, s3, bucket)
    expanded = expand(template, session)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(expanded, indent=1, sort_keys=True) + "\n")
    print(f"packaged template: {args.output} ({len(expanded['Resources'])} resources)")
    if args.package_only:
        return 0
    previous = stack_parameters(cfn, args.stack)
    if "SessionRefKey" not in params and previous is None:
        sys.exit("a new stack needs --parameter SessionRefKey=... (e.g. $(openssl rand -hex 24))")
    broken = broken_rules(expanded, effective_parameters(expanded.get("Parameters", {}), params, previous or {}))
    if broken:
        sys.exit("the parameters break the template's rules:\n  " + "\n  ".join(broken))
    try:
        op = deploy(cfn, s3, bucket, args.stack, expanded, params)
    except WaiterError as e:
        print(f"stack {args.stack} failed: {e}", file=sys.stderr)
        report(cfn, args.stack, expanded, set(args.tolerate_missing))
        return 1
    print(f"{op}: {args.stack}")
    return 0 if report(cfn, args.stack, expanded, set(args.tolerate_missing)) else 1


if __name__ == "__main__":
    sys.exit(main())
