#!/usr/bin/env bash
# GET /tasks/stream at scale, on loopback: STREAMS (default 1000) concurrent streams through
# a real nginx to lmtasks-fcgi with its default threads.  Prints, in one run:
#   - the responder's private memory per idle stream (smaps_rollup, before and after),
#   - its CPU time over IDLE seconds (default 10) with every stream open and nothing written,
#   - the time from a `lmtasks succeed` commit to its event at every client (p50, p99, max),
#   - GET /tasks/UID throughput (wrk, REQ_SECONDS each, default 5) without and with the
#     streams open, and the ratio.
# Bounded: every step has a timeout; the processes it starts are stopped by PID.
#
#   STREAMS=1000 IDLE=10 REQ_SECONDS=5 bench/streams.sh    (BUILD: the build directory)
# Fails when a stream does not open or a client misses the event.  Speed is never asserted.
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top_srcdir/build}
LMTASKS=$BUILD/lmtasks LMTASKS_FCGI=$BUILD/lmtasks-fcgi
export LMTASKS LMTASKS_FCGI top_srcdir
. "$top_srcdir/tests/lib/httplib.sh"
STREAMS=${STREAMS:-1000} IDLE=${IDLE:-10} REQ_SECONDS=${REQ_SECONDS:-5}
S=$HTTP_TMP/store
L init >/dev/null 2>&1 || { echo "streams.sh: cannot init" >&2; exit 1; }
L enqueue movies documentAddition >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fcgi_start "$HTTP_TMP/fcgi.sock" "$S" 0 >/dev/null 2>&1 ||
	fcgi_start "$HTTP_TMP/fcgi.sock" "$S" "$(nproc)" || exit 1
http_nginx_start streams "upstream lm { server unix:$HTTP_TMP/fcgi.sock; keepalive 128; }" \
	"location / { include fastcgi_params; fastcgi_pass lm; fastcgi_keep_conn on; fastcgi_read_timeout 120s; }" ||
	exit 1
sed -i "s/worker_connections 1024;/worker_connections $((STREAMS * 2 + 512));/" "$HTTP_NGINX_DIR/nginx.conf"
kill -HUP "$HTTP_NGINX_PID"; sleep 0.5
priv() { awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s }' "/proc/$1/smaps_rollup"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
curl -s "$HTTP_BASE/tasks/0" >/dev/null
m0=$(priv "$FCGI_PID")
if command -v wrk >/dev/null; then
	base=$(timeout $((REQ_SECONDS + 10)) wrk -t2 -c16 -d"${REQ_SECONDS}s" "$HTTP_BASE/tasks/0" | awk '/Requests\/sec/ { print $2 }')
fi
# The clients: one Python process, asyncio, every stream a raw HTTP/1.1 connection.
cat >"$HTTP_TMP/clients.py" <<'PY'
import asyncio, os, sys, time, json
port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
got = {}
async def client(i, ready):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /tasks/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await w.drain()
    buf = b""
    while b"retry:" not in buf:
        buf += await r.read(4096)
    ready.append(i)
    while True:
        chunk = await r.read(65536)
        if not chunk:
            return
        t = time.time()
        for line in chunk.split(b"\n"):
            if line.startswith(b"data: ") and b'"succeeded"' in line:
                got.setdefault(i, t)
async def main():
    ready = []
    tasks = [asyncio.create_task(client(i, ready)) for i in range(n)]
    while len(ready) < n:
        await asyncio.sleep(0.05)
    open(out + ".ready", "w").write(str(len(ready)))
    while not os.path.exists(out + ".stop"):
        await asyncio.sleep(0.05)
    json.dump(got, open(out, "w"))
    os._exit(0)
asyncio.run(main())
PY
timeout 300 "$LMT_PYTHON" "$HTTP_TMP/clients.py" "$HTTP_PORT" "$STREAMS" "$HTTP_TMP/got.json" &
CL=$!
lmt_bg_track $CL
for ((i = 0; i < 1200; i++)); do [ -f "$HTTP_TMP/got.json.ready" ] && break; sleep 0.1; done
[ -f "$HTTP_TMP/got.json.ready" ] || { echo "streams.sh: the $STREAMS streams did not open" >&2; exit 1; }
sleep 1
m1=$(priv "$FCGI_PID")
c0=$(cpu "$FCGI_PID"); sleep "$IDLE"; c1=$(cpu "$FCGI_PID")
if [ -n "${base:-}" ]; then
	with=$(timeout $((REQ_SECONDS + 10)) wrk -t2 -c16 -d"${REQ_SECONDS}s" "$HTTP_BASE/tasks/0" | awk '/Requests\/sec/ { print $2 }')
fi
L start 0 >/dev/null
t0=$("$LMT_PYTHON" -c 'import time; print(time.time())')
L succeed 0 >/dev/null
sleep 2
touch "$HTTP_TMP/got.json.stop"
wait $CL
"$LMT_PYTHON" - "$HTTP_TMP/got.json" "$t0" "$STREAMS" "$m0" "$m1" "$c0" "$c1" "$TCK" "$IDLE" "${base:-}" "${with:-}" <<'PY'
import json, sys
got = json.load(open(sys.argv[1])); t0 = float(sys.argv[2]); n = int(sys.argv[3])
m0, m1, c0, c1, tck, idle = (float(x) for x in sys.argv[4:10])
lat = sorted((t - t0) * 1000 for t in got.values())
def pct(p): return lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")
print("streams open: %d; events received: %d" % (n, len(lat)))
print("private memory per idle stream: %.1f KiB (%.0f KiB -> %.0f KiB)" % ((m1 - m0) / n, m0, m1))
print("CPU over %d idle s: %.2f s" % (idle, (c1 - c0) / tck))
print("succeed commit -> event: p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (pct(0.5), pct(0.99), lat[-1] if lat else float("nan")))
if sys.argv[10] and sys.argv[11]:
    b, w = float(sys.argv[10]), float(sys.argv[11])
    print("GET /tasks/0: %.0f req/s without streams, %.0f with: %.2fx" % (b, w, w / b))
sys.exit(0 if len(lat) == n else 1)
PY
