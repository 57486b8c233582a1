#!/usr/bin/env bash
# Every task ends exactly once, with workers killed at random: a queue of N tasks (each with
# a retry policy: maxAttempts MAX_ATTEMPTS, backoff BACKOFF), a command that fails the first
# run of every tenth task (uid ending in 0: a marker file per uid) and succeeds otherwise,
# WORKERS `lmtasks work` processes (CONCURRENCY commands each, --batch BATCH, --lease LEASE)
# of which one, picked at random, is killed with SIGKILL every KILL_MIN to KILL_MAX seconds
# and started again, until every task is final or LIMIT seconds have passed.  Then, from the
# store and its change log (mdb_dump of the `changes` database, every entry, none folded):
#   - N tasks, N succeeded, none enqueued, processing, failed or canceled (none lost);
#   - each task's log holds exactly one `succeeded` entry, its last (none succeeded twice);
#   - each task of the failing tenth was put back at least once, its first failure its
#     lastError or a lease's end after it.
# The command itself may run a task more than once (a worker killed after the command ran,
# before its result was committed: the lease ends and another worker runs it): execution is
# at least once, the recorded outcome exactly once; the runs are counted and printed.
#
#   bench/exactly-once.sh [N]            (N default 100000; BUILD: the build directory)
#   bench/exactly-once.sh 2000           (the brief run scripts/test.sh makes)
# Exits 1 when a check fails or the time runs out.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
L=${BUILD:-$top/build}/lmtasks
N=${1:-100000}
WORKERS=${WORKERS:-4}
CONCURRENCY=${CONCURRENCY:-8}
BATCH=${BATCH:-16}
LEASE=${LEASE:-2}
MAX_ATTEMPTS=${MAX_ATTEMPTS:-10}
BACKOFF=${BACKOFF:-100ms}
KILL_MIN=${KILL_MIN:-0.5}
KILL_MAX=${KILL_MAX:-2}
LIMIT=${LIMIT:-$(( N / 20 + 300 ))}
work=$(mktemp -d "${TMPDIR:-/tmp}/lmtasks-bench-once.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do [ "$p" != 0 ] && wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
[ -x "$L" ] || { echo "exactly-once.sh: no lmtasks at $L (set BUILD)" >&2; exit 1; }
command -v mdb_dump >/dev/null || { echo "exactly-once.sh: no mdb_dump (apt-get install lmdb-utils)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "exactly-once.sh: no python3" >&2; exit 1; }
export LMTASKS_DB=$work/db
"$L" init >/dev/null 2>&1 || { echo "exactly-once.sh: cannot init a store with $L" >&2; exit 1; }
# Every change kept: each task makes three or more (enqueued, processing, succeeded, and
# a retry's two).
"$L" config feedRetention 100000000 >/dev/null
"$L" config maxTasks 0 >/dev/null

now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

mkdir -p "$work/marks"
cat >"$work/job.sh" <<'EOF'
#!/bin/sh
# The first run of a task whose uid ends in 0 fails; every other run succeeds.
u=$LMTASKS_TASK_UID
case $u in
*0) if [ ! -e "$MARKS/$u" ]; then : >"$MARKS/$u"; echo "first run of $u fails" >&2; exit 1; fi ;;
esac
echo "$u" >>"$RUNS"
EOF
chmod +x "$work/job.sh"
export MARKS=$work/marks RUNS=$work/runs

t0=$(now)
awk -v n="$N" -v m="$MAX_ATTEMPTS" -v b="$BACKOFF" 'BEGIN {
	for (i = 0; i < n; i++)
		printf "{\"indexUid\":\"once\",\"type\":\"x\",\"maxAttempts\":%d,\"backoff\":\"%s\"}\n", m, b
}' | "$L" enqueue --batch - >/dev/null 2>&1 || { echo "exactly-once.sh: enqueue failed" >&2; exit 1; }
t1=$(now)

start_worker() {
	"$L" work --index once --concurrency "$CONCURRENCY" --batch "$BATCH" --lease "$LEASE" \
		-- "$work/job.sh" >>"$work/worker.out" 2>>"$work/worker.log" </dev/null &
	pids[$1]=$!
}
# final: nothing enqueued or processing.
final() {
	case $("$L" stats) in *'"enqueued":0,"processing":0,'*) return 0 ;; esac
	return 1
}

for ((i = 0; i < WORKERS; i++)); do start_worker "$i"; done
kills=0
deadline=$(awk -v a="$t1" -v l="$LIMIT" 'BEGIN { printf "%.0f", a + l }')
next_kill=$(awk -v a="$(now)" -v lo="$KILL_MIN" -v hi="$KILL_MAX" -v r="$RANDOM" \
	'BEGIN { printf "%.3f", a + lo + (hi - lo) * r / 32767 }')
done=0
while :; do
	t=$(now)
	if awk -v t="$t" -v d="$deadline" 'BEGIN { exit !(t > d) }'; then
		break
	fi
	if final; then
		done=1
		break
	fi
	if awk -v t="$t" -v k="$next_kill" 'BEGIN { exit !(t >= k) }'; then
		i=$(( RANDOM % WORKERS ))
		kill -9 "${pids[$i]}" 2>/dev/null
		wait "${pids[$i]}" 2>/dev/null
		kills=$(( kills + 1 ))
		start_worker "$i"
		next_kill=$(awk -v a="$t" -v lo="$KILL_MIN" -v hi="$KILL_MAX" -v r="$RANDOM" \
			'BEGIN { printf "%.3f", a + lo + (hi - lo) * r / 32767 }')
	fi
	sleep 0.2
