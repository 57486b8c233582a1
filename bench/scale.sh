#!/usr/bin/env bash
# The same three requests on a 2,000-task store and on a 1,000,000-task store, in one run:
# a task, a filtered page with its total (indexUids + statuses), a deep page (from one
# third down).  Also the fill rate, the bytes per task, and the responder's private memory.
#   bench/scale.sh [SECONDS] [TASKS]      (defaults 5 and 1000000)
# Fails (exit 1) on any error wrk counts or an answer that is not JSON.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
big=${2:-1000000}
. "$top/bench/lib.sh"

# Both stores alike: the batch, then a few tasks moved on so that statuses differ.
prepare() {
	local store=$1 n=$2
	bench_fill "$store" "$n"
	for _ in $(seq 1 20); do "$lmtasks" --db "$store" claim --index movies >/dev/null; done
	for u in $(seq 0 5 45); do "$lmtasks" --db "$store" succeed "$u" >/dev/null; done
}
prepare "$bench_work/small" 2000
prepare "$bench_work/big" "$big"
awk -v n="$big" -v s="$bench_batch_start" -v e="$bench_batch_end" -v f="$(stat -c %s "$bench_work/big/data.mdb")" \
	'BEGIN { printf "fill: %d tasks in %.2f s, %.0f tasks/s; data.mdb %.1f bytes per task\n", n, e - s, n / (e - s), f / n }'

bench_nginx "upstream small { server unix:$bench_work/small.sock; keepalive 128; }
	upstream big { server unix:$bench_work/big.sock; keepalive 128; }" \
	"$(bench_location /small/ small)
	$(bench_location /big/ big)"
bench_responder small "$bench_work/small"
small_pid=$responder_pid
bench_responder big "$bench_work/big"
big_pid=$responder_pid
base=http://127.0.0.1:$port
bench_wait "$base/small/tasks/1000"
bench_wait "$base/big/tasks/1000"

errors=0
deep_small=$((2000 * 2 / 3))
deep_big=$((big * 2 / 3))
printf '%-16s %12s %12s %8s\n' request "2k req/s" "${big} req/s" ratio
for what in task filtered deep; do
	case $what in
	task) ps="/tasks/1000"; pb="/tasks/$((big / 2))" ;;
	filtered) ps="/tasks?indexUids=movies&statuses=enqueued,succeeded"; pb=$ps ;;
	deep) ps="/tasks?from=$deep_small"; pb="/tasks?from=$deep_big" ;;
	esac
	bench_json "$base/small$ps"
	bench_json "$base/big$pb"
	read -r rs _ _ es < <(bench_wrk "$base/small$ps")
	read -r rb _ _ eb < <(bench_wrk "$base/big$pb")
	errors=$((errors + es + eb))
	awk -v w="$what" -v a="$rs" -v b="$rb" -v e=$((es + eb)) \
		'BEGIN { printf "%-16s %12.0f %12.0f %8.2f%s\n", w, a, b, b / a, e ? "  (" e " errors)" : "" }'
done
echo "total of the filtered page: 2k $(curl -s "$base/small/tasks?indexUids=movies&statuses=enqueued,succeeded&limit=0" | sed 's/.*"total":\([0-9]*\).*/\1/'), ${big} $(curl -s "$base/big/tasks?indexUids=movies&statuses=enqueued,succeeded&limit=0" | sed 's/.*"total":\([0-9]*\).*/\1/')"
echo "responder private memory (not the mapped store): 2k $(bench_private_kib "$small_pid") KiB, ${big} $(bench_private_kib "$big_pid") KiB"
echo "(wrk -t2 -c$conns, ${secs}s per run, the two stores interleaved; nginx 1 worker)"
# Any error fails the run; speed is printed, never asserted.
bench_no_errors "$errors" "scale.sh, all runs"
