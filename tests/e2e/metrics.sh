#!/usr/bin/env bash
# GET /metrics (README "Metrics"), end to end: through a real nginx and as CGI, behind the
# master key or a key with metrics.get (keys without it, or for some indexes only, are
# refused); the text checked by promtool; the values against what `lmtasks stats` reports
# after enqueue, claim, succeed and fail; leases that expire (the clock seam moves the
# responder's clock, nothing sleeps); the responder's own requests, page cache and open
# streams; then a real Prometheus (Debian's) scrapes it every second with a key, and its own
# query API gives back the store's counts; doc/prometheus/lmtasks-rules.yml loads in it.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/metrics.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries metrics.sh
http_need_nginx
PROMETHEUS=$(command -v prometheus || echo /usr/bin/prometheus)
PROMTOOL=$(command -v promtool || echo /usr/bin/promtool)
[ -x "$PROMETHEUS" ] && [ -x "$PROMTOOL" ] ||
	lmt_missing_all prometheus "no prometheus or promtool (apt-get install prometheus)"
[ -x "$LMTASKS_FCGI_CLOCKED" ] || { echo "metrics.sh: no $LMTASKS_FCGI_CLOCKED" >&2; exit 99; }

T=$HTTP_TMP
S=$T/store
http_demo_store metrics.sh
MASTER=metrics-suite-master-key-0123456789
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"
key() { L key create "$@" | json_get - 'd["key"]'; }
METRICS_KEY=$(key --actions metrics.get --description prometheus)
ALL_METRICS_KEY=$(key --actions 'metrics.*')
TASKS_KEY=$(key --actions 'tasks.*')
BOOKS_KEY=$(key --indexes books --actions metrics.get)
[ -n "$METRICS_KEY" ] && [ -n "$BOOKS_KEY" ] || { echo "metrics.sh: no keys made" >&2; exit 99; }

# The responder runs on the clock seam: a lease expires when the test moves the clock.
clock_use "$T/clock"
LMTASKS_FCGI=$LMTASKS_FCGI_CLOCKED fcgi_start "$T/m.sock" "$S" 1 \
	--master-key-file "$T/master.key" || exit 99
http_nginx_start metrics "" "location / { include fastcgi_params; fastcgi_keep_conn on; fastcgi_pass unix:$T/m.sock; }" || exit 99
KEYED_PORT=$HTTP_PORT

# scrape [KEY]: GET /metrics through nginx with KEY (the metrics key); the text in
# $T/scrape.txt.
scrape() {
	http GET /metrics -H "Authorization: Bearer ${1:-$METRICS_KEY}"
	cp "$HTTP_BODY_FILE" "$T/scrape.txt"
}
# metric SERIES [FILE]: the value of the sample SERIES (name and labels, exactly as the text
# has them) in FILE (the last scrape), or "none".
metric() {
	awk -v s="$1" '$1 == s { print $2; found = 1; exit } END { if (!found) print "none" }' \
		"${2:-$T/scrape.txt}"
}
# stats_of EXPR: EXPR of `lmtasks stats`'s JSON (d).
stats_of() { json_get "$(L stats)" "$1"; }
status_count() { metric "meilisearch_nb_tasks{kind=\"statuses\",value=\"$1\"}"; }

section "keys, as Meilisearch asks them"
http GET /metrics
assert_eq "no key: 401" 401 "$HTTP_STATUS"
assert_eq "... missing_authorization_header, in Meilisearch's words" \
	"$(errbody missing_authorization_header 'The Authorization header is missing. It must use the bearer authorization method.' auth)" \
	"$HTTP_BODY"
http GET /metrics -H "Authorization: Bearer not-a-key-at-all"
assert_eq "a wrong key: 403" 403 "$HTTP_STATUS"
scrape "$MASTER"
assert_eq "the master key: 200" 200 "$HTTP_STATUS"
scrape
assert_eq "a key with metrics.get: 200" 200 "$HTTP_STATUS"
assert_eq "... as Prometheus's text format 0.0.4" "text/plain; version=0.0.4; charset=utf-8" \
	"$(http_header Content-Type)"
