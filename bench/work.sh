#!/usr/bin/env bash
# Tasks a second through the write side, three ways in one run, on one disk:
#   shell    WORKERS shell loops, each `lmtasks claim` then `lmtasks succeed` per task
#   work     one `lmtasks work --concurrency WORKERS -- true` (and with --batch BATCH),
#            beside `true` run as often by `xargs -P WORKERS` with no queue (the bound)
#   beanstalkd  Debian's beanstalkd with a binlog fsync'd on every write (-f 0) and WORKERS
#            long-lived clients (raw sockets): put, then reserve/delete, timed from the
#            first command to the last answer (the clients' Python start is not counted)
# Each drains a queue filled beforehand (TASKS tasks; SHELL_TASKS for the shell loops) and
# prints tasks/s and the ratios; a queue that does not drain within LIMIT seconds fails
# the run.  Then `lmtasks get` and `lmtasks enqueue` under hyperfine, beside the disk's
# fdatasync measured here.
#
#   bench/work.sh                          (BUILD: the build directory, default build/)
#   TASKS=200 SHELL_TASKS=40 RUNS=5 bench/work.sh      (the brief run scripts/test.sh makes)
# Speed is never asserted: tests/e2e/work.sh checks the behaviour, this script the numbers.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
L=${BUILD:-$top/build}/lmtasks
TASKS=${TASKS:-2000}
SHELL_TASKS=${SHELL_TASKS:-400}
WORKERS=${WORKERS:-8}
BATCH=${BATCH:-64}
RUNS=${RUNS:-30}
LIMIT=${LIMIT:-300}
work=$(mktemp -d "${TMPDIR:-/tmp}/lmtasks-bench-work.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
[ -x "$L" ] || { echo "work.sh: no lmtasks at $L (set BUILD)" >&2; exit 1; }
command -v beanstalkd >/dev/null || { echo "work.sh: no beanstalkd (apt-get install beanstalkd)" >&2; exit 1; }
export LMTASKS_DB=$work/db
"$L" init >/dev/null 2>&1 || { echo "work.sh: cannot init a store with $L" >&2; exit 1; }

now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# fill N: N tasks in one transaction.
fill() {
	local i
	for ((i = 0; i < $1; i++)); do echo '{"indexUid":"bench","type":"x"}'; done |
		"$L" enqueue --batch - >/dev/null || { echo "work.sh: enqueue failed" >&2; exit 1; }
}

# drained: the queue is empty and nothing is processing.
drained() {
	local st
	st=$("$L" stats)
	case $st in *'"enqueued":0,"processing":0,'*) return 0 ;; esac
	return 1
}

