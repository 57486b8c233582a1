#!/usr/bin/env bash
# Builds the libFuzzer targets in ./build-fuzz (CC=clang, --enable-fuzzing) and runs each
# for FUZZ_SECONDS from a copy of its seed corpus (tests/fuzz/seeds/<name>, never written).
# Run from the top of the source tree:
#
#   scripts/fuzz.sh                          # every target, 30 s each, one after another
#   FUZZ_SECONDS=300 FUZZ_PARALLEL=2 scripts/fuzz.sh route query
#   FUZZ_BUILD=build-san scripts/fuzz.sh     # the targets of a build configured already
#
# FUZZ_BUILD names a build directory configured with CC=clang --enable-fuzzing (with
# --enable-asan --enable-ubsan too, scripts/test.sh's build-san: the targets are then
# linked from the objects its make check tested, nothing is compiled twice); without it,
# build-fuzz is configured when it is not yet.  Every seed is replayed first, each
# target's seeds in one process; when that process fails, one process per seed says which.
#
# Prints, per target, the executions, the final coverage and what was found; exits 1
# when any target found a crash (the inputs are kept in BUILD/artifacts/<name>/),
# 0 otherwise.  Installs nothing: without clang or its fuzzer runtime it prints a SKIP
# line and exits 77 (automake's "skipped") -- or, under CI (CI=true), where fuzzing may
# not be skipped, a FAIL line naming what is missing and exits 1.  Targets run in libFuzzer's fork mode with -ignore_crashes, so a
# known crash (a regression seed) does not keep a target from fuzzing for its time.
#
# Environment: FUZZ_SECONDS (30), FUZZ_PARALLEL (1: targets run at once), CC (clang),
# FUZZ_BUILD (build-fuzz), FUZZ_KEEP=1 keeps the temporary corpora and logs,
# UBSAN_OPTIONS / ASAN_OPTIONS are appended to the script's own (undefined behaviour
# halts, so it counts as a crash).

set -u

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
CC=${CC:-clang}
BUILD=${FUZZ_BUILD:-build-fuzz}
ALL_TARGETS=(route query record batch fcgi)

die() { echo "fuzz.sh: $*" >&2; exit 1; }

[ -f tests/fuzz/fuzz_route.c ] && [ -f configure.ac ] ||
	die "run me from the top of the lmtasks source tree"
# (0 would mean "for ever" to libFuzzer.)
case $FUZZ_SECONDS in '' | 0 | *[!0-9]*) die "FUZZ_SECONDS wants a whole number of seconds from 1" ;; esac
case $FUZZ_PARALLEL in '' | 0 | *[!0-9]*) die "FUZZ_PARALLEL wants a number from 1" ;; esac
TOP=$(pwd)

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
	case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) die "no target \`$t\` (${ALL_TARGETS[*]})" ;; esac
done

# Largest input per target: a path up to 4096 bytes with its CGI fields; query values up
# to 16 KiB (QUERY_TEXT_MAX) and a little more to pass it; records with long strings;
# batches of a few lines.
max_len() {
	case $1 in
	route) echo 8192 ;;
	query) echo 20000 ;;
	record) echo 2048 ;;
	batch) echo 16384 ;;
	fcgi) echo 65536 ;;
	esac
}

# ---- can this machine fuzz? ----

# cannot_fuzz WHAT WHY: skipped (77), or failed under CI (1), naming WHAT.
cannot_fuzz() {
	case ${CI:-} in
	true | TRUE | True | 1 | yes)
		echo "FAIL: fuzz.sh: $1 is missing (CI=true: fuzzing may not be skipped): $2"
		exit 1 ;;
	esac
	echo "SKIP: fuzz.sh: $2"
	exit 77
}
if ! command -v "$CC" >/dev/null 2>&1; then
	cannot_fuzz "$CC" "no $CC here (libFuzzer needs clang); nothing was fuzzed"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lmtasks-fuzz.XXXXXXXX") || die "mktemp failed"
if [ -n "${FUZZ_KEEP:-}" ]; then
	echo "# keeping $WORK"
else
	trap 'rm -rf -- "$WORK"' EXIT
