#!/usr/bin/env bash
# Fills a fresh store with N tasks through one `lmtasks enqueue --batch` and reports
# how long it took and what a task costs on disk.
#   bench/fill.sh [N]            (default 1000000; LMTASKS=path/to/lmtasks)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
lmtasks=${LMTASKS:-$top/build/lmtasks}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Five indexes, four types, small details: what a busy Meilisearch queue holds.
awk -v n="$n" 'BEGIN {
	split("movies books songs films docs", idx, " ")
	split("documentAddition settingsUpdate indexCreation documentDeletion", ty, " ")
	for (i = 0; i < n; i++)
		printf "{\"indexUid\":\"%s\",\"type\":\"%s\",\"details\":{\"receivedDocuments\":%d}}\n",
			idx[i % 5 + 1], ty[i % 4 + 1], i % 1000
}' > "$work/batch.ndjson"

"$lmtasks" --db "$work/store" init 2>/dev/null
start=$(date +%s.%N)
"$lmtasks" --db "$work/store" enqueue --batch "$work/batch.ndjson" > /dev/null
end=$(date +%s.%N)
file=$(stat -c %s "$work/store/data.mdb")
used=$("$lmtasks" --db "$work/store" stats | sed 's/.*"usedBytes":\([0-9]*\).*/\1/')
awk -v n="$n" -v s="$start" -v e="$end" -v f="$file" -v u="$used" 'BEGIN {
	t = e - s
	printf "tasks             %d\n", n
	printf "batch time        %.2f s\n", t
	printf "tasks per second  %.0f\n", n / t
	printf "data.mdb          %d bytes, %.1f bytes per task\n", f, f / n
	printf "pages in use      %d bytes, %.1f bytes per task\n", u, u / n
}'
"$lmtasks" --db "$work/store" check > /dev/null
echo "check             ok"
