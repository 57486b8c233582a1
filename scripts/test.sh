#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test.  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

lmt_install_deps wrk hyperfine
lmt_build

status=0
make -s -C build -j"$(nproc)" check || status=$?
if [ "$status" -ne 0 ]; then
	# Show what failed, not just that something did.
	for log in build/tests/*.log; do
		[ -f "$log" ] && grep -q '^FAIL\|^ERROR' "${log%.log}.trs" 2>/dev/null && {
			echo "==== $log"
			tail -n 60 "$log"
		}
	done
	exit "$status"
fi