fi
# Whatever the targets leave in TMPDIR (fork mode's files, the query target's store when
# it crashes) goes with $WORK.
mkdir -p "$WORK/tmp" && export TMPDIR=$WORK/tmp
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
	>"$WORK/probe.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$WORK/probe.c" -o "$WORK/probe" \
	>"$WORK/probe.log" 2>&1; then
	sed 's/^/#   /' "$WORK/probe.log" | head -5
	cannot_fuzz "the libFuzzer runtime" "$CC cannot link -fsanitize=fuzzer,address,undefined (no libFuzzer runtime; on Debian it comes with the clang package of the same version); nothing was fuzzed"
fi

# ---- build ----

if [ ! -x configure ]; then
	echo "# ./configure is missing: autoreconf -fi"
	autoreconf -fi >"$WORK/autoreconf.log" 2>&1 || { cat "$WORK/autoreconf.log" >&2; die "autoreconf failed"; }
fi
# fuzz_configured DIR: DIR's Makefile links the targets with libFuzzer, compiled by $CC.
fuzz_configured() {
	[ -f "$1/Makefile" ] && grep -q '^FUZZ_LDFLAGS = .*-fsanitize=fuzzer' "$1/Makefile" &&
		grep -q "^CC = $CC\$" "$1/Makefile"
}
mkdir -p "$BUILD" || die "cannot create $BUILD"
if ! fuzz_configured "$BUILD"; then
	# A directory named by FUZZ_BUILD is someone else's build: never reconfigured here.
	[ -z "${FUZZ_BUILD:-}" ] ||
		die "FUZZ_BUILD=$BUILD is not configured with CC=$CC --enable-fuzzing"
	echo "# configuring $BUILD (CC=$CC --enable-fuzzing)"
	(cd "$BUILD" && CC=$CC "$TOP/configure" -q --enable-fuzzing) >"$WORK/configure.log" 2>&1 ||
		{ cat "$WORK/configure.log" >&2; die "configure failed in $BUILD (see above)"; }
fi
bins=()
for t in "${targets[@]}"; do bins+=("tests/fuzz/fuzz_$t"); done
echo "# building ${bins[*]} in $BUILD"
make -C "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" "${bins[@]}" >"$WORK/make.log" 2>&1 ||
	{ tail -40 "$WORK/make.log" >&2; die "the fuzz targets do not build (see above)"; }

# ---- run ----

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