assert_eq "... never kept by a cache" "no-store" "$(http_header Cache-Control)"
scrape "$ALL_METRICS_KEY"
assert_eq "a key with metrics.*: 200" 200 "$HTTP_STATUS"
scrape "$TASKS_KEY"
assert_eq "a key with tasks.* only: 403" 403 "$HTTP_STATUS"
assert_eq "... invalid_api_key" \
	"$(errbody invalid_api_key 'The provided API key is invalid.' auth)" "$HTTP_BODY"
scrape "$BOOKS_KEY"
assert_eq "a metrics.get key for some indexes only: 403, as in Meilisearch" 403 "$HTTP_STATUS"
assert_contains "... which says why" 'must allow access to all indexes' "$HTTP_BODY"
http GET /tasks -H "Authorization: Bearer $METRICS_KEY"
assert_eq "metrics.get reads no task: /tasks answers 403" 403 "$HTTP_STATUS"
http POST /metrics -H "Authorization: Bearer $METRICS_KEY"
assert_eq "POST /metrics: 405" 405 "$HTTP_STATUS"
http HEAD /metrics -H "Authorization: Bearer $METRICS_KEY"
assert_eq "HEAD /metrics: 200, no body" "200 " "$HTTP_STATUS $HTTP_BODY"

section "the text"
scrape
run "$PROMTOOL" check metrics <"$T/scrape.txt"
# Meilisearch's own meilisearch_index_count breaks one lint rule; the name is kept for
# the dashboards that read it.  Anything else promtool says is a failure.
assert_eq "promtool reads it, and finds nothing but Meilisearch's own name to lint" \
	"meilisearch_index_count non-histogram and non-summary metrics should not have \"_count\" suffix" \
	"$(printf '%s\n%s\n' "$LMT_STDOUT" "$LMT_STDERR" | grep -v '^$')"

# same_as_stats LABEL: every number the scrape and `lmtasks stats` both give, equal.
same_as_stats() {
	local label=$1 st bad="" name
	scrape
	st=$(L stats)
	for name in enqueued processing succeeded failed canceled; do
		[ "$(status_count $name)" = "$(json_get "$st" "d['statuses']['$name']")" ] ||
			bad+=" $name=$(status_count $name)/$(json_get "$st" "d['statuses']['$name']")"
	done
	[ "$(metric lmtasks_tasks_enqueued_total)" = "$(json_get "$st" 'd["nextUid"]')" ] ||
		bad+=" enqueued_total"
	[ "$(metric lmtasks_tasks_finished_total)" = "$(json_get "$st" \
		'd["nextUid"] - d["statuses"]["enqueued"] - d["statuses"]["processing"]')" ] ||
		bad+=" finished_total"
	[ "$(metric lmtasks_store_tasks)" = "$(json_get "$st" 'd["tasks"]')" ] || bad+=" tasks"
	[ "$(metric meilisearch_index_count)" = "$(json_get "$st" 'd["indexes"]')" ] ||
		bad+=" indexes"
	[ "$(metric meilisearch_db_size_bytes)" = "$(json_get "$st" 'd["usedBytes"]')" ] ||
		bad+=" usedBytes"
	[ "$(metric meilisearch_used_db_size_bytes)" = "$(json_get "$st" 'd["liveBytes"]')" ] ||
		bad+=" liveBytes"
	[ "$(metric lmtasks_store_map_size_bytes)" = "$(json_get "$st" 'd["mapSize"]')" ] ||
		bad+=" mapSize"
	[ "$(metric lmtasks_store_max_bytes)" = "$(json_get "$st" 'd["settings"]["maxBytes"]')" ] ||
		bad+=" maxBytes"
	[ "$(metric lmtasks_store_enqueue_limit_bytes)" = \
		"$(json_get "$st" 'd["newTasksUntilBytes"]')" ] || bad+=" newTasksUntilBytes"
	[ "$(metric meilisearch_task_queue_max_size)" = "$(json_get "$st" \
		'd["settings"]["maxBytes"]')" ] || bad+=" task_queue_max_size"
	[ "$(metric meilisearch_task_queue_used_size)" = "$(json_get "$st" 'd["liveBytes"]')" ] ||
		bad+=" task_queue_used_size"
	[ "$(metric meilisearch_task_queue_size_until_stop_registering)" = "$(json_get "$st" \
		'max(0, d["newTasksUntilBytes"] - d["liveBytes"])')" ] || bad+=" until_stop_registering"
	[ "$(metric meilisearch_is_indexing)" = "$(json_get "$st" \
		'int(d["statuses"]["processing"] > 0)')" ] || bad+=" is_indexing"
	if [ -z "$bad" ]; then ok "$label"; else fail "$label" "differ:$bad" "stats: $st"; fi
}

