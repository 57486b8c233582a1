#!/usr/bin/env bash
# lmtasks-writer behind a real Apache httpd 2.4: the shipped apache/lmtasks-proxy-fcgi.conf
# site with apache/lmtasks-writer.conf included above its ProxyPass (only sockets, ports
# and names moved) sends POST /tasks/cancel, POST /tasks/compact and DELETE /tasks to the
# writer and every other method and path to the read-only responder; keys need the
# action; the same site without the snippet keeps the responder's 405.  Apache and the
# programs run from a
# temporary directory on 127.0.0.1 and are stopped by PID.  As root, Apache's workers run
# as www-data (else nobody), which the sockets and directories let in by group.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi LMTASKS_WRITER=build/lmtasks-writer \
#       bash tests/e2e/writer-apache.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
: "${LMTASKS_WRITER:=${top_builddir:-.}/lmtasks-writer}"
case $LMTASKS_WRITER in /*) ;; *) LMTASKS_WRITER=$(pwd)/$LMTASKS_WRITER ;; esac
for b in "$LMTASKS" "$LMTASKS_FCGI" "$LMTASKS_WRITER"; do
	[ -x "$b" ] || { echo "writer-apache.sh: no binary at $b" >&2; exit 99; }
done
APACHE=
for a in /usr/sbin/apache2 /usr/sbin/httpd "$(command -v apache2 2>/dev/null)"; do
	[ -n "$a" ] && [ -x "$a" ] && { APACHE=$a; break; }
done
[ -n "$APACHE" ] || lmt_missing_all apache2 "no Apache httpd (apt-get install apache2)"
lmt_have curl || lmt_missing_all curl "no curl"
lmt_have ss || lmt_missing_all ss "no ss (iproute2)"
MODDIR=
for d in /usr/lib/apache2/modules /usr/lib64/httpd/modules /usr/lib/httpd/modules; do
	[ -f "$d/mod_proxy_fcgi.so" ] && { MODDIR=$d; break; }
done
[ -n "$MODDIR" ] || lmt_missing_all apache2 "no mod_proxy_fcgi.so"
BUILTIN=$("$APACHE" -l 2>/dev/null)
LOADS=""
for m in mpm_event authz_core unixd log_config proxy proxy_fcgi; do
	case $BUILTIN in *"mod_$m.c"* | *"${m#mpm_}.c"*) continue ;; esac
	[ -f "$MODDIR/mod_$m.so" ] || lmt_missing_all apache2 "no mod_$m"
	LOADS+="LoadModule ${m}_module $MODDIR/mod_$m.so"$'\n'
done

T=$HTTP_TMP
A=$T/apache
S=$T/store
USER_LINE=""
http_apache_run_user
if [ -n "$RUN_USER" ]; then
	USER_LINE="User $RUN_USER"$'\n'"Group $RUN_GROUP"
	chmod 711 "$T"
fi
mkdir -p "$A/logs" "$A/run" "$T/run"
[ -n "$RUN_GROUP" ] && { chgrp "$RUN_GROUP" "$T/run"; chmod 750 "$T/run"; }

http_demo_store writer-apache.sh
MASTER=writer-apache-master-key-0123456789
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"
key() { L key create "$@" | json_get - 'd["key"]'; }
READ_KEY=$(key)
CANCEL_KEY=$(key --actions tasks.cancel)
DELETE_KEY=$(key --actions tasks.delete)
E403=$(errbody invalid_api_key 'The provided API key is invalid.' auth)

# Both sockets are 0660: Apache's workers connect through their group.
group=()
[ -n "$RUN_GROUP" ] && group=(--socket-group "$RUN_GROUP")
fcgi_start "$T/run/fcgi.sock" "$S" 2 --master-key-file "$T/master.key" "${group[@]}" ||
	{ fail "lmtasks-fcgi starts"; summary; exit 1; }
"$LMTASKS_WRITER" --db "$S" --listen "unix:$T/run/writer.sock" --master-key-file "$T/master.key" \
	"${group[@]}" </dev/null >>"$T/writer.log" 2>&1 &
WPID=$!
lmt_on_exit "http_stop $WPID"
for ((i = 0; i < 600; i++)); do http_sock_ready "$T/run/writer.sock" && break; sleep 0.05; done
http_sock_ready "$T/run/writer.sock" || { fail "lmtasks-writer listens" "$(cat "$T/writer.log")"; summary; exit 1; }

# Two sites of the shipped configuration: without the writer, and with it.
PLAIN_PORT=$(http_random_port)
WRITER_PORT=$(http_random_port)
[ "$PLAIN_PORT" != "$WRITER_PORT" ] || WRITER_PORT=$(http_random_port)
sed -e "s|unix:/run/lmtasks/writer.sock|unix:$T/run/writer.sock|" \
	-e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/run/fcgi.sock|" \
	"$top_srcdir/apache/lmtasks-writer.conf" >"$A/writer.conf"
site() {	# PORT NAME [INCLUDE]
	sed -e "s|<VirtualHost \*:80>|<VirtualHost 127.0.0.1:$1>${3:+\n\tInclude \"$3\"}|" \
		-e "s|ServerName tasks.example.com|ServerName $2.test|" \
		-e "s|\${APACHE_LOG_DIR}/lmtasks-|$A/logs/$2-|" \
		-e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/run/fcgi.sock|" \
		"$top_srcdir/apache/lmtasks-proxy-fcgi.conf"
}
cat >"$A/httpd.conf" <<EOF
ServerRoot "$A"
ServerName 127.0.0.1
PidFile "$A/run/httpd.pid"
DefaultRuntimeDir "$A/run"
ErrorLog "$A/logs/error.log"
LogLevel info
$LOADS
$USER_LINE
LogFormat "%h %l %u %t \"%r\" %>s %O" combined
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
<Directory />
	AllowOverride None
	Require all denied
</Directory>
Listen 127.0.0.1:$PLAIN_PORT
Listen 127.0.0.1:$WRITER_PORT
$(site "$PLAIN_PORT" plain)
$(site "$WRITER_PORT" writer "$A/writer.conf")
EOF
if ! "$APACHE" -t -f "$A/httpd.conf" >"$A/configtest.log" 2>&1; then
	fail "apache2 -t accepts the sites with lmtasks-writer.conf" "$(cat "$A/configtest.log")"
	summary
	exit 1
fi
ok "apache2 -t accepts the shipped site with lmtasks-writer.conf included"
setsid "$APACHE" -f "$A/httpd.conf" -DFOREGROUND </dev/null >>"$A/stdout.log" 2>&1 &
APID=$!
lmt_on_exit "http_stop $APID"
for ((i = 0; i < 600; i++)); do
	! http_port_free "$PLAIN_PORT" && ! http_port_free "$WRITER_PORT" && break
	http_alive "$APID" || break
	sleep 0.05
done
http_alive "$APID" || { fail "Apache starts" "$(tail -n 20 "$A/logs/error.log" "$A/stdout.log")"; summary; exit 1; }
auth() { printf 'Authorization: Bearer %s' "$1"; }

section "Apache without the writer: the responder's 405"
HTTP_BASE=http://127.0.0.1:$PLAIN_PORT
http POST "/tasks/cancel?uids=4" -H "$(auth "$MASTER")"
assert_eq "POST /tasks/cancel: 405" 405 "$HTTP_STATUS"
assert_eq "Allow: GET, HEAD" "GET, HEAD" "$(http_header Allow)"
assert_match "a JSON body" '"code":"method_not_allowed"' "$HTTP_BODY"
http DELETE "/tasks?uids=0" -H "$(auth "$MASTER")"
assert_eq "DELETE /tasks: 405" 405 "$HTTP_STATUS"
http GET "/tasks/cancel" -H "$(auth "$MASTER")"
PGET_STATUS=$HTTP_STATUS PGET_BODY=$HTTP_BODY
http GET "/tasks?limit=2" -H "$(auth "$MASTER")"
PLIST=$HTTP_BODY

section "Apache with apache/lmtasks-writer.conf"
HTTP_BASE=http://127.0.0.1:$WRITER_PORT
http POST "/tasks/cancel?uids=4" -H "$(auth "$READ_KEY")"
assert_eq "a key without tasks.cancel: 403" 403 "$HTTP_STATUS"
assert_eq "Meilisearch's error body" "$E403" "$HTTP_BODY"
http POST "/tasks/cancel" -H "$(auth "$CANCEL_KEY")"
assert_eq "no filter: 400 missing_task_filters" "400 missing_task_filters" \
	"$HTTP_STATUS $(json_get "$HTTP_BODY_FILE" 'd["code"]')"
assert_eq "task 4 still enqueued" enqueued "$(L get 4 | json_get - 'd["status"]')"
http POST "/tasks/cancel?uids=4" -H "$(auth "$CANCEL_KEY")"
assert_eq "POST /tasks/cancel?uids=4 with tasks.cancel: 200" 200 "$HTTP_STATUS"
json_check "the summarized taskCancelation" "$HTTP_BODY_FILE" \
	'd["taskUid"] == 5 and d["type"] == "taskCancelation" and d["indexUid"] is None'
json_check "task 4 canceled by it" "$(L get 4)" 'd["status"] == "canceled" and d["canceledBy"] == 5'
http GET "/tasks/cancel" -H "$(auth "$MASTER")"
assert_eq "GET /tasks/cancel: the responder's answer, as without the writer" \
	"$PGET_STATUS $PGET_BODY" "$HTTP_STATUS $HTTP_BODY"
http GET "/tasks?limit=2&from=3" -H "$(auth "$MASTER")"
assert_eq "GET /tasks: the responder's list (as lmtasks list)" \
	"$(L list --limit 2 --from 3 | head -c -1)" "$HTTP_BODY"
http POST "/tasks" -H "$(auth "$MASTER")"
assert_eq "POST /tasks: the responder's 405" "405 GET, HEAD" "$HTTP_STATUS $(http_header Allow)"
http DELETE "/tasks?statuses=failed" -H "$(auth "$CANCEL_KEY")"
assert_eq "DELETE /tasks with tasks.cancel only: 403" 403 "$HTTP_STATUS"
http DELETE "/tasks?statuses=failed" -H "$(auth "$DELETE_KEY")"
assert_eq "DELETE /tasks?statuses=failed with tasks.delete: 200" 200 "$HTTP_STATUS"
json_check "the summarized taskDeletion" "$HTTP_BODY_FILE" 'd["type"] == "taskDeletion" and d["taskUid"] == 6'
assert_eq "the failed task 1 is gone" 1 "$(L get 1 >/dev/null 2>&1; echo $?)"
http DELETE "/tasks/0" -H "$(auth "$MASTER")"
assert_eq "DELETE /tasks/0: the responder's 405" 405 "$HTTP_STATUS"
http POST "/tasks/compact" -H "$(auth "$CANCEL_KEY")"
assert_eq "POST /tasks/compact with tasks.cancel only: 403" 403 "$HTTP_STATUS"
http POST "/tasks/compact" -H "$(auth "$MASTER")"
assert_eq "POST /tasks/compact: the writer compacts (lmtasks compact), 200" 200 "$HTTP_STATUS"
json_check "Meilisearch's summary, the file's size after" "$HTTP_BODY_FILE" \
	"d['status'] == 'succeeded' and d['postBytes'] == $(stat -c %s "$S/data.mdb")"
http GET "/tasks/compact" -H "$(auth "$MASTER")"
assert_eq "GET /tasks/compact: the responder's 400" 400 "$HTTP_STATUS"

http_stop "$APID"
bad=$(grep -hE '\[(proxy|proxy_fcgi):error\]|AH01079|AH01075' "$A"/logs/*.log | head -n 3)
assert_eq "Apache logged no proxy error" "" "$bad"
check "the store passes lmtasks check" L check
summary
