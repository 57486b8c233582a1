#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the suites (make check), the
# same suites built with AddressSanitizer and UBSan, the fuzzers for a bounded time, the
# benchmarks briefly (so they never rot), and the packaging (make distcheck, and the
# Debian package built, installed, upgraded and purged by tests/debian.sh).
# Exits non-zero on any failure.  The last line is
#
#   suites: N passed, N failed, N skipped
#
# counting this run's results only: each suite of each `make check` (not the step itself),
# each other step, and every skip -- a skipped suite, a check skipped inside a suite, the
# fuzzing step when this machine cannot fuzz; the lines above it name each skip.  Under CI
# (CI=true) a suite or step that would skip because something this script installs is
# missing (nginx, Apache, valgrind, clang, ...) fails instead and says what is missing.
#   FUZZ_SECONDS=N   seconds per fuzz target (default 20; 0 skips fuzzing)
#   QUICK=1          only the plain make check
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

lmt_install_deps python3 valgrind wrk hyperfine clang libclang-rt-14-dev \
	apache2 libapache2-mod-fcgid systemd iproute2 util-linux \
	debhelper devscripts dpkg-dev fakeroot lintian man-db
lmt_build

failed=()
steps_ok=0
steps_skipped=()
checked=()	# the build directories whose suites this run checked
failed_dirs=()	# ... and those whose make check failed
step() {
	local name=$1
	shift
	echo "==== $name"
	local start=$SECONDS rc=0
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "==== $name: ok ($((SECONDS - start)) s)"
		# A make check step is counted as its suites, not once more on top.
		case $name in "make check"*) ;; *) steps_ok=$((steps_ok + 1)) ;; esac
	elif [ "$rc" -eq 77 ]; then
		echo "==== $name: SKIPPED ($((SECONDS - start)) s)"
		steps_skipped+=("$name")
	else
		echo "==== $name: FAILED ($((SECONDS - start)) s)"
		failed+=("$name")
	fi
}

# Runs make check in a build directory and shows the logs of what failed.  The results of
# an earlier run are removed first: a suite that does not build must not pass on old files.
fresh_results() {
	rm -f "$1"/tests/*.trs "$1"/tests/*.log "$1"/tests/*/*.trs "$1"/tests/*/*.log \
		"$1"/test-suite.log
	case " ${checked[*]} " in *" $1 "*) ;; *) checked+=("$1") ;; esac
}
check_in() {
	local dir=$1
	shift
	fresh_results "$dir"
	if make -s -C "$dir" -j"$(nproc)" check "$@"; then
		return 0
	fi
	failed_dirs+=("$dir")
	for trs in "$dir"/tests/*.trs; do
		grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs" 2>/dev/null || continue
		echo "---- ${trs%.trs}.log"
		tail -n 60 "${trs%.trs}.log"
	done
	return 1
}

sanitized() {
	mkdir -p build-san
	if [ ! -f build-san/Makefile ] || [ configure -nt build-san/Makefile ]; then
		(cd build-san && ../configure -q --enable-asan --enable-ubsan) ||
			{ fresh_results build-san; failed_dirs+=(build-san); return 1; }
	fi
	fresh_results build-san
	make -s -C build-san -j"$(nproc)" || { failed_dirs+=(build-san); return 1; }
	LMTASKS_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 check_in build-san
}

benchmarks() {
	BUILD=$PWD/build bench/fill.sh 20000 &&
		BUILD=$PWD/build bench/http.sh 1 1 &&
		BUILD=$PWD/build bench/scale.sh 1 20000 &&
		BUILD=$PWD/build bench/cgi.sh 30 &&
		BUILD=$PWD/build bench/instr.sh 10 20 &&
		BUILD=$PWD/build bench/threads.sh 1 1 &&
		BUILD=$PWD/build STREAMS=50 IDLE=1 REQ_SECONDS=1 bench/streams.sh
}

# The Debian package: built, lintian-checked, installed, served, upgraded from 0.1.0 and
# purged on this machine (tests/debian.sh; not part of make check: it installs packages).
debian_package() {
	local rc=0
	top_builddir=$PWD/build bash tests/debian.sh >build/debian.log 2>&1 || rc=$?
	grep -v '^ok ' build/debian.log | tail -n 40
	# 77: it cannot run here (it says why), which is no failure.
	[ "$rc" = 0 ] || [ "$rc" = 77 ]
}

distcheck() {
	# The package builds, installs and tests from its tarball; the unit suites stand
	# for the rest, which the steps above ran.
	make -s -C build distcheck \
		TESTS="tests/test_task tests/test_codec tests/test_route" >/dev/null
}

step "make check" check_in build
if [ -z "${QUICK:-}" ]; then
	step "make check with ASan and UBSan" sanitized
	if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
		step "fuzzing" env FUZZ_SECONDS="${FUZZ_SECONDS:-20}" FUZZ_PARALLEL=2 scripts/fuzz.sh
	fi
	step "benchmarks (brief)" benchmarks
	step "make distcheck" distcheck
	if [ "$(id -u)" = 0 ]; then
		step "Debian package (tests/debian.sh)" debian_package
	else
		echo "==== Debian package: SKIPPED (not root: it installs the package)"
		steps_skipped+=("Debian package (not root: it installs the package)")
	fi
fi

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
	case $f in "make check"*) ;; *) fail=$((fail + 1)) ;; esac
done
((${#failed[@]})) && echo "FAILED: ${failed[*]}"
echo "suites: $pass passed, $fail failed, $skip skipped"
((${#failed[@]} == 0))