section "values, against lmtasks stats"
same_as_stats "the demo store: every status, totals and sizes as stats says"
assert_eq "the demo store's statuses" "1 0 2 1 1" "$(for s in enqueued processing succeeded failed canceled; do status_count $s; done | tr '\n' ' ' | sed 's/ $//')"
assert_eq "tasks by index (the cancelation task has none)" "2 2" \
	"$(metric 'meilisearch_nb_tasks{kind="indexes",value="movies"}') $(metric 'meilisearch_nb_tasks{kind="indexes",value="books"}')"
assert_eq "tasks by type" "2" "$(metric 'meilisearch_nb_tasks{kind="types",value="documentAddition"}')"
assert_eq "lmtasks_tasks: books' enqueued and failed" "1 1" \
	"$(metric 'lmtasks_tasks{index="books",status="enqueued"}') $(metric 'lmtasks_tasks{index="books",status="failed"}')"
assert_eq "the change log's head: lmtasks_changes_total, the last seq watch prints" \
	"$(L watch --since 0 --timeout 0.1 2>/dev/null | tail -n 1 | json_get - 'd["seq"]')" \
	"$(metric lmtasks_changes_total)"
for i in 1 2 3; do L enqueue movies documentAddition >/dev/null; done
same_as_stats "after three enqueues"
L claim --index movies >/dev/null
L claim --index books >/dev/null
same_as_stats "after two claims"
assert_eq "... indexing" 1 "$(metric meilisearch_is_indexing)"
L succeed 5 >/dev/null
L fail 4 --code boom --message 'it broke' >/dev/null
same_as_stats "after a succeed and a fail"
before=$(metric lmtasks_tasks_finished_total)
L delete --statuses succeeded >/dev/null
same_as_stats "after a delete"
assert_eq "the finished counter keeps the deleted tasks (and counts the taskDeletion)" \
	$((before + 1)) "$(metric lmtasks_tasks_finished_total)"

section "leases and the queue's age, on the responder's clock"
L claim --index movies --lease 60 >/dev/null
scrape
assert_eq "one lease held, none expired" "1 0" \
	"$(metric lmtasks_leases) $(metric lmtasks_leases_expired)"
age=$(metric lmtasks_queue_oldest_age_seconds)
clock_move 120
scrape
assert_eq "120 s on (no writer ran): the lease has expired" "1 1" \
	"$(metric lmtasks_leases) $(metric lmtasks_leases_expired)"
check "the oldest enqueued task is 120 s older" \
	awk -v a="$age" -v b="$(metric lmtasks_queue_oldest_age_seconds)" 'BEGIN { exit !(b - a >= 120) }'
check "Meilisearch's latency is at least that" \
	awk -v a="$(metric lmtasks_queue_oldest_age_seconds)" -v b="$(metric meilisearch_task_queue_latency_seconds)" 'BEGIN { exit !(b >= a) }'
