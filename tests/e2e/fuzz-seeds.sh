#!/usr/bin/env bash
# Replays every fuzz seed (tests/fuzz/seeds/<target>/*) through its fuzz target's entry
# point, built without libFuzzer by tests/fuzz/replay.c: an invariant that fails aborts
# the driver and fails its check.
#
#   top_builddir=build bash tests/e2e/fuzz-seeds.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"

set -u
: "${top_builddir:=$top_srcdir/build}"

for t in route query record batch fcgi; do
	drv=$top_builddir/tests/fuzz/replay_$t
	seeds=$top_srcdir/tests/fuzz/seeds/$t
	want=$(find "$seeds" -maxdepth 1 -type f | wc -l)
	run "$drv" "$seeds"
	assert_eq "$t: every seed replayed without an invariant failing (exit 0)" 0 "$LMT_RC"
	assert_eq "$t: $want seeds replayed" "$want inputs replayed" "$LMT_STDOUT"
done
summary
