#!/usr/bin/env bash
# One CGI request (a task, from a 2,000-task store) against exec'ing /bin/true: wall time
# with hyperfine, instructions (user space, ld.so included) with callgrind.
#   bench/cgi.sh [RUNS]     (default 300)
# Prints both times and their ratio; fails when the request does not answer 200 with JSON
# or any run fails (hyperfine stops on a non-zero exit).  Speed is never asserted.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-300}
. "$top/bench/lib.sh"

bench_fill "$bench_work/store" 2000
export REQUEST_METHOD=GET REQUEST_URI=/tasks/1000 LMTASKS_DB=$bench_work/store
"$fcgi" </dev/null >"$bench_work/cgi.out"
head -1 "$bench_work/cgi.out" | grep -q '200 OK' || { echo "bench: the CGI request fails" >&2; exit 1; }
python3 -c 'import json, sys; t = sys.stdin.read().split("\r\n\r\n", 1)[1]; json.loads(t)' \
	<"$bench_work/cgi.out" || { echo "bench: the CGI answer is not JSON" >&2; exit 1; }
hyperfine -N --runs "$runs" --warmup 20 --export-json "$bench_work/cgi.json" \
	"/bin/true" "$fcgi" </dev/null >/dev/null 2>&1
python3 - "$bench_work/cgi.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
t = next(v for k, v in r.items() if k.endswith("true"))
c = next(v for k, v in r.items() if not k.endswith("true"))
print(f"/bin/true       {t['mean']*1e6:8.0f} us  (median {t['median']*1e6:.0f})")
print(f"CGI GET /tasks  {c['mean']*1e6:8.0f} us  (median {c['median']*1e6:.0f})")
print(f"ratio           {c['median']/t['median']:8.2f}  (medians)")
PY
# Instructions: exact, so one run each.
ir() {
	valgrind --tool=callgrind --callgrind-out-file="$bench_work/cg.out" "$@" </dev/null >/dev/null 2>&1
	awk '/^summary:/ { print $2 }' "$bench_work/cg.out"
}
t=$(ir /bin/true)
c=$(ir "$fcgi")
echo "instructions    /bin/true $t, CGI GET /tasks $c, ratio $(awk -v a="$c" -v b="$t" 'BEGIN { printf "%.2f", a / b }')"
echo "(lmtasks-fcgi: $(file -b "$fcgi" | grep -o 'statically linked\|dynamically linked'))"
