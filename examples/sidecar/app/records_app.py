#!/usr/bin/env python3
"""The application of the sidecar example: a small HTTP service, Python
standard library only, that `switchyard run` delivers Kafka records to.

POST /records takes one record envelope (a JSON object) or a batch (a JSON
array of them), as switchyard's HTTP delivery sends them:

    {"topic": "orders", "partition": 3, "offset": 42, "key": "k1",
     "key_encoding": "text", "timestamp": 1764590000000,
     "headers": {"trace": "abc"}, "value": {"id": 7}, "value_encoding": "json"}

and answers 204 once every record is processed: switchyard commits a record
only after a 2xx. A body that is not JSON, or an envelope without
topic/partition/offset, is answered 400 (switchyard retries, then applies the
listener's failure policy). GET /healthz answers 200 for the container's
probes. SIGTERM stops the server after the requests in progress.

    python3 records_app.py [--port 8000]
    python3 records_app.py --wait-for-exit switchyard --at-most 35

The second form is the container's preStop hook: it returns once no process
named `switchyard` is left in the pod (the pod shares one process namespace)
or after --at-most seconds, so the application keeps answering while the
sidecar finishes the records in flight and commits.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REQUIRED = ("topic", "partition", "offset")


def process(record):
    """The application's work on one record: here, one line on stdout."""
    line = {k: record.get(k) for k in ("topic", "partition", "offset", "key")}
    line["value"] = record.get("value")
    print(json.dumps(line, separators=(",", ":")), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self._answer(200, b"ok\n")
        else:
            self._answer(404, b"not found\n")

    def do_POST(self):
        if self.path != "/records":
            self._answer(404, b"not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            doc = json.loads(body)
        except ValueError as e:
            self._answer(400, f"not JSON: {e}\n".encode())
            return
        records = doc if isinstance(doc, list) else [doc]
        for r in records:
            if not isinstance(r, dict) or any(k not in r for k in REQUIRED):
                self._answer(400, b"an envelope needs topic, partition and offset\n")
                return
        for r in records:
            process(r)
        self._answer(204)

    def log_message(self, fmt, *args):
        # one line per request on stderr, without the client's address
        sys.stderr.write("%s\n" % (fmt % args))


def serve(port):
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = False
    server.block_on_close = True

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on :{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()


def running(name):
    """Is a process named `name` running (visible in /proc)?"""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == name:
                    return True
        except OSError:
            continue
    return False


def wait_for_exit(name, at_most):
    deadline = time.monotonic() + at_most
    while running(name) and time.monotonic() < deadline:
        time.sleep(0.5)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--wait-for-exit", metavar="NAME")
    p.add_argument("--at-most", type=float, default=35.0)
    a = p.parse_args()
    if a.wait_for_exit:
        wait_for_exit(a.wait_for_exit, a.at_most)
    else:
        serve(a.port)


if __name__ == "__main__":
    main()
