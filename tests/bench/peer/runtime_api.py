#!/usr/bin/env python3
"""The process bench of `just bench stream`: the Rust stream worker and its Powertools peer as real
processes behind a Lambda Runtime API emulator, on the same event bodies, against the same tables.

For every event file (`<mix>-<size>.json`, written by `stream-bench --emit DIR`), every contestant
and every one of `--runs` runs (contestants interleaved, so drifting load hits both alike):

1. `sessionctl init --prefix <fresh>` provisions a fresh sessions table, state table, queues and
   topic on the emulators (`tests/with-emulators` exports their endpoints), so no run sees another
   run's bindings or counters; both contestants get the same configuration (the printed variables,
   one SESSION_REF_KEY, METRICS_SINK=emf, FUNCTION_TIMEOUT_SECONDS=900).
2. A fresh Runtime API emulator starts on a free 127.0.0.1 port and the contestant is spawned with
   `AWS_LAMBDA_RUNTIME_API` and the variables Lambda sets: `rust` is the release binary
   (target/release/sessionwarden-stream), `peer` is `python -m awslambdaric peer.handler`
   (tests/bench/peer/peer.py, run by the bench venv's Python: the real AWS Python RIC). Each
   contestant goes first in every other run.
3. Cold start: spawn -> first GET /2018-06-01/runtime/invocation/next (monotonic clock). The event
   is handed out on that poll (deadline now + 900 s). CPU of the process (all threads) is sampled
   at hand-out and when POST .../response arrives: utime+stime from /proc/<pid>/stat (clock ticks,
   10 ms) and, for resolution, the sum of /proc/<pid>/task/*/schedstat run times (ns, threads
   alive at the second sample: both contestants keep their threads, and a thread that ends in
   between is reported, since the precise figure would miss its time). Wall = hand-out -> response. Peak RSS = VmHWM after the response.
   The response must have no batchItemFailures; the process's logs must show no ERROR, and its
   `stream batch summary` line must count every record processed. Then the process is killed.
   With `--warm K` (default 2), the same event is then handed out K more times to the same
   process (a redelivery, as Lambda reuses a process): each warm invocation's CPU (schedstat)
   and wall are reported apart, since the first invocation of a process also pays for growing
   its heap, and most invocations in production are warm.
4. AWS requests: every contestant reaches AWS through a counting forwarder in this process (one
   per emulator: DynamoDB Local, moto), which tallies each request by its operation (X-Amz-Target
   or the query Action), separately for init (before the first poll) and for the invocation.

The driver itself (this process: emulator, forwarders) is outside the measured processes. Standard
library only. Prints one markdown table per (mix, size): median of the runs with min-max, and the
ratio peer/rust of the medians; `--json FILE` writes every run and every summary.

Usage (under tests/with-emulators, from the bench venv):
  tests/with-emulators .venv-bench/bin/python tests/bench/peer/runtime_api.py \
      [--events target/bench-events] [--mixes touch,insert,mixed] [--sizes 1000,10000] \
      [--runs 3] [--contestants rust,peer] [--json FILE] [--logs DIR]
"""

import argparse
import glob
import http.client
import http.server
import json
import os
import py_compile
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PEER_DIR = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")
MIXES = ("touch", "insert", "mixed", "anomaly")
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ERROR_LINE = re.compile(r'(\bERROR\b|"level":\s*"ERROR"|panicked|Traceback \(most recent call last\))')
WARN_LINE = re.compile(r'(\bWARN\b|"level":\s*"WARNING")')


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ------------------------------------------------------------------------------------------------
# Counting forwarders in front of the AWS emulators
# ------------------------------------------------------------------------------------------------