# ---- WORKERS shell loops: claim, succeed ----
shell_loop() {
	local out uid
	while out=$("$L" claim --index bench 2>/dev/null); do
		uid=${out#*\"uid\":}
		uid=${uid%%,*}
		"$L" succeed "$uid" >/dev/null || return 1
	done
}
fill "$SHELL_TASKS"
t0=$(now)
for ((i = 0; i < WORKERS; i++)); do
	shell_loop &
	pids+=($!)
done
for p in "${pids[@]}"; do
	timeout "$LIMIT" tail --pid="$p" -f /dev/null
done
t1=$(now)
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
pids=()
drained || { echo "work.sh: the shell workers left tasks behind" >&2; exit 1; }
shell=$(rate "$SHELL_TASKS" "$t0" "$t1")

# ---- lmtasks work ----
# work_run ARGS...: drains TASKS tasks with `lmtasks work ARGS -- true`; prints tasks/s.
work_run() {
	local t0 t1 out
	fill "$TASKS"
	t0=$(now)
	out=$(timeout "$LIMIT" "$L" work --index bench --exit-when-empty "$@" -- true) || {
		echo "work.sh: lmtasks work failed or ran out of time: $out" >&2
		exit 1
	}
	t1=$(now)
	[ "$out" = "{\"succeeded\":$TASKS,\"failed\":0,\"released\":0,\"lost\":0}" ] && drained ||
		{ echo "work.sh: lmtasks work did not do every task once: $out" >&2; exit 1; }
	rate "$TASKS" "$t0" "$t1"
}
# The commands alone, WORKERS at once, no queue: what the command costs (the bound).
t0=$(now)
seq "$TASKS" | timeout "$LIMIT" xargs -P "$WORKERS" -n 1 true || { echo "work.sh: xargs failed" >&2; exit 1; }
t1=$(now)
bare=$(rate "$TASKS" "$t0" "$t1")
work_k=$(work_run --concurrency "$WORKERS")
work_b=$(work_run --concurrency "$WORKERS" --batch "$BATCH")

# ---- beanstalkd, binlog fsync'd on every write ----
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$work/binlog"
beanstalkd -l 127.0.0.1 -p "$port" -b "$work/binlog" -f 0 &
bpid=$!
pids+=("$bpid")
cat >"$work/client.py" <<'EOF'
# A beanstalkd client on one long-lived connection: "put N" puts N jobs; "drain" reserves
# and deletes jobs until none is ready.  Prints how many it handled, and when it began and
# ended (after Python's start and the connection, which are not the server's time).
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
t0 = time.time()
def ask(line):
    s.sendall(line)
    return f.readline()
n = 0
if sys.argv[2] == "put":
    for _ in range(int(sys.argv[3])):
        r = ask(b"put 0 0 60 1\r\nx\r\n")
        if not r.startswith(b"INSERTED"):
            sys.exit("put: %r" % r)
        n += 1
else:
    while True:
        r = ask(b"reserve-with-timeout 0\r\n")
        if r.startswith(b"TIMED_OUT"):
            break
        if not r.startswith(b"RESERVED"):
            sys.exit("reserve: %r" % r)
        job = int(r.split()[1])
        f.readline()  # the body and its \r\n
        if ask(b"delete %d\r\n" % job) != b"DELETED\r\n":
            sys.exit("delete failed")
        n += 1
print(n, t0, time.time())
EOF
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
	sleep 0.05
done
# clients MODE...: WORKERS clients at once; prints the jobs they handled together and the
# rate, from the first client's first command to the last one's last answer.
clients() {
	local cp=() p
	for ((i = 0; i < WORKERS; i++)); do
		timeout "$LIMIT" python3 "$work/client.py" "$port" "$@" >"$work/client.$i" &
		cp+=($!)
	done
	for p in "${cp[@]}"; do wait "$p" || { echo "work.sh: a beanstalkd client failed" >&2; exit 1; }; done
	cat "$work"/client.[0-9]* | awk 'NR == 1 || $2 < a { a = $2 } NR == 1 || $3 > b { b = $3 }
		{ n += $1 } END { printf "%d %.1f\n", n, n / (b - a) }'
}
per=$((TASKS / WORKERS))
read -r put bput < <(clients put "$per")
read -r got bdrain < <(clients drain)
kill "$bpid"
wait "$bpid" 2>/dev/null
pids=()
[ "$put" = "$got" ] || { echo "work.sh: beanstalkd: $put put, $got deleted" >&2; exit 1; }

# ---- one command's cost ----
fsync_ms=$(python3 - "$work" <<'EOF'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "sync"), os.O_RDWR | os.O_CREAT)
t = time.perf_counter()
for _ in range(50):
    os.pwrite(fd, b"x" * 4096, 0)
    os.fdatasync(fd)
print("%.2f" % ((time.perf_counter() - t) / 50 * 1000))
EOF
)
hf() {
	hyperfine -N -w 3 -r "$RUNS" --export-json "$work/hf.json" "$1" >/dev/null 2>&1 &&
		python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"][0]; print("%.2f %.2f" % (r["mean"] * 1000, r["median"] * 1000))' "$work/hf.json"
}
if command -v hyperfine >/dev/null; then
	get=$(hf "$L get 0")
	enq=$(hf "$L enqueue bench x")
else
	get="- -" enq="- -"
fi

echo "tasks drained, $WORKERS at once (shell: $SHELL_TASKS tasks; the others: $TASKS):"
printf '  %-44s %9s tasks/s\n' "shell loops, claim + succeed" "$shell" \
    "lmtasks work --concurrency $WORKERS -- true" "$work_k" \
    "lmtasks work --concurrency $WORKERS --batch $BATCH -- true" "$work_b" \
    "true alone, no queue (xargs -P $WORKERS)" "$bare" \
    "beanstalkd -f 0: reserve + delete" "$bdrain" \
    "beanstalkd -f 0: put" "$bput"
echo "ratios:"
printf '  %-44s %9s\n' "work / beanstalkd reserve+delete" "$(ratio "$work_k" "$bdrain")" \
    "work --batch $BATCH / beanstalkd reserve+delete" "$(ratio "$work_b" "$bdrain")" \
    "work / shell loops" "$(ratio "$work_k" "$shell")" \
    "work --batch $BATCH / true alone" "$(ratio "$work_b" "$bare")"
echo "one command (hyperfine, $RUNS runs; mean median):"
printf '  %-44s %s ms\n' "lmtasks get 0" "$get" "lmtasks enqueue" "$enq" \
    "fdatasync of 4 KiB on this disk (mean)" "$fsync_ms"
