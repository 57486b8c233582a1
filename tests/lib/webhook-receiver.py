#!/usr/bin/env python3
"""A webhook receiver for the tests and the benchmark: listens on 127.0.0.1 (port 0 or
the one given), gunzips each POST's NDJSON, checks Meilisearch's headers, and appends one
JSON line per POST to LOG: {"n","status","uids","headers","problems"}.

  webhook-receiver.py PORTFILE LOG [--port N] [--fail-file F] [--fail-every K]
                      [--fail-after K] [--delay S] [--silent 1]

--fail-file F: while F holds a number N > 0, the next POST answers 500 and N goes down.
--fail-every K: every K-th POST answers 500.  --fail-after K: every POST after the K-th
answers 500.  --delay S: sleep S seconds before answering.  --silent 1: read each POST,
log it with "status": null, and never answer; when the sender closes the connection,
log {"n", "status": null, "closed": true, "t"} (one connection at a time: the next waits
in the listen queue until then).
The port is written to PORTFILE once listening.  A POST is logged before it is answered,
so a 2xx that the sender saw is always in LOG.
"""
import gzip
import json
import os
import select
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    args = sys.argv[1:]
    portfile, logpath = args[0], args[1]
    opts = dict(zip(args[2::2], args[3::2]))
    port = int(opts.get("--port", "0"))
    fail_file = opts.get("--fail-file")
    fail_every = int(opts.get("--fail-every", "0"))
    fail_after = int(opts.get("--fail-after", "0"))
    delay = float(opts.get("--delay", "0"))
    silent = opts.get("--silent") == "1"
    log = open(logpath, "a", buffering=1)
    count = [0]

    def should_fail():
        if fail_every and count[0] % fail_every == 0:
            return True
        if fail_after and count[0] > fail_after:
            return True
        if fail_file and os.path.exists(fail_file):
            with open(fail_file) as f:
                text = f.read().strip()
            n = int(text or "0")
            if n > 0:
                with open(fail_file, "w") as f:
                    f.write(str(n - 1))
                return True
        return False

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            count[0] += 1
            problems = []
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if headers.get("content-type") != "application/x-ndjson":
                problems.append("content-type " + str(headers.get("content-type")))
            if headers.get("content-encoding") != "gzip":
                problems.append("content-encoding " + str(headers.get("content-encoding")))
            uids, tasks = [], []
            try:
                body = gzip.decompress(raw).decode()
                if not body.endswith("\n"):
                    problems.append("the body does not end with a newline")
                for line in body.splitlines():
                    t = json.loads(line)
                    uids.append(t["uid"])
                    tasks.append(line)
            except Exception as e:  # noqa: BLE001 - recorded, not raised
                problems.append("body: %r" % e)
            if silent:
                self.hold(uids, tasks, headers, problems)
                return
            status = 500 if should_fail() else 200
            if delay:
                time.sleep(delay)
            log.write(json.dumps({"n": count[0], "status": status, "uids": uids, "t": time.time(),
                                  "tasks": tasks, "headers": headers,
                                  "problems": problems}) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def hold(self, uids, tasks, headers, problems):
            """Logs the POST, answers nothing, and logs when the sender gives up."""
            n = count[0]
            log.write(json.dumps({"n": n, "status": None, "uids": uids, "t": time.time(),
                                  "tasks": tasks, "headers": headers,
                                  "problems": problems}) + "\n")
            sock = self.connection
            while True:
                select.select([sock], [], [])
                try:
                    if not sock.recv(65536):
                        break
                except OSError:
                    break
            log.write(json.dumps({"n": n, "status": None, "uids": [], "closed": True,
                                  "t": time.time()}) + "\n")
            self.close_connection = True

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, portfile)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
