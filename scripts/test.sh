#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test.  Exits non-zero on any failure.
#
#   scripts/test.sh [--under-load] [--help]
#
# The steps, and what each is for:
#   1. make distcheck: the release tarball is made, unpacked read-only, built out of its
#      tree, and EVERY suite of make check is run from it (unit suites, the fuzz seeds
#      replayed, and the end-to-end suites against a real nginx, Apache, LMDB on disk);
#      then installed, uninstalled and cleaned.  This is the plain make check: a file the
#      suites need and the tarball lacks fails here, as it would for a packager.
#   2. ASan and UBSan: the same sources built with both sanitizers (build-san/), running
#      the unit suites, the fuzz seeds and the end-to-end suites that drive the most C
#      code with hostile or varied input (SANITIZED_SUITES below).  SANITIZE=full runs
#      every suite there instead (about twice the time of step 1).  The build is clang's
#      with libFuzzer's coverage too (--enable-fuzzing), so that step 4 links its targets
#      from the objects tested here and compiles nothing again (gcc's, without fuzzing,
#      when clang cannot link libFuzzer here).
#      Steps 1 and 2 run at the same time, sharing CHECK_JOBS job slots (make's
#      jobserver): one waits on its servers or its disk while the other computes.  Their
#      output is shown when both are done.
#   3. benchmarks, briefly, so that they never rot (bench/README.md has the full runs);
#      alone, so that nothing else skews their figures.
#   4. fuzzing: each libFuzzer target for FUZZ_SECONDS (default 10; 0 skips fuzzing),
#      after every seed is replayed by the fuzzer itself.
#   5. the Debian package: built, lintian-checked, installed, served, upgraded from 0.1.0
#      and purged (tests/e2e/debian.sh; as root only).  Steps 4 and 5 run at the same
#      time, as 1 and 2 do.
#
# Options and environment:
#   --under-load     two busy loops run beside the whole run (stopped at its end): the
#                    suites must pass on a machine that is doing something else too
#   QUICK=1          only the plain make check, in build/ (a developer's quick loop)
#   SANITIZE=full    every suite under ASan and UBSan in step 2
#   FUZZ_SECONDS=N   seconds per fuzz target
#   CHECK_JOBS=N     suites run at once (default: the CPUs plus one; most suites wait on
#                    their servers and the disk as much as they compute), steps 1 and 2
#                    together; 1 runs steps 1 and 2 one after the other
#
# The last line is
#
#   suites: N passed, N failed, N skipped
#
# counting this run's results only: each suite of each make check (not the step itself),
# each other step, and every skip -- a skipped suite, a check skipped inside a suite, the
# fuzzing step when this machine cannot fuzz; the lines above it name each skip.  Under CI
# (CI=true) a suite or step that would skip because something this script installs is
# missing (nginx, Apache, valgrind, clang, ...) fails instead and says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

under_load=
for arg in "$@"; do
	case $arg in
	--under-load) under_load=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "test.sh: unknown argument '$arg' (see --help)" >&2
		exit 2
		;;
	esac
done

# The end-to-end suites step 2 runs under the sanitizers: the responder fed hostile
# FastCGI peers and damaged files, CGI's every route and error, the filters and leases
# through the CLI and CGI, backup and restore, the write routes, streams and webhook
# delivery.
SANITIZED_SUITES="tests/e2e/fuzz-seeds.sh tests/e2e/hostile.sh tests/e2e/cgi.sh tests/e2e/queries.sh tests/e2e/restore.sh
	tests/e2e/writer.sh tests/e2e/stream.sh tests/e2e/webhooks.sh tests/e2e/stream-bounds.sh"

START=$SECONDS
LOAD_PIDS=()
stop_load() {
	local p
	for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || :; done
	for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null || :; done
	LOAD_PIDS=()
}
trap stop_load EXIT
if [ -n "$under_load" ]; then
	# Two CPU hogs, each bounded (an hour and a half, CI's limit) and stopped by PID.
	for _ in 1 2; do
		timeout 5400 sh -c 'while :; do :; done' &
		LOAD_PIDS+=($!)
	done
	echo "==== under load: busy loops ${LOAD_PIDS[*]}"
