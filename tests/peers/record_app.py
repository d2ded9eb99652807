#!/usr/bin/python3
"""An application in another language for the delivery tests of
`switchyard run`: it takes Kafka records as JSON envelopes, over HTTP or on
stdin, and appends each record it processed to a log in the testkit's
processed-log format (instance, topic, partition, offset, key, value;
tab-separated, one write per line).

    record_app.py http --log FILE --name NAME [--port N] [--fail-value V] [--delay-ms D]
                       [--in-flight FILE] [--with-encoding]
        Serves POST on 127.0.0.1 (any path); prints "LISTENING <port>" once
        ready. A body is one envelope or a JSON array of them. A record
        whose value is V is answered 500 (and not logged); otherwise 200.
        With --in-flight, the most requests it ever had in progress at once
        is written to FILE whenever it grows. With --with-encoding (either
        mode) the logged value is {"value": ..., "value_encoding": ...} as
        JSON.
    record_app.py exec --log FILE --name NAME [--die-after N --die-once FILE]
        Reads one envelope per line on stdin and acknowledges each on stdout.
        With --die-after: after logging its N-th record (and before
        acknowledging it) the process exits with code 3, unless the file
        given by --die-once exists; it creates that file first, so it dies
        once.

Standard library only.
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Log:
    def __init__(self, path, name, with_encoding=False):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.name = name
        self.with_encoding = with_encoding

    def record(self, e):
        def clean(v):
            if v is None:
                return ""
            if not isinstance(v, str):
                v = json.dumps(v)
            return v.replace("\t", " ").replace("\n", " ").replace("\r", " ")
        value = e["value"]
        if self.with_encoding:
            value = {"value": value, "value_encoding": e.get("value_encoding")}
        line = "\t".join([self.name, e["topic"], str(e["partition"]),
                          str(e["offset"]), clean(e.get("key")), clean(value)]) + "\n"
        os.write(self.fd, line.encode())


def serve(args, log):
    fail_value = args.fail_value
    lock = threading.Lock()
    counts = {"now": 0, "most": 0}

    def entered(delta):
        with lock:
            counts["now"] += delta
            if counts["now"] > counts["most"]:
                counts["most"] = counts["now"]
                if args.in_flight:
                    with open(args.in_flight, "w") as f:
                        f.write("%d\n" % counts["most"])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, text):
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            # out before answering: the client may send its next request
            # as soon as it has the answer
            entered(1)
            try:
                status, text = self.take()
            finally:
                entered(-1)
            self.answer(status, text)

        def take(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            envelopes = body if isinstance(body, list) else [body]
            if not isinstance(body, list):
                # the per-record headers name the same record as the body
                assert self.headers["Kafka-Offset"] == str(body["offset"]), self.headers
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
            if fail_value is not None and any(str(e["value"]) == fail_value for e in envelopes):
                return 500, "poison record"
            for e in envelopes:
                log.record(e)
            return 200, "ok"

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("LISTENING %d" % server.server_address[1], flush=True)
    server.serve_forever()


def run_exec(args, log):
    processed = 0
    for line in sys.stdin:
        e = json.loads(line)
        log.record(e)
        processed += 1
        if args.die_after and processed >= args.die_after and not os.path.exists(args.die_once):
            open(args.die_once, "w").close()
            os._exit(3)
        ack = {"topic": e["topic"], "partition": e["partition"], "offset": e["offset"], "ok": True}
        sys.stdout.write(json.dumps(ack) + "\n")
        sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["http", "exec"])
    p.add_argument("--log", required=True)
    p.add_argument("--name", default="app")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fail-value")
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--die-after", type=int, default=0)
    p.add_argument("--die-once")
    p.add_argument("--in-flight")
    p.add_argument("--with-encoding", action="store_true")
    args = p.parse_args()
    log = Log(args.log, args.name, args.with_encoding)
    if args.mode == "http":
        serve(args, log)
    else:
        run_exec(args, log)


if __name__ == "__main__":
    main()
