#!/usr/bin/env bash
# Counts the results `make check` left in each build directory given: one result per suite
# (automake's tests/unit/*.trs and tests/e2e/*.trs), and, apart, every check a suite skipped inside ("ok N - name
# # SKIP why" in its log).  scripts/test.sh removes those files before `make check`, so
# what is counted is that run's results and nothing older.
#
#   scripts/tally.sh build [build-san ...]
#
# Prints one line per skip ("skipped: DIR/SUITE: WHY" or "skipped: DIR/SUITE: CHECK: WHY"),
# one per suite that failed ("failed: DIR/SUITE"), then "PASSED FAILED SKIPPED" on the
# last line.  A suite counts as passed when it passed, even when some of its checks were
# skipped: those are counted as skips on top.
set -u
pass=0 fail=0 skip=0
for dir in "$@"; do
	for trs in "$dir"/tests/*/*.trs; do
		[ -f "$trs" ] || continue
		name=${trs%.trs}
		log=$name.log
		name=$dir/${name#"$dir"/tests/}
		result=$(sed -n 's/^:test-result: //p' "$trs" | head -n 1)
		case $result in
		PASS | XFAIL) pass=$((pass + 1)) ;;
		SKIP)
			skip=$((skip + 1))
			why=$(grep -m1 '^SKIP: ' "$log" 2>/dev/null | sed 's/^SKIP: //')
			echo "skipped: $name: ${why:-(no reason given)}"
			continue
			;;
		*)
			fail=$((fail + 1))
			echo "failed: $name"
			;;
		esac
		[ -f "$log" ] || continue
		while IFS= read -r line; do
			skip=$((skip + 1))
			echo "skipped: $name: $line"
		done < <(sed -n 's/^ok [0-9]* - \(.*\) # SKIP \(.*\)$/\1: \2/p' "$log")
	done
done
echo "$pass $fail $skip"