fi

. scripts/deps.sh
# The interpreter the suites run, found once for all of them (lib.sh asks otherwise, which
# costs a start of python3 -- or of a version manager's shim -- per suite).
if [ -z "${LMT_PYTHON:-}" ] && LMT_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) &&
	[ -x "$LMT_PYTHON" ]; then
	export LMT_PYTHON
else
	unset LMT_PYTHON
fi

step_times=()
# cpu_now: CPU_NOW="USER SYS", the CPU time (ms) of the processes this script has waited
# for so far (bash's `times`, second line).  A step's CPU is the difference: wall time
# says little on a shared machine, CPU time does.  (Not a command substitution: `times`
# in a subshell would count that subshell's children.)
cpu_now() {
	local f=${TMPDIR:-/tmp}/lmtasks-test-times.$BASHPID
	times >"$f"
	read -r CPU_NOW < <(sed -n '2s/\([0-9]*\)m\([0-9]*\)[.,]\([0-9]*\)s/\1 \2 \3/gp' "$f" |
		awk '{ printf "%d %d\n", ($1 * 60 + $2) * 1000 + $3, ($4 * 60 + $5) * 1000 + $6 }')
	rm -f "$f"
}
# step_time NAME START CPU_BEFORE: one line of the closing table.
step_time() {
	local u0 s0 u1 s1
	read -r u0 s0 <<<"$3"
	cpu_now
	read -r u1 s1 <<<"$CPU_NOW"
	step_times+=("$(printf '%s: %d s (CPU: user %d s, sys %d s)' "$1" $((SECONDS - $2)) \
		$(((u1 - u0) / 1000)) $(((s1 - s0) / 1000)))")
}
timed() {
	local name=$1 start=$SECONDS
	cpu_now
	local cpu=$CPU_NOW
	shift
	"$@"
	step_time "$name" "$start" "$cpu"
}

timed "install and build" eval 'lmt_install_deps python3 valgrind wrk hyperfine clang \
	libclang-rt-14-dev apache2 libapache2-mod-fcgid systemd iproute2 util-linux \
	debhelper devscripts dpkg-dev fakeroot lintian man-db \
	prometheus beanstalkd libjs-chart.js python3-selenium chromium chromium-driver && lmt_build'

CHECK_JOBS=${CHECK_JOBS:-$(($(nproc) + 1))}
# make's -j, or nothing where make's jobserver (together below) hands out the slots.
MAKE_J=-j$CHECK_JOBS
failed=()
steps_ok=0
steps_skipped=()
checked=()	# the directories whose suites' results this run counts
failed_dirs=()	# ... and those whose make check failed
step() {
	local name=$1
	shift
	echo "==== $name"
	local start=$SECONDS rc=0
	cpu_now
	local cpu=$CPU_NOW
	"$@" || rc=$?
	step_time "$name" "$start" "$cpu"
	if [ "$rc" -eq 0 ]; then
		echo "==== $name: ok ($((SECONDS - start)) s)"
		# A make check step is counted as its suites, not once more on top.
		case $name in "make check"* | "make distcheck"*) ;; *) steps_ok=$((steps_ok + 1)) ;; esac
	elif [ "$rc" -eq 77 ]; then
		echo "==== $name: SKIPPED ($((SECONDS - start)) s)"
		steps_skipped+=("$name")
	else
		echo "==== $name: FAILED ($((SECONDS - start)) s)"
		failed+=("$name")
	fi
}

