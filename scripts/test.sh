#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the suites (make check), the
# same suites built with AddressSanitizer and UBSan, the fuzzers for a bounded time, the
# benchmarks briefly (so they never rot), and the packaging (make distcheck, and the
# Debian package built, installed, upgraded and purged by tests/debian.sh).
# Exits non-zero on any failure.
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
step() {
	local name=$1
	shift
	echo "==== $name"
	local start=$SECONDS
	if "$@"; then
		echo "==== $name: ok ($((SECONDS - start)) s)"
		steps_ok=$((steps_ok + 1))
	else
		echo "==== $name: FAILED ($((SECONDS - start)) s)"
		failed+=("$name")
	fi
}

# Runs make check in a build directory and shows the logs of what failed.
check_in() {
	local dir=$1
	shift
	if make -s -C "$dir" -j"$(nproc)" check "$@"; then
		return 0
	fi
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
		(cd build-san && ../configure -q --enable-asan --enable-ubsan)
	fi
	make -s -C build-san -j"$(nproc)" &&
		LMTASKS_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 check_in build-san
}

benchmarks() {
	BUILD=$PWD/build bench/fill.sh 20000 &&
		BUILD=$PWD/build bench/http.sh 1 1 &&
		BUILD=$PWD/build bench/scale.sh 1 20000 &&
		BUILD=$PWD/build bench/cgi.sh 30
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
		echo "==== Debian package: skipped (not root: it installs the package)"
	fi
fi

# One closing line: every suite of both builds (from the harness's .trs files) and the
# other steps, counted together.
results() { cat build/tests/*.trs build-san/tests/*.trs 2>/dev/null | grep -c "^:test-result: $1" || true; }
pass=$(results PASS)
fail=$(($(results FAIL) + $(results ERROR)))
skip=$(results SKIP)
((${#failed[@]})) && echo "FAILED: ${failed[*]}"
echo "suites: $((pass + steps_ok)) passed, $((fail + ${#failed[@]})) failed, $skip skipped"
((${#failed[@]} == 0))