# run_one NAME: fuzzes NAME from a copy of its seeds; its log is $WORK/NAME.log.
run_one() {
	local t=$1 corpus=$WORK/corpus-$1 art=$TOP/$BUILD/artifacts/$1
	mkdir -p "$corpus" "$art"
	cp -p tests/fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null
	(cd "$WORK" && "$TOP/$BUILD/tests/fuzz/fuzz_$t" \
		-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
		-max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" -timeout=10 \
		-artifact_prefix="$art/" -print_final_stats=1 "$corpus") >"$WORK/$t.log" 2>&1
	echo $? >"$WORK/$t.rc"
}

# signature FILE NAME: the first line that says what went wrong when NAME runs FILE.
signature() {
	(cd "$WORK" && timeout 30 "$TOP/$BUILD/tests/fuzz/fuzz_$2" "$1") 2>&1 |
		grep -m1 -E 'invariant failed|runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer|ERROR: libFuzzer|SUMMARY' |
		sed -E -e 's/^==[0-9]+==//' -e "s|$TOP/||g" -e 's/0x[0-9a-f]+/0x.../g' \
			-e 's/-?[0-9]{5,}/N/g' | cut -c1-200
}

# Every seed first: fork mode's first merge skips inputs that crash, so a regression seed
# would otherwise go unreported.  A target's seeds run in one process (libFuzzer runs each
# file named once, 60 s at most each, and LeakSanitizer checks at its exit); when that
# process fails, each seed runs alone to name the ones that fail.  A failure that no seed
# shows alone (one seed's leftovers failing another) is a failure too.
for t in "${targets[@]}"; do
	: >"$WORK/$t.seeds-failed"
	seeds=()
	for f in tests/fuzz/seeds/"$t"/*; do [ -f "$f" ] && seeds+=("$TOP/$f"); done
	[ ${#seeds[@]} -gt 0 ] || continue
	(cd "$WORK" && timeout 600 "$TOP/$BUILD/tests/fuzz/fuzz_$t" -timeout=60 "${seeds[@]}") \
		>"$WORK/seeds-$t.log" 2>&1 && continue
	for f in "${seeds[@]}"; do
		(cd "$WORK" && timeout 60 "$TOP/$BUILD/tests/fuzz/fuzz_$t" "$f") \
			>"$WORK/seed.log" 2>&1 ||
			printf '%s\t%s\n' "$(signature "$f" "$t")" "${f#"$TOP"/}" >>"$WORK/$t.seeds-failed"
	done
	[ -s "$WORK/$t.seeds-failed" ] ||
		grep -m1 -E 'ERROR|runtime error|SUMMARY|invariant' "$WORK/seeds-$t.log" | cut -c1-200 \
			>"$WORK/$t.seeds-together"
done

echo "# fuzzing ${targets[*]} for ${FUZZ_SECONDS}s each ($FUZZ_PARALLEL at a time)"
running=0
for t in "${targets[@]}"; do
	# Artifacts of an earlier run would be counted as this run's findings.
	rm -f "$BUILD/artifacts/$t"/crash-* "$BUILD/artifacts/$t"/leak-* \
		"$BUILD/artifacts/$t"/timeout-* "$BUILD/artifacts/$t"/oom-* 2>/dev/null
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$FUZZ_PARALLEL" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

status=0
for t in "${targets[@]}"; do
	log=$WORK/$t.log art=$BUILD/artifacts/$t
	# Fork mode's progress lines: "#EXECS: cov: N ft: N corp: N ... oom/timeout/crash: a/b/c".
	last=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -n 1)
	execs=$(sed -n 's/^#\([0-9]*\): .*/\1/p' <<<"$last")
	cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/\1 edges, \2 features, \3 inputs in the corpus/p' <<<"$last")
	[ -n "$execs" ] || execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	shopt -s nullglob
	found=("$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*)
	shopt -u nullglob
	rc=$(cat "$WORK/$t.rc" 2>/dev/null || echo 1)
	nseeds=$(find "tests/fuzz/seeds/$t" -type f | wc -l)
	nbad=$(wc -l <"$WORK/$t.seeds-failed")
	if [ "$nbad" -gt 0 ]; then
		echo "fuzz_$t: $nbad of its $nseeds seeds fail (regressions not fixed yet):"
		sort "$WORK/$t.seeds-failed" | awk -F'\t' '{ print "#   " $2 ": " $1 }'
		status=1
	fi
	if [ -f "$WORK/$t.seeds-together" ]; then
		echo "fuzz_$t: its $nseeds seeds fail when replayed in one process, none alone:"
		sed 's/^/#   /' "$WORK/$t.seeds-together"
		echo "#   (the log: $WORK/seeds-$t.log with FUZZ_KEEP=1)"
		status=1
	fi
	printf 'fuzz_%s: %s executions; coverage: %s; ' "$t" "${execs:-?}" "${cov:-?}"
	if [ ${#found[@]} -gt 0 ]; then
		echo "FOUND ${#found[@]} failing input(s) in $art/"
		status=1
		# One line per distinct failure (the first 100 inputs are replayed to tell them apart).
		for f in "${found[@]:0:100}"; do
			printf '%s\t%s\n' "$(signature "$TOP/$f" "$t")" "$(basename "$f")"
		done | sort | awk -F'\t' '$1 != prev { print "#   " $1 "  (e.g. " $2 ")"; prev = $1 }'
	elif [ -z "$last" ] || { [ "$rc" -ne 0 ] && ! grep -q 'INFO: exiting: 0\|Done [0-9]* runs' "$log"; }; then
		echo "did not run to the end (exit $rc); the end of its log:"
		tail -n 15 "$log" | sed 's/^/#   /'
		status=1
	else
		echo "nothing found"
	fi
done
exit "$status"