class Tally:
    """Requests by (phase, operation); the Runtime API emulator moves the phase."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = "idle"
        self.counts = {}

    def reset(self):
        with self.lock:
            self.phase = "init"
            self.counts = {}

    def set_phase(self, phase):
        with self.lock:
            self.phase = phase

    def add(self, operation):
        with self.lock:
            key = (self.phase, operation)
            self.counts[key] = self.counts.get(key, 0) + 1

    def snapshot(self):
        with self.lock:
            return dict(self.counts)


def operation_of(headers, body):
    """`Service.Operation` of a request: X-Amz-Target (JSON protocols) or Action= (query)."""
    target = headers.get("X-Amz-Target")
    if target:
        service, _, op = target.partition(".")
        service = {"DynamoDB_20120810": "DynamoDB", "AmazonSQS": "SQS", "DynamoDBStreams_20120810": "DynamoDBStreams"}.get(service, service)
        return f"{service}.{op}"
    if "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        version = form.get("Version", ["?"])[0]
        service = {"2010-03-31": "SNS", "2010-08-01": "CloudWatch", "2012-11-05": "SQS"}.get(version, version)
        return f"{service}.{form.get('Action', ['?'])[0]}"
    return "other.?"


class Forwarder(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A killed contestant drops its held poll or a pooled connection: not an error of the bench.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def start_forwarder(upstream, tally):
    up = urllib.parse.urlsplit(upstream)
    local = threading.local()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            tally.add(operation_of(self.headers, body))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            for attempt in range(2):
                conn = getattr(local, "conn", None)
                if conn is None or attempt > 0:
                    if conn is not None:
                        conn.close()
                    conn = local.conn = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    status, rheaders, payload = resp.status, resp.getheaders(), resp.read()
                    break
                except (ConnectionError, http.client.HTTPException, OSError):
                    if attempt == 1:
                        raise
            self.send_response(status)
            for k, v in rheaders:
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    server = Forwarder(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# ------------------------------------------------------------------------------------------------
# The process, as /proc shows it
# ------------------------------------------------------------------------------------------------


def cpu_sample(pid):
    """(utime+stime in clock ticks, {tid: run time ns}) of every thread of `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    threads = {}
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                threads[path.split("/")[4]] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return ticks, threads


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------------------------
# The Lambda Runtime API emulator: one invocation per process
# ------------------------------------------------------------------------------------------------


class Invocation:
    def __init__(self, body, function_arn, tally, warm=0):
        self.body = body
        # Warm invocations: the same event handed out again this many times after the first
        # response (a redelivery, in the same process, as Lambda reuses it).
        self.warm = warm
        self.handed = 0
        self.out = False
        self.warm_id = None
        self.warm_handout = None
        self.warm_samples = []
        self.function_arn = function_arn
        self.tally = tally
        self.request_id = str(uuid.uuid4())
        self.pid = None
        self.lock = threading.Lock()
        self.handed_out = False
        self.done = threading.Event()
        self.stop = threading.Event()
        self.first_poll = None
        self.init_cpu = None
        self.handout = None
        self.handout_cpu = None
        self.response_at = None
        self.response_cpu = None
        self.hwm_kb = None
        self.response = None
        self.error = None


def start_runtime_api(inv):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != "/2018-06-01/runtime/invocation/next":
                return self.reply(404, b'{"errorMessage":"unknown path"}')
            with inv.lock:
                first = not inv.handed_out
                inv.handed_out = True
                again = not first and not inv.out and inv.handed <= inv.warm and inv.error is None
                if first:
                    now = time.monotonic()
                    inv.first_poll = now
                    inv.init_cpu = cpu_sample(inv.pid)
                    inv.tally.set_phase("invoke")
                    inv.handout_cpu = cpu_sample(inv.pid)
                    inv.handout = time.monotonic()
                elif again:
                    inv.warm_id = str(uuid.uuid4())
                    inv.warm_handout = (time.monotonic(), cpu_sample(inv.pid))
                if first or again:
                    inv.handed += 1
                    inv.out = True
                request_id = inv.request_id if first else inv.warm_id
            if not (first or again):
                # The next poll after the last response: held until the run ends (the process is killed).
                inv.stop.wait()
                return self.reply(500, b'{"errorMessage":"bench over"}')
            deadline_ms = int(time.time() * 1000) + 900_000
            self.reply(
                200,
                inv.body,
                [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                    ("Lambda-Runtime-Invoked-Function-Arn", inv.function_arn),
                    ("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"),
                ],
            )

        def do_POST(self):
            body = self.read_body()
            path = self.path
            if path == f"/2018-06-01/runtime/invocation/{inv.request_id}/response":
                with inv.lock:
                    inv.response_cpu = cpu_sample(inv.pid)
                    inv.response_at = time.monotonic()
                    inv.hwm_kb = vm_hwm_kb(inv.pid)
                    inv.tally.set_phase("after")
                    inv.response = body
                    inv.out = False
                self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
                if inv.warm == 0:
                    inv.done.set()
            elif inv.warm_id and path == f"/2018-06-01/runtime/invocation/{inv.warm_id}/response":
                with inv.lock:
                    (t1, th1), (at0, (_, th0)) = cpu_sample(inv.pid), inv.warm_handout
                    inv.warm_samples.append(
                        {
                            "cpu_ms": sum(ns - th0.get(tid, 0) for tid, ns in th1.items()) / 1e6,
                            "wall_ms": (time.monotonic() - at0) * 1000,
                            "response": body[:2000].decode("utf-8", "replace"),
                        }
                    )
                    inv.out = False
                    last = inv.handed > inv.warm
                self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
                if last:
                    inv.done.set()
            elif path.endswith("/error"):
                with inv.lock:
                    inv.error = f"{path}: {self.headers.get('Lambda-Runtime-Function-Error-Type', '')} {body[:2000].decode('utf-8', 'replace')}"
                self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
                inv.done.set()
            else:
                self.reply(404, b'{"errorMessage":"unknown path"}')

    server = Forwarder(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ------------------------------------------------------------------------------------------------
# One run
# ------------------------------------------------------------------------------------------------


def provision(sessionctl, prefix, key):
    env = dict(os.environ, SESSION_REF_KEY=key, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    env.pop("RUST_LOG", None)
    out = subprocess.run([sessionctl, "init", "--prefix", prefix], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"sessionctl init --prefix {prefix} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    for var in ("SESSIONS_TABLE", "STATE_TABLE", "CASCADE_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "ALERTS_TOPIC_ARN"):
        if var not in lines:
            sys.exit(f"sessionctl init printed no {var}:\n{out.stdout}")
    return lines


def contestant_env(name, port, endpoints, config):
    """What Lambda sets, the SDK endpoints (through the forwarders) and the worker's configuration."""
    function = {"rust": "sessionwarden-stream", "peer": "sessionwarden-peer"}[name]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/01/01/[$LATEST]{secrets.token_hex(16)}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": "bootstrap" if name == "rust" else "peer.handler",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": endpoints["default"],
        "METRICS_SINK": "emf",
        "FUNCTION_TIMEOUT_SECONDS": "900",
    }
    if "dynamodb" in endpoints:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoints["dynamodb"]
        env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = endpoints["dynamodb"]
    env.update(config)
    if name == "peer":
        env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"
        env["LAMBDA_TASK_ROOT"] = PEER_DIR
        env["PYTHONPATH"] = PEER_DIR
    return env


def summary_of(text):
    """The `stream batch summary` report of a log: Rust's text line or Powertools' JSON line."""
    for line in text.splitlines():
        if "stream batch summary" not in line:
            continue
        line = ANSI.sub("", line)
        if line.lstrip().startswith("{"):
            try:
                return json.loads(json.loads(line)["summary"])
            except (ValueError, KeyError, TypeError):
                continue
        at = line.find("summary={")
        if at >= 0:
            try:
                return json.JSONDecoder().raw_decode(line[at + len("summary=") :])[0]
            except ValueError:
                continue
    return None


def run_once(args, name, body, records, endpoints, config, tally, log_path):
    inv = Invocation(body, f"arn:aws:lambda:us-east-1:123456789012:function:{'sessionwarden-stream' if name == 'rust' else 'sessionwarden-peer'}", tally, args.warm)
    server = start_runtime_api(inv)
    env = contestant_env(name, server.server_address[1], endpoints, config)
    cmd = [args.rust] if name == "rust" else [args.peer_python, "-m", "awslambdaric", "peer.handler"]
    cwd = ROOT if name == "rust" else PEER_DIR
    tally.reset()
    with open(log_path, "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        inv.pid = proc.pid
        deadline = started + args.timeout
        while not inv.done.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
        exited = proc.poll()
        if exited is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        inv.stop.set()
        server.shutdown()
        server.server_close()
    with open(log_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    problems = []
    if exited is not None:
        problems.append(f"the process exited ({exited}) before its response")
    if inv.error:
        problems.append(f"error reported to the Runtime API: {inv.error}")
    if inv.response is None and not problems:
        problems.append(f"no response within {args.timeout} s")
    if inv.response is not None and len(inv.warm_samples) < args.warm and not problems:
        problems.append(f"{len(inv.warm_samples)} of {args.warm} warm invocations answered within {args.timeout} s")
    for w in inv.warm_samples:
        if '"batchItemFailures":[]' not in w["response"].replace(" ", ""):
            problems.append(f"a warm invocation answered {w['response']}")
    failures = None
    if inv.response is not None:
        try:
            failures = json.loads(inv.response).get("batchItemFailures")
        except (ValueError, AttributeError):
            failures = "unreadable"
        if failures:
            problems.append(f"batchItemFailures in the response: {inv.response[:2000].decode('utf-8', 'replace')}")
    errors = [ANSI.sub("", line) for line in text.splitlines() if ERROR_LINE.search(ANSI.sub("", line))]
    warnings = [ANSI.sub("", line) for line in text.splitlines() if WARN_LINE.search(ANSI.sub("", line))]
    if errors:
        problems.append(f"{len(errors)} error line(s) in the log, e.g. {errors[0][:500]}")
    summary = summary_of(text)
    if inv.response is not None:
        if summary is None:
            problems.append("no `stream batch summary` line in the log")
        elif summary.get("processed") != records or summary.get("records") != records:
            problems.append(f"summary counts {summary.get('processed')} of {summary.get('records')} records processed, expected {records}")
    counts = tally.snapshot()
    result = {
        "contestant": name,
        "log": log_path,
        "problems": problems,
        "warnings": len(warnings),
        "summary": summary,
        "requests_init": {op: n for (phase, op), n in counts.items() if phase == "init"},
        "requests_invoke": {op: n for (phase, op), n in counts.items() if phase == "invoke"},
        "requests_after": {op: n for (phase, op), n in counts.items() if phase == "after"},
    }
    if inv.first_poll is not None:
        result["cold_start_ms"] = (inv.first_poll - started) * 1000
        result["init_cpu_s"] = inv.init_cpu[0] / TICK
        result["init_cpu_ms_precise"] = sum(inv.init_cpu[1].values()) / 1e6
    if inv.response_at is not None:
        (t0, th0), (t1, th1) = inv.handout_cpu, inv.response_cpu
        gone = sorted(set(th0) - set(th1))
        result["batch_cpu_s"] = (t1 - t0) / TICK
        result["batch_cpu_ms_precise"] = sum(ns - th0.get(tid, 0) for tid, ns in th1.items()) / 1e6
        result["threads"] = len(th1)
        if gone:
            result["threads_gone"] = gone
            problems.append(f"threads {gone} ended during the invocation: the precise CPU figure misses their time")
        elif (t1 - t0) / TICK * 1000 > result["batch_cpu_ms_precise"] + 2000 / TICK:
            # A thread that started and ended between the samples: only the ticks saw it.
            problems.append(
                f"batch CPU {(t1 - t0) / TICK * 1000:.0f} ms by ticks but {result['batch_cpu_ms_precise']:.0f} ms by "
                "schedstat: a thread ended during the invocation, the precise figure misses its time"
            )
        result["wall_ms"] = (inv.response_at - inv.handout) * 1000
        result["warm_cpu_ms"] = [w["cpu_ms"] for w in inv.warm_samples]
        result["warm_wall_ms"] = [w["wall_ms"] for w in inv.warm_samples]
        result["peak_rss_mb"] = inv.hwm_kb / 1024
        result["total_cpu_s"] = t1 / TICK
    return result


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def cell(values, fmt):
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def ratio(peer, rust):
    if not peer or not rust:
        return "-"
    p, r = statistics.median(peer), statistics.median(rust)
    if r == 0:
        return "= (both 0)" if p == 0 else "∞ (rust 0)"
    return f"{p / r:.1f}×"


def table(mix, size, runs, load):
    by = {c: [r for r in runs if r["contestant"] == c] for c in ("rust", "peer")}
    per_k = 1000 / size
    rows = [
        ("cold start, ms (spawn → first poll)", "cold_start_ms", "{:.1f}"),
        ("init CPU, ms (to first poll, schedstat)", "init_cpu_ms_precise", "{:.1f}"),
        ("batch CPU, s (utime+stime, ticks)", "batch_cpu_s", "{:.2f}"),
        ("batch CPU, ms (schedstat, ns)", "batch_cpu_ms_precise", "{:.1f}"),
        ("wall, ms (hand-out → response)", "wall_ms", "{:.1f}"),
        ("peak RSS, MB (VmHWM)", "peak_rss_mb", "{:.1f}"),
    ]
    out = [f"### {mix}, {size} records ({len(by['rust'])} rust / {len(by['peer'])} peer runs; load average {load} at start)", ""]
    out.append("| figure | sessionwarden | peer | ratio (peer/rust) |")
    out.append("|---|---:|---:|---:|")
    for label, key, fmt in rows:
        vals = {c: [r[key] for r in by[c] if key in r] for c in by}
        out.append(f"| {label} | {cell(vals['rust'], fmt)} | {cell(vals['peer'], fmt)} | {ratio(vals['peer'], vals['rust'])} |")
    for label, key in (
        ("warm batch CPU, ms (the same event again, same process; schedstat)", "warm_cpu_ms"),
        ("warm wall, ms", "warm_wall_ms"),
    ):
        vals = {c: [v for r in by[c] for v in r.get(key, [])] for c in by}
        if vals["rust"] or vals["peer"]:
            out.append(f"| {label} | {cell(vals['rust'], '{:.1f}')} | {cell(vals['peer'], '{:.1f}')} | {ratio(vals['peer'], vals['rust'])} |")

    def requests(r, op=None):
        ops = dict(r["requests_init"])
        for k, v in r["requests_invoke"].items():
            ops[k] = ops.get(k, 0) + v
        return sum(v for k, v in ops.items() if op is None or k == op) * per_k

    vals = {c: [requests(r) for r in by[c]] for c in by}
    out.append(f"| AWS requests / 1,000 records | {cell(vals['rust'], '{:.1f}')} | {cell(vals['peer'], '{:.1f}')} | {ratio(vals['peer'], vals['rust'])} |")
    ops = sorted({op for c in by for r in by[c] for op in list(r["requests_init"]) + list(r["requests_invoke"])})
    for op in ops:
        vals = {c: [requests(r, op) for r in by[c]] for c in by}
        out.append(f"| … {op} / 1,000 records | {cell(vals['rust'], '{:.1f}')} | {cell(vals['peer'], '{:.1f}')} | {ratio(vals['peer'], vals['rust'])} |")
    init_ops = sorted({op for c in by for r in by[c] for op in r["requests_init"]})
    if init_ops:
        out.append(f"| (of which before the first poll: {', '.join(init_ops)}) | | | |")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", default=os.path.join(ROOT, "target", "bench-events"), help="directory of <mix>-<size>.json event bodies")
    p.add_argument("--mixes", default=",".join(MIXES))
    p.add_argument("--sizes", default="", help="comma-separated sizes (default: every size found)")
    p.add_argument("--files", nargs="*", default=[], help="event files to run instead of --events/--mixes/--sizes")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warm", type=int, default=2, help="warm invocations per run: the same event again, in the same process, after the first (reported apart; 0: none)")
    p.add_argument("--contestants", default="rust,peer")
    p.add_argument("--rust", default=os.path.join(ROOT, "target", "release", "sessionwarden-stream"))
    p.add_argument("--peer-python", default=sys.executable, help="the bench venv's python (awslambdaric, Powertools, boto3)")
    p.add_argument("--sessionctl", default=os.path.join(ROOT, "target", "debug", "sessionctl"))
    p.add_argument("--json", help="write every run and summary here")
    p.add_argument("--logs", default=os.path.join(ROOT, "target", "bench-logs"), help="each process's stdout+stderr")
    p.add_argument("--timeout", type=float, default=900, help="seconds one run may take")
    a = p.parse_args()

    if "AWS_ENDPOINT_URL" not in os.environ:
        sys.exit("AWS_ENDPOINT_URL is not set: run this under tests/with-emulators (it starts DynamoDB Local and moto)")
    contestants = [c for c in a.contestants.split(",") if c]
    for c in contestants:
        if c not in ("rust", "peer"):
            sys.exit(f"--contestants: unknown {c!r} (rust, peer)")
    if "rust" in contestants and not os.access(a.rust, os.X_OK):
        sys.exit(f"{a.rust} is missing: cargo build --release -p sessionwarden-stream")
    if not os.access(a.sessionctl, os.X_OK):
        sys.exit(f"{a.sessionctl} is missing: cargo build -p sessionctl")
    files = a.files
    if not files:
        sizes = {int(s) for s in a.sizes.split(",") if s}
        found = []
        for path in glob.glob(os.path.join(a.events, "*-*.json")):
            mix, _, size = os.path.basename(path)[: -len(".json")].rpartition("-")
            if mix in a.mixes.split(",") and size.isdigit() and (not sizes or int(size) in sizes):
                found.append((a.mixes.split(",").index(mix), int(size), path))
        files = [f for _, _, f in sorted(found)]
    if not files:
        sys.exit(f"no event files in {a.events} for mixes {a.mixes} sizes {a.sizes or 'any'}: run stream-bench --emit {a.events}")
    os.makedirs(a.logs, exist_ok=True)
    # The peer's own module compiled once, as a deployment package ships it (site-packages are
    # compiled by pip): no run pays for compiling it.
    py_compile.compile(os.path.join(PEER_DIR, "peer.py"), doraise=True)

    tally = Tally()
    endpoints, servers = {}, []
    for key, var in (("default", "AWS_ENDPOINT_URL"), ("dynamodb", "AWS_ENDPOINT_URL_DYNAMODB")):
        if os.environ.get(var):
            server, url = start_forwarder(os.environ[var], tally)
            servers.append(server)
            endpoints[key] = url
    key = secrets.token_hex(24)
    tag = secrets.token_hex(3)
    print(f"process bench: load average {loadavg()} at start, {os.cpu_count()} CPUs, {a.runs} runs per contestant, {a.warm} warm invocations per run, clock tick {1000 // TICK} ms")
    print(f"rust: {a.rust}; peer: {a.peer_python} -m awslambdaric peer.handler ({PEER_DIR})")
    results = []
    failed = False
    for path in files:
        with open(path, "rb") as f:
            body = f.read()
        records = len(json.loads(body)["Records"])
        mix, _, size = os.path.basename(path)[: -len(".json")].rpartition("-")
        load = loadavg()
        runs = []
        for n in range(a.runs):
            # Each contestant goes first in every other run: neither always meets a cold emulator.
            for name in contestants if n % 2 == 0 else contestants[::-1]:
                prefix = f"pb{tag}-{mix[:2]}{size}-{name[0]}{n}"
                config = provision(a.sessionctl, prefix, key)
                log_path = os.path.join(a.logs, f"{mix}-{size}-{name}-{n}.log")
                r = run_once(a, name, body, records, endpoints, config, tally, log_path)
                r.update({"mix": mix, "size": int(size), "records": records, "run": n, "prefix": prefix})
                runs.append(r)
                status = "ok" if not r["problems"] else "PROBLEM"
                print(
                    f"  {mix}-{size} {name} run {n}: {status}, cold start {r.get('cold_start_ms', float('nan')):.1f} ms, "
                    f"batch CPU {r.get('batch_cpu_ms_precise', float('nan')):.1f} ms, wall {r.get('wall_ms', float('nan')):.1f} ms, "
                    f"peak RSS {r.get('peak_rss_mb', float('nan')):.1f} MB, requests {sum(r['requests_invoke'].values()) + sum(r['requests_init'].values())}",
                    flush=True,
                )
                for problem in r["problems"]:
                    failed = True
                    print(f"    {problem} (log: {log_path})", flush=True)
        summaries = {c: [r["summary"] for r in runs if r["contestant"] == c and r["summary"]] for c in contestants}
        if len(contestants) == 2 and summaries["rust"] and summaries["peer"]:
            strip = lambda s: {k: v for k, v in s.items() if k != "failedFrom"}  # noqa: E731
            if strip(summaries["rust"][0]) != strip(summaries["peer"][0]):
                print(f"    the two summaries differ:\n      rust {summaries['rust'][0]}\n      peer {summaries['peer'][0]}")
        print()
        print(table(mix, int(size), runs, load))
        print(flush=True)
        results.extend(runs)
    print(f"load average {loadavg()} at end")
    for s in servers:
        s.shutdown()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"load_end": loadavg(), "runs": results}, f, indent=1, default=str)
        print(f"results: {a.json}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
