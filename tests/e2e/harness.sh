#!/usr/bin/env bash
# The run around the suites: what makes a run fail and what its closing line counts.
#
#   - assert_lt fails on an empty or non-numeric value;
#   - scripts/tally.sh counts each suite's result once and every skip (a skipped suite and
#     a check skipped inside a suite), and names each;
#   - with something scripts/test.sh installs missing (nginx, Apache, valgrind, clang),
#     the suite that needs it is skipped (77) -- and under CI (CI=true) fails and names it.
#     A missing tool is played without uninstalling anything: a path that does not exist
#     (HTTP_NGINX, LMT_APACHE, CC) or LMT_HIDE_TOOLS;
#   - the benchmarks' brief run fails on an error or an answer that is not JSON.
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"

set -u
lmt_tmpdir
T=$LMT_TMP
unset CI

section() { echo "# ---- $*"; }

section "assert_lt"
# Each case runs the helper in a child shell with its own counters.
lt() {
	(
		LMT_PASS=0 LMT_FAIL=0 LMT_N=0
		. "$top_srcdir/tests/lib/lib.sh"
		assert_lt x "$1" "$2" >/dev/null
		echo "$LMT_PASS $LMT_FAIL"
	)
}
assert_eq "assert_lt 0.05 0.1 passes" "1 0" "$(lt 0.05 0.1)"
assert_eq "assert_lt 2 1 fails" "0 1" "$(lt 2 1)"
assert_eq "assert_lt on an empty value fails" "0 1" "$(lt "" 0.1)"
assert_eq "assert_lt on a non-number fails" "0 1" "$(lt abc 0.1)"
assert_eq "assert_lt with an empty bound fails" "0 1" "$(lt 0.05 "")"
assert_eq "assert_lt -1 .5 passes" "1 0" "$(lt -1 .5)"

section "scripts/tally.sh"
D=$T/build
mkdir -p "$D/tests/e2e" "$D/tests/unit"
trs() { printf ':test-result: %s\n:global-test-result: %s\n:recheck: no\n:copy-in-global-log: no\n' "$2" "$2" >"$D/tests/$1.trs"; }
trs e2e/a.sh PASS
printf 'ok 1 - one\nok 2 - two # SKIP no widget here\n1 passed, 0 failed\n' >"$D/tests/e2e/a.sh.log"
trs e2e/b.sh SKIP
printf 'SKIP: no nginx (apt-get install nginx)\n' >"$D/tests/e2e/b.sh.log"
trs e2e/c.sh FAIL
printf 'not ok 1 - three\nok 2 - four # SKIP later\n' >"$D/tests/e2e/c.sh.log"
trs unit/test_x PASS
printf '[====] Synthesis: Tested: 3 | Passing: 3 | Failing: 0 | Crashing: 0\n' >"$D/tests/unit/test_x.log"
trs e2e/d.sh ERROR
: >"$D/tests/e2e/d.sh.log"
run "$top_srcdir/scripts/tally.sh" "$D"
assert_eq "tally: 2 passed, 2 failed (FAIL, ERROR), 3 skipped (a suite, two checks)" "2 2 3" \
	"$(tail -n 1 <<<"$LMT_STDOUT")"
assert_contains "tally names the skipped suite and why" \
	"skipped: $D/e2e/b.sh: no nginx (apt-get install nginx)" "$LMT_STDOUT"
assert_contains "tally names a check skipped inside a suite" "skipped: $D/e2e/a.sh: two: no widget here" \
	"$LMT_STDOUT"
assert_contains "tally names a failed suite" "failed: $D/e2e/d.sh" "$LMT_STDOUT"
run "$top_srcdir/scripts/tally.sh" "$T/nothing-here"
assert_eq "tally of a directory without results: 0 0 0" "0 0 0" "$LMT_STDOUT"

section "a missing nginx, Apache, valgrind or clang"
# suite VAR=VALUE... SCRIPT: runs a suite with the environment given (from a directory of
# its own, as make check does not).
suite() {
	run env "$@"
}
# The suites need the binaries only to be named; they stop before using them.
for ci in "" true; do
	want=77 how="is skipped (77)"
	[ -n "$ci" ] && want=99 how="fails under CI (99)"
	suite CI="$ci" HTTP_NGINX=/nonexistent/nginx bash "$top_srcdir/tests/e2e/nginx.sh"
	assert_eq "no nginx: nginx.sh $how" "$want" "$LMT_RC"
	[ -n "$ci" ] && assert_contains "... and names nginx" "FAIL: nginx is missing" "$LMT_STDOUT"
	suite CI="$ci" LMT_APACHE=/nonexistent/apache2 bash "$top_srcdir/tests/e2e/apache.sh"
	assert_eq "no Apache: apache.sh $how" "$want" "$LMT_RC"
	[ -n "$ci" ] && assert_contains "... and names apache2" "FAIL: apache2 is missing" "$LMT_STDOUT"
	suite CI="$ci" LMT_HIDE_TOOLS=valgrind bash "$top_srcdir/tests/e2e/valgrind.sh"
	assert_eq "no valgrind: valgrind.sh $how" "$want" "$LMT_RC"
	[ -n "$ci" ] && assert_contains "... and names valgrind" "FAIL: valgrind is missing" "$LMT_STDOUT"
	# fuzz.sh runs from the top of the source tree and stops before writing anything.
	run env -C "$top_srcdir" CI="$ci" CC=/nonexistent/clang FUZZ_SECONDS=1 scripts/fuzz.sh
	if [ -n "$ci" ]; then
		assert_eq "no clang: scripts/fuzz.sh fails under CI (1)" 1 "$LMT_RC"
		assert_contains "... and names clang" "FAIL: fuzz.sh: /nonexistent/clang is missing" "$LMT_STDOUT"
	else
		assert_eq "no clang: scripts/fuzz.sh is skipped (77), not ok" 77 "$LMT_RC"
	fi
