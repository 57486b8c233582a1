#!/usr/bin/env bash
# Webhook delivery under failures: N task finishes (default 10,000; WEBHOOK_TASKS=N)
# committed while `lmtasks notify` runs, to a receiver on 127.0.0.1 that answers one POST
# in ten with a 500.  Prints the POSTs, the failures, the tasks delivered (unique uids),
# those lost, the duplicates, and the deliverer's lag after the last commit.  Exits 1 when
# a task was lost.  The finishes are cancels of 50 tasks a commit (a commit per
# start/succeed pair would take the benchmark's minutes in fsyncs, not in delivery).
# WEBHOOK_SILENT=1 adds, before that webhook, one to a receiver that reads each POST and
# never answers: the numbers are then the good receiver's beside it.
#
#   bench/webhooks.sh            (LMTASKS=path/to/lmtasks, default build/lmtasks;
#                                 LMTASKS_NOTIFY, default lmtasks-notify beside it)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
L=${LMTASKS:-${BUILD:-$top/build}/lmtasks}
# `lmtasks notify` execs the deliverer: the one built with it, not an installed one.
export LMTASKS_NOTIFY=${LMTASKS_NOTIFY:-$(cd "$(dirname "$L")" && pwd)/lmtasks-notify}
N=${WEBHOOK_TASKS:-10000}
PER=${WEBHOOK_PER_COMMIT:-50}
PY=$(python3 -c 'import sys; print(sys.executable)')
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
export LMTASKS_DB=$work/db
"$L" init >/dev/null 2>&1

"$PY" "$top/tests/lib/webhook-receiver.py" "$work/port" "$work/rx.log" --fail-every 10 2>"$work/rx.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
if [ "${WEBHOOK_SILENT:-0}" = 1 ]; then
	"$PY" "$top/tests/lib/webhook-receiver.py" "$work/sport" "$work/silent.log" --silent 1 2>"$work/silent.err" &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$work/sport" ] && break; sleep 0.05; done
	"$L" webhook add "http://127.0.0.1:$(cat "$work/sport")/silent" >/dev/null
fi
"$L" webhook add "http://127.0.0.1:$port/bench" >/dev/null

awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) print "{\"indexUid\":\"bench\",\"type\":\"documentAddition\"}" }' \
    >"$work/batch"
"$L" enqueue --batch "$work/batch" >/dev/null

"$L" notify >/dev/null 2>"$work/notify.err" &
notify=$!
pids+=($notify)
sleep 0.2

t0=${EPOCHREALTIME/,/.}
for ((i = 0; i < N; i += PER)); do
	end=$((i + PER < N ? i + PER : N))
	"$L" cancel $(seq "$i" $((end - 1))) >/dev/null
done
t_last=${EPOCHREALTIME/,/.}

# Wait (at most 120 s) until every task reached the receiver.
"$PY" - "$work/rx.log" "$N" "$t0" "$t_last" "$notify" <<'EOF'
import json, os, sys, time
log, n, t0, t_last, pid = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
deadline = time.time() + 120
posts = []
while True:
    posts = [json.loads(l) for l in open(log)] if os.path.exists(log) else []
    seen = set(u for p in posts if p["status"] == 200 for u in p["uids"] if u < n)
    if len(seen) == n or time.time() > deadline:
        break
    time.sleep(0.05)
ok = [p for p in posts if p["status"] == 200]
delivered = [u for p in ok for u in p["uids"] if u < n]
seen = set(delivered)
done_at = max((p["t"] for p in ok if any(u < n for u in p["uids"])), default=time.time())
with open("/proc/%s/stat" % pid) as f:
    fields = f.read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
first_order = []
mark = set()
for u in delivered:
    if u not in mark:
        mark.add(u)
        first_order.append(u)
print("finishes %d in %d commits over %.2f s" % (n, (n + int(os.environ.get("WEBHOOK_PER_COMMIT", "50")) - 1)
      // int(os.environ.get("WEBHOOK_PER_COMMIT", "50")), t_last - t0))
print("posts %d (500s %d, 2xx %d), tasks per 2xx post %.1f" % (len(posts), len(posts) - len(ok), len(ok),
      len(delivered) / max(len(ok), 1)))
print("delivered %d unique, lost %d, duplicates %d, in order %s" % (len(seen), n - len(seen),
      len(delivered) - len(seen), first_order == sorted(seen)))
print("lag after the last commit %.3f s (from the last cancel command's return to the last task's 2xx POST at the receiver; negative: delivered before that command had exited); notify cpu %.2f s" % (done_at - t_last, cpu))
silent = log.replace("rx.log", "silent.log")
if os.path.exists(silent):
    held = [json.loads(l) for l in open(silent)]
    print("beside a silent receiver: it got %d POSTs and answered none" % sum(1 for x in held if not x.get("closed")))
sys.exit(0 if len(seen) == n and first_order == sorted(seen) else 1)
EOF