LMTASKS_TEST_CLOCK=$LMTASKS_TEST_CLOCK "$LMTASKS_CLOCKED" --db "$S" reap >/dev/null
scrape
assert_eq "after lmtasks reap: no lease" "0 0" \
	"$(metric lmtasks_leases) $(metric lmtasks_leases_expired)"
same_as_stats "and the reaped task failed, as stats says"

section "the responder's own counters"
# A responder of its own: its counters hold these requests only.
fcgi_start "$T/r.sock" "$S" 1 || exit 99
http_nginx_start own "" "location / { include fastcgi_params; fastcgi_keep_conn on; fastcgi_pass unix:$T/r.sock; }" || exit 99
for i in 1 2 3 4 5; do http GET '/tasks?limit=2'; done
http GET /tasks/999999
http GET /tasks/999998
http DELETE /tasks
http GET /nowhere
scrape
assert_eq "GET /tasks: 5 answered 200" 5 \
	"$(metric 'meilisearch_http_requests_total{method="GET",path="/tasks",status="200"}')"
assert_eq "GET /tasks/{taskUid}: 2 answered 404" 2 \
	"$(metric 'meilisearch_http_requests_total{method="GET",path="/tasks/{taskUid}",status="404"}')"
assert_eq "DELETE /tasks: 1 answered 405" 1 \
	"$(metric 'meilisearch_http_requests_total{method="other",path="/tasks",status="405"}')"
assert_eq "a path no route has: 1, under path=\"unmatched\"" 1 \
	"$(metric 'meilisearch_http_requests_total{method="GET",path="unmatched",status="404"}')"
assert_eq "the latency histogram counts the same 5" 5 \
	"$(metric 'meilisearch_http_response_time_seconds_count{method="GET",path="/tasks"}')"
assert_eq "... and its +Inf bucket" 5 \
	"$(metric 'meilisearch_http_response_time_seconds_bucket{method="GET",path="/tasks",le="+Inf"}')"
assert_eq "the page cache: the same page rendered twice, then kept (3 hits)" "3 2" \
	"$(metric lmtasks_page_cache_hits_total) $(metric lmtasks_page_cache_misses_total)"
assert_eq "no stream open" 0 "$(metric lmtasks_streams_open)"
uid=$(L enqueue movies documentAddition | json_get - 'd["uid"]')
curl -sN --max-time 60 -o "$T/stream.out" "$HTTP_BASE/tasks/stream?uids=$uid" &
spid=$!
lmt_bg_track $spid
open_streams() { scrape; [ "$(metric lmtasks_streams_open)" = "$1" ]; }
assert_soon "a stream open: lmtasks_streams_open 1" 30 open_streams 1
L start "$uid" >/dev/null
L succeed "$uid" >/dev/null
lmt_wait_pid 30 $spid
assert_soon "its task finished, the stream ended: 0" 30 open_streams 0
scrape
check "the scrapes are counted too (3 and more)" \
	test "$(metric 'meilisearch_http_requests_total{method="GET",path="/metrics",status="200"}')" -ge 3

section "CGI"
CGI_DB=$S
cgi GET /metrics LMTASKS_MASTER_KEY_FILE="$T/master.key"
assert_eq "CGI without a key: 401" 401 "$CGI_CODE"
cgi GET /metrics LMTASKS_MASTER_KEY_FILE="$T/master.key" HTTP_AUTHORIZATION="Bearer $BOOKS_KEY"
assert_eq "CGI with a key for some indexes: 403" 403 "$CGI_CODE"
cgi GET /metrics LMTASKS_MASTER_KEY_FILE="$T/master.key" HTTP_AUTHORIZATION="Bearer $METRICS_KEY"
assert_eq "CGI with the metrics key: 200" 200 "$CGI_CODE"
assert_eq "... text/plain" "text/plain; version=0.0.4; charset=utf-8" "$(cgi_header Content-Type)"
scrape
assert_eq "the same task counts as FastCGI's" \
	"$(grep '^meilisearch_nb_tasks\|^lmtasks_tasks' "$T/scrape.txt")" \
	"$(grep '^meilisearch_nb_tasks\|^lmtasks_tasks' "$CGI_BODY_FILE")"