# The results of an earlier run are removed first: a suite that does not build must not
# pass on old files.
fresh_results() {
	rm -f "$1"/tests/*/*.trs "$1"/tests/*/*.log \
		"$1"/test-suite.log
	case " ${checked[*]} " in *" $1 "*) ;; *) checked+=("$1") ;; esac
}
# show_failures DIR: the tail of each failed suite's log.
show_failures() {
	local trs
	for trs in "$1"/tests/*/*.trs; do
		grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs" 2>/dev/null || continue
		echo "---- ${trs%.trs}.log"
		tail -n 60 "${trs%.trs}.log"
	done
}
check_in() {
	local dir=$1
	shift
	fresh_results "$dir"
	if make -s -C "$dir" $MAKE_J check "$@"; then
		return 0
	fi
	failed_dirs+=("$dir")
	show_failures "$dir"
	return 1
}

# Every suite from the release tarball.  distcheck removes its tree when it passes, so
# the suites' results are copied to build/dist-results by the check-local rule; when it
# fails they are read where it left them.
RESULTS=$PWD/build/dist-results
distcheck() {
	rm -rf "$RESULTS" build/lmtasks-*/
	mkdir -p "$RESULTS"
	case " ${checked[*]} " in *" $RESULTS "*) ;; *) checked+=("$RESULTS") ;; esac
	if LMTASKS_RESULTS=$RESULTS LMTASKS_NPM_CACHE=$PWD/build/npm-cache \
		make -s -C build $MAKE_J distcheck >build/distcheck.log 2>&1; then
		return 0
	fi
	tail -n 30 build/distcheck.log
	local sub
	for sub in build/lmtasks-*/_build/sub; do
		[ -d "$sub/tests" ] || continue
		rm -rf "$RESULTS/tests"
		cp -r "$sub/tests" "$RESULTS/tests"
		show_failures "$sub"
	done
	failed_dirs+=("$RESULTS")
	return 1
}

# can_fuzz: clang here links libFuzzer with ASan and UBSan (as scripts/fuzz.sh asks).
can_fuzz() {
	local d rc=0
	command -v clang >/dev/null 2>&1 || return 1
	d=$(mktemp -d "${TMPDIR:-/tmp}/lmtasks-probe.XXXXXXXX") || return 1
	printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
		>"$d/probe.c"
	clang -fsanitize=fuzzer,address,undefined "$d/probe.c" -o "$d/probe" >/dev/null 2>&1 || rc=1
	rm -rf "$d"
	return "$rc"
}
SAN_CONFIG=(--enable-asan --enable-ubsan)
SAN_CC=
if can_fuzz; then
	SAN_CC=clang
	SAN_CONFIG+=(--enable-fuzzing CC=clang)
fi

sanitized() {
	mkdir -p build-san
	# Configured again when configure changed, or for another compiler or switch.
	if [ ! -f build-san/Makefile ] || [ configure -nt build-san/Makefile ] ||
		! grep -q "^CC = ${SAN_CC:-.*}\$" build-san/Makefile ||
		{ [ -n "$SAN_CC" ] && ! grep -q '^FUZZ_LDFLAGS = .*fuzzer' build-san/Makefile; }; then
		(cd build-san && ../configure -q "${SAN_CONFIG[@]}") ||
			{ fresh_results build-san; failed_dirs+=(build-san); return 1; }
	fi
	fresh_results build-san
	make -s -C build-san ${MAKE_J:+-j"$(nproc)"} || { failed_dirs+=(build-san); return 1; }
	local tests=()
	if [ "${SANITIZE:-}" != full ]; then
		# The unit suites (every program make check builds from tests/unit/test_*.c) and the
		# end-to-end suites chosen above.
		local units
		units=$(cd tests/unit && ls test_*.c | sed 's|^|tests/unit/|; s|\.c$||' | tr '\n' ' ')
		tests=(TESTS="$units $(echo $SANITIZED_SUITES)")
	fi
	# (LeakSanitizer is on by default; ASAN_OPTIONS does not name it, so that the CLI the
	# end-to-end suites run, tests/lmtasks-noscan, keeps its default: no scan at exit.)
	LMTASKS_SANITIZED=1 ASAN_OPTIONS=abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 check_in build-san "${tests[@]}"
}

