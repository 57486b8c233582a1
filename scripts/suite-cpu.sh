#!/usr/bin/env bash
# Where make check spends its CPU: runs `make check` in a build directory with every suite
# wrapped, and prints one line per suite, most CPU first:
#
#   scripts/suite-cpu.sh [-j N] BUILD [make check arguments, e.g. TESTS="..."]
#
#   cpu_s  user_s  sys_s  wall_s  forks  suite
#
# cpu_s is the task-clock of the suite and of every process it started, servers that
# daemonized included (perf follows forks); user_s and sys_s are the same from the rusage
# of the processes the suite waited for (a daemon it did not wait for is missing there);
# forks counts the processes created.  CPU time, not wall time, is the measure that holds
# on a shared machine.  Needs perf (tracepoints: root or perf_event_paranoid <= 1) and
# /usr/bin/time.  The raw lines are kept in BUILD/suite-cpu.txt.
#
# Used as `scripts/suite-cpu.sh --wrap CMD...` it is the wrapper itself (LOG_COMPILER).
set -euo pipefail

if [ "${1:-}" = --wrap ]; then
	shift
	name=${!#}
	name=${name#"$SUITE_CPU_TOP"/}
	name=${name#../}
	tmp=$(mktemp)
	rc=0
	perf stat -x, -o "$tmp" -e task-clock,sched:sched_process_fork -- \
		/usr/bin/time -o "$tmp.t" -f '%U %S %e' "$@" || rc=$?
	cpu=$(awk -F, '$3 == "task-clock" { printf "%.2f", $1 / 1000 }' "$tmp")
	forks=$(awk -F, '$3 ~ /sched_process_fork/ { print $1 }' "$tmp")
	# (The last line: time(1) writes "Command exited with non-zero status N" above it.)
	read -r user sys wall < <(tail -n 1 "$tmp.t") || :
	printf '%s %s %s %s %s %s\n' "${cpu:-?}" "${user:-?}" "${sys:-?}" "${wall:-?}" \
		"${forks:-?}" "$name" >>"$SUITE_CPU_LOG"
	rm -f "$tmp" "$tmp.t"
	exit "$rc"
fi

jobs=$(($(nproc) + 1))
case ${1:-} in
-j) jobs=$2 && shift 2 ;;
-j*) jobs=${1#-j} && shift ;;
esac
build=$(cd "${1:?usage: scripts/suite-cpu.sh [-j N] BUILD [make check arguments]}" && pwd)
shift
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
export SUITE_CPU_LOG=$build/suite-cpu.txt SUITE_CPU_TOP=$build
: >"$SUITE_CPU_LOG"
rm -f "$build"/tests/*/*.trs "$build"/tests/*/*.log
start=$SECONDS
rc=0
make -s -C "$build" -j"$jobs" check LOG_COMPILER="$self --wrap" \
	SH_LOG_COMPILER="$self --wrap bash" "$@" >"$build/suite-cpu.make.log" 2>&1 || rc=$?
printf '%6s %6s %6s %6s %6s  %s\n' cpu_s user_s sys_s wall_s forks suite
sort -rn "$SUITE_CPU_LOG" | awk '{ printf "%6s %6s %6s %6s %6s  %s\n", $1, $2, $3, $4, $5, $6 }'
awk '{ c += $1; u += $2; s += $3; f += $5 }
	END { printf "%6.1f %6.1f %6.1f %6s %6d  total of %d suites\n", c, u, s, "-", f, NR }' \
	"$SUITE_CPU_LOG"
echo "make check: $((SECONDS - start)) s wall, exit $rc (log: $build/suite-cpu.make.log)"
exit "$rc"
