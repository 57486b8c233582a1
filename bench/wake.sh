#!/usr/bin/env bash
# How soon `lmtasks wait` wakes after the commit that finishes its task: RUNS waiters
# (default 15) one after another, each asleep on an unfinished task, then `lmtasks start`
# and `lmtasks succeed` from another process.  Measured with inotify (the waiter holds a
# watch on data.mdb) and with the fallback that polls (LMTASKS_NO_INOTIFY=1).  Prints for
# each the median, the fastest and the slowest of two spans: from the `succeed` command's
# return to the waiter's exit ("after the commit": the wake-up), and from the command's
# start ("after its start": its own start and durable commit too).
#
#   RUNS=15 bench/wake.sh          (BUILD: the build directory, default build/)
# Fails when a waiter does not end with exit 0 or holds the wrong number of watches.
# Speed is never asserted: tests/e2e/cli.sh checks the behaviour, this script the numbers.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
L=${BUILD:-$top/build}/lmtasks
RUNS=${RUNS:-15}
work=$(mktemp -d)
waiter=
cleanup() {
	[ -z "$waiter" ] || kill "$waiter" 2>/dev/null
	[ -z "$waiter" ] || wait "$waiter" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
export LMTASKS_DB=$work/db
"$L" init >/dev/null 2>&1 || { echo "wake.sh: cannot init a store with $L" >&2; exit 1; }

now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

# asleep PID: the waiter sleeps in poll, having read its task once.
asleep() {
	case $(cat "/proc/$1/wchan" 2>/dev/null) in *poll*) return 0 ;; esac
	return 1
}

# stats: the median, the fastest and the slowest of the numbers on stdin, in ms.
stats() {
	sort -g | awk '{ v[NR] = $1 * 1000 }
		END { printf "median %7.1f ms   fastest %7.1f ms   slowest %7.1f ms", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

# runs LABEL WATCHES ENV...: RUNS wake-ups with the waiter run under env ENV, which must
# hold WATCHES inotify descriptors; prints two lines.
runs() {
	local label=$1 want=$2 i u t0 t1 t2 rc
	shift 2
	: >"$work/wake" && : >"$work/commit"
	for ((i = 0; i < RUNS; i++)); do
		u=$("$L" enqueue bench documentAddition | sed 's/.*"uid":\([0-9]*\).*/\1/')
		"$L" start "$u" >/dev/null
		# --timeout 60: bounded, whatever happens.
		env "$@" "$L" wait "$u" --timeout 60 >/dev/null &
		waiter=$!
		for _ in $(seq 600); do asleep "$waiter" && break; sleep 0.05; done
		if [ "$(find "/proc/$waiter/fd" -lname 'anon_inode:inotify' | wc -l)" != "$want" ]; then
			echo "wake.sh: the waiter ($*) does not hold $want inotify watch(es)" >&2
			exit 1
		fi
		t0=$(now)
		"$L" succeed "$u" >/dev/null
		t1=$(now)
		wait "$waiter"
		rc=$?
		t2=$(now)
		waiter=
		[ "$rc" = 0 ] || { echo "wake.sh: a waiter ($*) ended with exit $rc" >&2; exit 1; }
		awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }' >>"$work/wake"
		awk -v a="$t0" -v b="$t2" 'BEGIN { print b - a }' >>"$work/commit"
	done
	printf '  %-34s after the commit:   %s\n' "$label" "$(stats <"$work/wake")"
	printf '  %-34s after its start:    %s\n' "" "$(stats <"$work/commit")"
}

echo "lmtasks wait, $RUNS wake-ups each ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)):"
runs inotify 1 LMTASKS_NO_INOTIFY=
runs "polling (LMTASKS_NO_INOTIFY=1)" 0 LMTASKS_NO_INOTIFY=1