benchmarks() {
	BUILD=$PWD/build bench/fill.sh 20000 &&
		BUILD=$PWD/build bench/http.sh 1 1 64 &&
		BUILD=$PWD/build bench/scale.sh 1 20000 &&
		BUILD=$PWD/build bench/cgi.sh 30 &&
		BUILD=$PWD/build RUNS=3 bench/wake.sh &&
		BUILD=$PWD/build bench/instr.sh 10 20 &&
		BUILD=$PWD/build CLIENTS=64 bench/threads.sh 1 1 &&
		BUILD=$PWD/build bench/pipeline.sh 2 500 &&
		BUILD=$PWD/build STREAMS=50 IDLE=1 REQ_SECONDS=1 bench/streams.sh &&
		BUILD=$PWD/build STREAMS=50 COMMIT=300 bench/stream-memory.sh &&
		BUILD=$PWD/build ROUNDS=1 WRITERS=8 ENQUEUES=25 bench/race.sh &&
		BUILD=$PWD/build TASKS=200 SHELL_TASKS=40 RUNS=5 bench/work.sh &&
		BUILD=$PWD/build bench/exactly-once.sh 1000
}

# Each libFuzzer target for FUZZ_SECONDS, those of build-san where its make check tested
# their objects.  (No make's jobserver: neither step is a make.)
fuzzing() {
	unset MAKEFLAGS
	env FUZZ_SECONDS="${FUZZ_SECONDS:-10}" FUZZ_PARALLEL=2 ${SAN_CC:+FUZZ_BUILD=build-san} \
		scripts/fuzz.sh
}

# The Debian package: built, lintian-checked, installed, served, upgraded from 0.1.0 and
# purged on this machine (tests/e2e/debian.sh; not part of make check: it installs packages).
debian_package() {
	local rc=0
	unset MAKEFLAGS
	top_builddir=$PWD/build bash tests/e2e/debian.sh >build/debian.log 2>&1 || rc=$?
	grep -v '^ok ' build/debian.log | tail -n 40
	# 77: it cannot run here (it says why), which is no failure.
	[ "$rc" = 0 ] || [ "$rc" = 77 ]
}