done
# A check-level skip of a tool test.sh installs fails under CI, too.
lm() {
	(
		LMT_PASS=0 LMT_FAIL=0 LMT_SKIP=0 LMT_N=0
		. "$top_srcdir/tests/lib/lib.sh"
		CI=$1 lmt_missing "a check" wrk "wrk is not installed"
		echo "$LMT_PASS $LMT_FAIL $LMT_SKIP"
	)
}
assert_eq "lmt_missing: skipped outside CI" "0 0 1" "$(lm "" | tail -n 1)"
assert_eq "lmt_missing: failed under CI" "0 1 0" "$(lm true | tail -n 1)"
assert_contains "... naming the tool" "wrk is missing" "$(lm true)"
# LMT_HIDE_TOOLS hides only what it names.
(LMT_HIDE_TOOLS="valgrind,clang" lmt_have bash) && ok "lmt_have: a tool not hidden is found" ||
	fail "lmt_have: a tool not hidden is found"
(LMT_HIDE_TOOLS="valgrind,bash" lmt_have bash) && fail "lmt_have: a hidden tool is not found" ||
	ok "lmt_have: a hidden tool is not found"

section "the benchmarks' assertions (bench/lib.sh)"
# bench CMD...: runs CMD after sourcing bench/lib.sh in a child shell; its exit status.
bench() {
	(
		top=$top_srcdir
		. "$top_srcdir/bench/lib.sh"
		"$@"
	) >/dev/null 2>&1
	echo $?
}
printf '{"uid":1}' >"$T/ok.json"
printf '<html>502 Bad Gateway</html>' >"$T/bad.json"
assert_eq "bench_json passes a JSON answer" 0 "$(bench bench_json "file://$T/ok.json")"
assert_eq "bench_json fails the benchmark on an answer that is not JSON" 1 \
	"$(bench bench_json "file://$T/bad.json")"
assert_eq "bench_json fails the benchmark when nothing answers" 1 \
	"$(bench bench_json "file://$T/none.json")"
assert_eq "bench_no_errors passes 0 errors" 0 "$(bench bench_no_errors 0 x)"
assert_eq "bench_no_errors fails the benchmark on 1 error" 1 "$(bench bench_no_errors 1 x)"

section "the hang guard of run (lmt_guard, the suite's watchdog)"
# A suite of its own (its own $LMT_TMP, so its own watchdog), with a 1 s guard: a hang is
# killed with SIGTERM and gives 124, one that ignores SIGTERM is killed 5 s later with
# SIGKILL and gives 137, and the log names each; what does not hang keeps its status and
# its standard input.
run env -u LMT_TMP LMT_CMD_TIMEOUT=1 bash -c '. "$1/tests/lib/lib.sh"; lmt_tmpdir
	run sleep 60; echo "rc=$LMT_RC"
	run bash -c "trap \"\" TERM; exec sleep 60"; echo "rc=$LMT_RC"
	run sh -c "exit 3"; echo "rc=$LMT_RC"
	run cat <<<"in"; echo "rc=$LMT_RC $LMT_STDOUT"
	x=$(run sleep 60; echo "rc=$LMT_RC"); echo "subshell $x"' - "$top_srcdir"
assert_eq "lmt_guard: 124 for a hang, 137 for one that ignores SIGTERM, the status otherwise" \
	"rc=124 rc=137 rc=3 rc=0 in subshell rc=124" "$(grep -v '^#' <<<"$LMT_STDOUT" | tr '\n' ' ' | sed 's/ $//')"
assert_contains "... the log names the command killed" \
	"# lmt_guard: still running after 1 s, killed (TERM): sleep 60" "$LMT_STDOUT"
assert_contains "... and the one that needed SIGKILL" \
	"# lmt_guard: still running 5 s after SIGTERM, killed (KILL): bash -c trap" "$LMT_STDOUT"
# A script that sources lib.sh apart from its suite has timeout(1) instead: the same answer.
run env LMT_CMD_TIMEOUT=1 bash -c '. "$1/tests/lib/lib.sh"; run sleep 60; echo "rc=$LMT_RC"' - "$top_srcdir"
assert_eq "lmt_guard without the watchdog: 124 for a hang" "rc=124" "$LMT_STDOUT"

summary
