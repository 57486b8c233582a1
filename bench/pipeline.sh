#!/usr/bin/env bash
# One connection that sends requests ahead (pipelined) against the others: the time a
# single request on another connection waits while a client has 2000 requests sent ahead
# behind a 64 KiB record on its own, against the same request's time with no pipeliner,
# measured in the same run; lmtasks-fcgi --threads 1 on its socket, a raw FastCGI client.
#   bench/pipeline.sh [RUNS] [TASKS]      (defaults 15 and 3000)
# The pipeliner asks pages that scan the whole store and find nothing (a date before every
# task): each costs much and answers little, so its answers never fill the socket (which
# would make any loop turn to the others).  BUILD=dir: the binaries.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-15}
tasks=${2:-3000}
. "$top/bench/lib.sh"

store=$bench_work/store
"$lmtasks" --db "$store" init >/dev/null 2>&1
for _ in $(seq 1 "$tasks"); do echo '{"indexUid":"movies","type":"documentAddition"}'; done |
	"$lmtasks" --db "$store" enqueue --batch >/dev/null
"$fcgi" --db "$store" --listen "unix:$bench_work/s.sock" --threads 1 2>"$bench_work/fcgi.log" &
bench_pids+=($!)
for _ in $(seq 100); do [ -S "$bench_work/s.sock" ] && break; sleep 0.1; done

python3 - "$bench_work/s.sock" "$runs" "$top/tests/lib" <<'EOF'
import statistics, sys, threading, time
sys.path.insert(0, sys.argv[3])
import fcgi
sock, runs = sys.argv[1], int(sys.argv[2])
PIPE = "/tasks?beforeEnqueuedAt=2000-01-01&limit=1&from=%d"

def single():
    t = time.monotonic()
    o = fcgi.connect(sock, 60)
    o.sendall(fcgi.request("/tasks/7"))
    out, end = fcgi.read_records(o)
    if end is None or fcgi.status_of(out) != "200":
        sys.exit("bench: /tasks/7 was not answered 200")
    return time.monotonic() - t

alone, beside = [], []
for _ in range(runs):
    alone.append(single())
    s = fcgi.connect(sock, 120)
    data = fcgi.ignored() + b"".join(fcgi.request(PIPE % (2999 - i % 1000), keep=1)
                                     for i in range(2000))
    threading.Thread(target=lambda: s.sendall(data), daemon=True).start()
    got = []
    r = threading.Thread(target=lambda: got.append(fcgi.count_answers(s, 2000)))
    r.start()
    time.sleep(0.05)
    beside.append(single())
    r.join()
    if got != [2000]:
        sys.exit("bench: the pipeliner got %s answers of 2000" % got)
ma, mb = statistics.median(alone), statistics.median(beside)
print("GET /tasks/7 on its own connection, %d runs          median      max" % runs)
print("  alone                                         %8.4f s %8.4f s" % (ma, max(alone)))
print("  beside 2000 requests sent ahead on another    %8.4f s %8.4f s" % (mb, max(beside)))
print("  ratio of the medians                          %8.1f" % (mb / ma))
EOF