assert_eq "no responder counters: a CGI process answers one request" 0 \
	"$(grep -c '^meilisearch_http_requests_total\|^lmtasks_streams_open' "$CGI_BODY_FILE")"
cgi GET /metrics
assert_eq "CGI with no master key: open, as every route" 200 "$CGI_CODE"

section "a real Prometheus"
run "$PROMTOOL" check rules "$top_srcdir/doc/prometheus/lmtasks-rules.yml"
assert_eq "doc/prometheus/lmtasks-rules.yml: promtool check rules" 0 "$LMT_RC"
printf '%s' "$METRICS_KEY" >"$T/prometheus.key"
PROM_PORT=$(http_random_port) || { echo "metrics.sh: no free port" >&2; exit 99; }
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $top_srcdir/doc/prometheus/lmtasks-rules.yml
scrape_configs:
  - job_name: lmtasks
    scrape_timeout: 1s
    authorization:
      credentials_file: $T/prometheus.key
    static_configs:
      - targets: ["127.0.0.1:$KEYED_PORT"]
  - job_name: wrong-key
    scrape_timeout: 1s
    authorization:
      credentials: $TASKS_KEY
    static_configs:
      - targets: ["127.0.0.1:$KEYED_PORT"]
EOF
"$PROMETHEUS" --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
	--web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn \
	</dev/null >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
lmt_on_exit "http_stop $PROM_PID"
# query PROMQL: the first result's value, or "none".
query() {
	curl -s --max-time 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" \
		--data-urlencode "query=$1" 2>/dev/null |
		json_get - 'd["data"]["result"][0]["value"][1] if d["data"]["result"] else "none"' 2>/dev/null ||
		echo none
}
is() { [ "$(query "$1")" = "$2" ]; }
# Three scrapes or more, each answered: a hang guard of 30 s, no fixed sleep.
assert_soon "Prometheus scrapes /metrics with the key, three times and more, each answered" 30 \
	is '(count_over_time(up{job="lmtasks"}[1m]) >= bool 3) * min_over_time(up{job="lmtasks"}[1m])' 1
st=$(L stats)
for s in enqueued processing succeeded failed canceled; do
	assert_soon "Prometheus's $s equals stats's" 30 \
		is "meilisearch_nb_tasks{job=\"lmtasks\",kind=\"statuses\",value=\"$s\"}" \
		"$(json_get "$st" "d['statuses']['$s']")"
done
assert_soon "Prometheus's finished counter equals nextUid less the unfinished" 30 \
	is 'lmtasks_tasks_finished_total{job="lmtasks"}' \
	"$(json_get "$st" 'd["nextUid"] - d["statuses"]["enqueued"] - d["statuses"]["processing"]')"
assert_soon "the wrong key's job is down: its scrapes refused" 30 is 'up{job="wrong-key"}' 0
L enqueue books documentAddition >/dev/null
want=$(stats_of 'd["statuses"]["enqueued"]')
assert_soon "a task enqueued now shows in Prometheus at a later scrape" 30 \
	is 'meilisearch_nb_tasks{job="lmtasks",kind="statuses",value="enqueued"}' "$want"
# rules_ok: the four rules of the shipped file evaluated, each without an error.
rules_ok() {
	curl -s --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/rules" |
		json_get - '",".join(r["health"] for g in d["data"]["groups"] for r in g["rules"])' |
		grep -qx "ok,ok,ok,ok"
}
assert_soon "the shipped alert rules load and evaluate without error" 30 rules_ok
http_stop "$PROM_PID"
check "Prometheus stopped by its PID" lmt_ended "$PROM_PID"

summary