# added ARRAY VALUE...: the line that adds the VALUEs to ARRAY (nothing without one).
added() {
	local name=$1
	shift
	[ $# -gt 0 ] || return 0
	printf '%s+=(' "$name"
	printf ' %q' "$@"
	printf ' )\n'
}
# together NAME FUNCTION NAME FUNCTION: two steps at once, sharing CHECK_JOBS job slots
# through a jobserver of make's (a pipe of tokens: each make runs one job of its own and
# one more for each token it takes; --jobserver-auth in MAKEFLAGS, as a make running
# another passes it): CHECK_JOBS - 2 tokens while both run, one more once either is done.
# Each step's output goes to build/step-N.log, shown when both are done; what each step
# adds to the run's results is passed back through build/step-N.state.
together() {
	local fifo=build/jobserver.$$ jobs i n pids=() logs=() done_pid
	mkdir -p build
	rm -f "$fifo"
	# (2: no jobserver here; the caller runs the steps one after the other.)
	mkfifo "$fifo" && exec {jobs}<>"$fifo" && rm -f "$fifo" || return 2
	for ((i = 2; i < CHECK_JOBS; i++)); do printf + >&"$jobs"; done
	for n in 1 2; do
		logs+=("build/step-$n.log")
		(
			exec >"build/step-$n.log" 2>&1
			MAKE_J=
			export MAKEFLAGS="-j --jobserver-auth=$jobs,$jobs"
			local k0=${#step_times[@]} o0=$steps_ok f0=${#failed[@]} s0=${#steps_skipped[@]}
			local c0=${#checked[@]} d0=${#failed_dirs[@]}
			step "$1" "$2"
			{
				printf 'steps_ok=$((steps_ok + %d))\n' $((steps_ok - o0))
				added step_times "${step_times[@]:k0}"
				added failed "${failed[@]:f0}"
				added steps_skipped "${steps_skipped[@]:s0}"
				added checked "${checked[@]:c0}"
				added failed_dirs "${failed_dirs[@]:d0}"
			} >"build/step-$n.state"
		) &
		pids+=($!)
		shift 2
	done
	# The first one done gives its slot to the other.
	wait -n -p done_pid "${pids[@]}"
	printf + >&"$jobs"
	wait "${pids[@]}"
	exec {jobs}>&-
	for n in 1 2; do
		cat "build/step-$n.log"
		. "build/step-$n.state"
	done
	return 0
}

if [ -n "${QUICK:-}" ]; then
	step "make check" check_in build
else
	rc=2
	if [ "$CHECK_JOBS" -ge 2 ]; then
		echo "==== make distcheck and make check with ASan and UBSan, at once (their output when both are done)"
		start=$SECONDS rc=0
		together "make distcheck (every suite, from the release tarball)" distcheck \
			"make check with ASan and UBSan" sanitized || rc=$?
		[ "$rc" = 2 ] || step_times+=("(the two at once: $((SECONDS - start)) s)")
	fi
	if [ "$rc" = 2 ]; then
		step "make distcheck (every suite, from the release tarball)" distcheck
		step "make check with ASan and UBSan" sanitized
	fi
	step "benchmarks (brief)" benchmarks
	# Fuzzing (bounded by time) and the package (half of it apt and dpkg waiting on the
	# disk) fill each other's idle CPU: at once, each alone when one of them is left out.
	fuzz=${FUZZ_SECONDS:-10}
	[ "$fuzz" != 0 ] || fuzz=
	pkg=
	if [ "$(id -u)" = 0 ]; then
		pkg=1
	else
		echo "==== Debian package: SKIPPED (not root: it installs the package)"
		steps_skipped+=("Debian package (not root: it installs the package)")
	fi
	rc=2
	if [ -n "$fuzz" ] && [ -n "$pkg" ] && [ "$CHECK_JOBS" -ge 2 ]; then
		echo "==== fuzzing and the Debian package, at once (their output when both are done)"
		start=$SECONDS rc=0
		together "fuzzing" fuzzing "Debian package (tests/e2e/debian.sh)" debian_package || rc=$?
		[ "$rc" = 2 ] || step_times+=("(the two at once: $((SECONDS - start)) s)")
	fi
	if [ "$rc" = 2 ]; then
		[ -z "$fuzz" ] || step "fuzzing" fuzzing
		[ -z "$pkg" ] || step "Debian package (tests/e2e/debian.sh)" debian_package
	fi
fi
stop_load

echo "==== times"
printf '  %s\n' "${step_times[@]}" "whole run: $((SECONDS - START)) s${under_load:+ (under load)}"

# One closing line: each suite this run checked (from the harness's .trs files, not the
# make check steps themselves) and each other step; every skip counted and named above it.
pass=$((steps_ok)) fail=0 skip=${#steps_skipped[@]}
for dir in "${checked[@]}"; do
	out=$(scripts/tally.sh "$dir")
	sed '$d' <<<"$out"
	read -r p f s <<<"$(tail -n 1 <<<"$out")"
	# A make check that failed with no suite failing (a test program that did not build)
	# counts once.
	case " ${failed_dirs[*]} " in *" $dir "*) [ "$f" -gt 0 ] || f=1 ;; esac
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
for f in "${steps_skipped[@]}"; do echo "skipped: step $f"; done
for f in "${failed[@]}"; do
	case $f in "make check"* | "make distcheck"*) ;; *) fail=$((fail + 1)) ;; esac
done
((${#failed[@]})) && echo "FAILED: ${failed[*]}"
echo "suites: $pass passed, $fail failed, $skip skipped"
((${#failed[@]} == 0))