done
t2=$(now)
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
pids=()
if [ "$done" != 1 ]; then
	echo "exactly-once.sh: not every task was final after $LIMIT s: $("$L" stats)" >&2
	exit 1
fi
# Commands a killed worker left running finish on their own: their runs are counted too.
sleep 1

mdb_dump -s changes "$work/db" >"$work/changes.dump" ||
	{ echo "exactly-once.sh: mdb_dump of the change log failed" >&2; exit 1; }
"$L" stats >"$work/stats.json"
"$L" check >"$work/check.json" 2>&1
verdict=0
python3 - "$N" "$work" "$kills" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" \
    "$WORKERS" "$CONCURRENCY" "$BATCH" "$LEASE" "$MAX_ATTEMPTS" "$BACKOFF" <<'EOF' || verdict=1
import collections, json, os, subprocess, sys
n, work, kills, fill_s, run_s = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
workers, conc, batch, lease, maxa, backoff = sys.argv[6:12]
ENQ, PROC, SUCC, FAIL, CANC, REMOVED = 0, 1, 2, 3, 4, 0xff
problems = []
def problem(msg):
    if len(problems) < 20:
        print("exactly-once.sh: " + msg, file=sys.stderr)
    problems.append(msg)

# The change log: key the sequence (8 bytes BE), value uid (8 BE), time (8 LE), status (1).
log = collections.defaultdict(list)
entries = 0
with open(os.path.join(work, "changes.dump")) as f:
    lines = f.read().split("HEADER=END\n", 1)[1].split("\n")
pairs = [l.strip() for l in lines if l.startswith(" ")]
for k, v in zip(pairs[0::2], pairs[1::2]):
    if len(v) != 34:
        problem("a change log entry of %d bytes" % (len(v) // 2))
        continue
    log[int(v[0:16], 16)].append(int(v[32:34], 16))
    entries += 1

stats = json.load(open(os.path.join(work, "stats.json")))
st = stats["statuses"]
if stats["tasks"] != n or stats["nextUid"] != n:
    problem("the store holds %d tasks (next uid %d), not %d" % (stats["tasks"], stats["nextUid"], n))
if st["succeeded"] != n:
    problem("%d succeeded, not %d: %s" % (st["succeeded"], n, json.dumps(st)))
for s in ("enqueued", "processing", "failed", "canceled"):
    if st[s]:
        problem("%d tasks %s" % (st[s], s))
check = open(os.path.join(work, "check.json")).read()
if '"ok":true' not in check:
    problem("lmtasks check: " + check.strip())

backs = leases = 0
for uid in range(n):
    seq = log.get(uid)
    if not seq:
        problem("task %d has no change in the log" % uid)
        continue
    if seq[0] != ENQ:
        problem("task %d's first change is status %d" % (uid, seq[0]))
    if seq.count(SUCC) != 1:
        problem("task %d succeeded %d times in the log: %s" % (uid, seq.count(SUCC), seq))
    if seq[-1] != SUCC:
        problem("task %d's last change is status %d" % (uid, seq[-1]))
    if FAIL in seq or CANC in seq or REMOVED in seq:
        problem("task %d was failed, canceled or removed on the way: %s" % (uid, seq))
    b = sum(1 for a, c in zip(seq, seq[1:]) if a == PROC and c == ENQ)
    backs += b
    if uid % 10 == 0 and b == 0:
        problem("task %d was to fail once but never went back to the queue" % uid)
if len(log) != n:
    problem("the log names %d tasks, not %d" % (len(log), n))

runs = collections.Counter()
if os.path.exists(os.path.join(work, "runs")):
    for l in open(os.path.join(work, "runs")):
        runs[l.strip()] += 1
missing = [u for u in range(n) if str(u) not in runs]
if missing:
    problem("%d tasks succeeded without a successful run of the command, e.g. %s" % (len(missing), missing[:5]))
twice = sum(1 for c in runs.values() if c > 1)
marks = len(os.listdir(os.path.join(work, "marks")))
if marks != (n + 9) // 10:
    problem("%d first runs failed, not %d" % (marks, (n + 9) // 10))

print("tasks %d; workers %s x %s commands, --batch %s, --lease %s s; maxAttempts %s, backoff %s"
      % (n, workers, conc, batch, lease, maxa, backoff))
print("enqueued in %s s; all final in %.1f s (%.0f tasks/s) with %d workers killed (SIGKILL)"
      % (fill_s, run_s, n / run_s if run_s > 0 else 0, kills))
print("change log: %d entries; %d attempts put back (%d planned failures, the rest leases of killed workers)"
      % (entries, backs, marks))
print("command runs: %d successful for %d tasks (%d tasks run successfully more than once: a worker killed between the run and its commit)"
      % (sum(runs.values()), n, twice))
print("succeeded exactly once: %s; lost: %d; left enqueued/processing: %d"
      % ("yes" if not problems else "NO", n - st["succeeded"] - st["failed"] - st["canceled"], st["enqueued"] + st["processing"]))
sys.exit(1 if problems else 0)
EOF
exit $verdict
