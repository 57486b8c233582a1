#!/usr/bin/env bash
# Fills a fresh store with N tasks through one `lmtasks enqueue --batch` and reports
# how long it took and what a task costs on disk.
#   bench/fill.sh [N]            (default 1000000; BUILD=dir with the binaries)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
. "$top/bench/lib.sh"

store=$bench_work/store
bench_fill "$store" "$n"
start=$bench_batch_start
end=$bench_batch_end
file=$(stat -c %s "$store/data.mdb")
used=$("$lmtasks" --db "$store" stats | sed 's/.*"usedBytes":\([0-9]*\).*/\1/')
awk -v n="$n" -v s="$start" -v e="$end" -v f="$file" -v u="$used" 'BEGIN {
	t = e - s
	printf "tasks             %d\n", n
	printf "batch time        %.2f s\n", t
	printf "tasks per second  %.0f\n", n / t
	printf "data.mdb          %d bytes, %.1f bytes per task\n", f, f / n
	printf "pages in use      %d bytes, %.1f bytes per task\n", u, u / n
}'
"$lmtasks" --db "$store" check > /dev/null
echo "check             ok"
