#!/usr/bin/env python3
"""A fault-injecting reverse proxy between the workers and one AWS emulator (DynamoDB Local or moto).

Every request to 127.0.0.1:PORT is forwarded to UPSTREAM. At a seeded rate (--rate, default 0.2)
one fault is injected instead of a plain forward, chosen per request from random.Random(--seed):

- throttle   the request is not forwarded; the answer is the service's throttling error, in the
             request's protocol: DynamoDB/SQS JSON (awsJson1_0, with SQS's x-amzn-query-error
             header), or query XML (SNS, CloudWatch). The Rust SDK retries both codes
             ("ThrottlingException", "Throttling": aws-runtime's THROTTLING_ERRORS).
- 500, 503   the request is not forwarded; a bare 5xx (the SDK retries 500/502/503/504).
- lost-reset the request IS forwarded and applied; the connection is then reset with no response.
- lost-500   the request IS forwarded and applied; the answer is a 500.
- slow       the request is forwarded after --slow-ms milliseconds.

Each injected fault is one JSON line in --log: {"n", "service", "operation", "fault"}.
moto's own admin calls (/moto-api/) are never faulted. Python 3.11 standard library only.

--kinds restricts the faults drawn from: `--rate 1 --kinds slow --slow-ms 2000` makes every call
2 s slower and nothing else.

Usage: proxy.py --upstream http://127.0.0.1:8000 [--port 0] [--seed 1] [--rate 0.2]
                [--slow-ms 300] [--kinds throttle,500,503,lost-reset,lost-500,slow]
                [--log faults.jsonl]
On start it prints "listening PORT" on stdout (so --port 0 picks a free port).
"""

import argparse
import http.client
import http.server
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse

VERBOSE = False
KINDS = ["throttle", "500", "503", "lost-reset", "lost-500", "slow"]
# Hop-by-hop headers are not forwarded.
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class Faults:
    def __init__(self, seed, rate, log_path, kinds=KINDS):
        self.rng = random.Random(seed)
        self.rate = rate
        self.kinds = kinds
        self.lock = threading.Lock()
        self.n = 0
        self.log = open(log_path, "a", buffering=1) if log_path else None

    def pick(self):
        with self.lock:
            self.n += 1
            if self.rate <= 0 or self.rng.random() >= self.rate:
                return self.n, None
            return self.n, self.rng.choice(self.kinds)

    def record(self, n, service, operation, fault):
        if self.log is None:
            return
        with self.lock:
            self.log.write(json.dumps({"n": n, "service": service, "operation": operation, "fault": fault}) + "\n")


def describe(headers, body):
    """(protocol, service, operation) of a request: json (X-Amz-Target) or query (Action=)."""
    target = headers.get("X-Amz-Target")
    ctype = headers.get("Content-Type", "")
    if target:
        service, _, operation = target.partition(".")
        return "json", service, operation
    if "x-www-form-urlencoded" in ctype:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", ["?"])[0]
        version = form.get("Version", ["?"])[0]
        service = {"2010-03-31": "SNS", "2010-08-01": "CloudWatch", "2012-11-05": "SQS"}.get(version, version)
        return "query", service, action
    return "other", "?", "?"


def throttle_response(protocol, service):
    """(status, headers, body) of the service's throttling error in the request's protocol."""
    if protocol == "json":
        if service.startswith("DynamoDB"):
            kind = "com.amazonaws.dynamodb.v20120810#ThrottlingException"
            headers = {}
        else:  # SQS (awsJson1_0, query-compatible): the SDK takes the code from x-amzn-query-error.
            kind = "com.amazonaws.sqs#ThrottlingException"
            headers = {"x-amzn-query-error": "Throttling;Sender"}
        body = json.dumps({"__type": kind, "message": "Rate exceeded"}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return 400, headers, body
    body = (
        b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
        b"<Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"
    )
    return 400, {"Content-Type": "text/xml"}, body


def server_error_response(status, protocol, service):
    """(status, headers, body) of a 500 (InternalServerError) or 503 (ServiceUnavailable) in the
    request's protocol, so the SDK parses an error code, as it would from AWS."""
    code = "InternalServerError" if status == 500 else "ServiceUnavailable"
    if protocol == "json":
        ns = "com.amazonaws.dynamodb.v20120810" if service.startswith("DynamoDB") else "com.amazonaws.sqs"
        body = json.dumps({"__type": f"{ns}#{code}", "message": "injected"}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.0"}, body
    if protocol == "query":
        code = "InternalFailure" if status == 500 else "ServiceUnavailable"
        body = (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>"
            f"<Message>injected</Message></Error><RequestId>x</RequestId></ErrorResponse>"
        ).encode()
        return status, {"Content-Type": "text/xml"}, body
    return status, {"Content-Type": "text/plain"}, b"injected"


def make_handler(upstream, faults, slow_ms):
    up = urllib.parse.urlsplit(upstream)
    local = threading.local()

    def connection(fresh=False):
        conn = getattr(local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
            local.conn = conn
        return conn

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self, body):
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            # The client's own Host header is kept (it is signed); http.client adds none then.
            for attempt in range(2):
                conn = connection(fresh=attempt > 0)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    out = resp.status, resp.getheaders(), resp.read()
                    if VERBOSE and out[0] >= 400:
                        print(f"upstream {out[0]} for {self.command} {self.path} {dict(self.headers)}: {out[2][:300]!r}", file=sys.stderr)
                    return out
                except (ConnectionError, http.client.HTTPException, OSError):
                    # A stale pooled connection: retry once on a new one (the request was not applied).
                    if attempt == 1:
                        raise

        def reply(self, status, headers, body):
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def reset(self):
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/moto-api"):
                return self.reply(*self.forward(body))
            protocol, service, operation = describe(self.headers, body)
            n, fault = faults.pick()
            if fault is None:
                return self.reply(*self.forward(body))
            faults.record(n, service, operation, fault)
            if fault == "throttle":
                status, headers, payload = throttle_response(protocol, service)
                return self.reply(status, list(headers.items()), payload)
            if fault in ("500", "503"):
                status, headers, payload = server_error_response(int(fault), protocol, service)
                return self.reply(status, list(headers.items()), payload)
            if fault == "slow":
                time.sleep(slow_ms / 1000)
                return self.reply(*self.forward(body))
            self.forward(body)  # applied upstream; the response is lost
            if fault == "lost-500":
                status, headers, payload = server_error_response(500, protocol, service)
                return self.reply(status, list(headers.items()), payload)
            return self.reset()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=0.2)
    p.add_argument("--slow-ms", type=int, default=300)
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated faults to draw from")
    p.add_argument("--log")
    p.add_argument("--verbose", action="store_true", help="print upstream errors on stderr")
    a = p.parse_args()
    global VERBOSE
    VERBOSE = a.verbose
    kinds = [k for k in a.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        p.error(f"--kinds: unknown {unknown}, expected some of {','.join(KINDS)}")
    faults = Faults(a.seed, a.rate, a.log, kinds)
    server = Server(("127.0.0.1", a.port), make_handler(a.upstream, faults, a.slow_ms))
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
