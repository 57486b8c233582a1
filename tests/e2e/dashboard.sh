#!/usr/bin/env bash
# The dashboard (ui/) end to end: a real nginx from nginx/lmtasks.conf as scripts/serve.sh
# writes it (socket, port and the page's directory moved), serving the page, Chart.js from
# Debian's libjs-chart.js and the API of a responder with a master key; then Debian's
# headless Chromium (tests/lib/dashboard.py, through Selenium and chromedriver) checks what
# a person sees: the key messages, the counts against `lmtasks stats`, a task the CLI
# enqueues and finishes changing on screen without a reload, the filters, the record, the
# errors by code, the batches, a phone-sized window, and a browser log without exceptions.
# Also: nginx/lmtasks-ui.conf beside lmtasks-location.conf and lmtasks-stream.conf, and
# what the page asked of the server (pages only, never the key in a URL).
# Screenshots: $top_builddir/tests/e2e/dashboard-*.png.  One line per check; ends with
# "N passed, M failed".
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/dashboard.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries dashboard.sh
http_need_nginx
CHROMIUM=${LMT_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${LMT_CHROMEDRIVER:-/usr/bin/chromedriver}
CHARTJS=/usr/share/javascript/chart.js
[ -x "$CHROMIUM" ] || lmt_missing_all chromium "no $CHROMIUM (apt-get install chromium)"
[ -x "$CHROMEDRIVER" ] || lmt_missing_all chromium-driver "no $CHROMEDRIVER (apt-get install chromium-driver)"
# The browser's driver runs under a Python that has Selenium: the suites' own, else
# Debian's, where python3-selenium puts it (a version manager's Python is first on PATH
# on some machines, and has none).
SELENIUM_PYTHON=
for p in "$LMT_PYTHON" /usr/bin/python3; do
	"$p" -c 'import selenium' 2>/dev/null && { SELENIUM_PYTHON=$p; break; }
done
[ -n "$SELENIUM_PYTHON" ] ||
	lmt_missing_all python3-selenium "no Selenium for $LMT_PYTHON or /usr/bin/python3 (apt-get install python3-selenium)"
[ -f "$CHARTJS/chart.esm.js" ] || lmt_missing_all libjs-chart.js "no $CHARTJS (apt-get install libjs-chart.js)"

T=$HTTP_TMP
S=$T/store
SHOTS=${top_builddir:-$T}/tests/e2e
mkdir -p "$SHOTS"
rm -f "$SHOTS"/dashboard-*.png
NG=$top_srcdir/nginx
START=$(now)

# The store, at compat v1 (batches): every status, two indexes, two error codes.
#   0 movies indexCreation      succeeded        batch 0
#   1, 2 books documentAddition failed (missing_document_id)  batch 1
#   3 books documentAddition    succeeded        batch 1
#   4 movies documentAddition   failed (invalid_document_fields)  batch 2
#   5 movies settingsUpdate     canceled by 6 (taskCancelation, batch 3)
#   7 movies documentAddition   processing       batch 4
#   8 books, 9 movies           enqueued
{
	L init --compat v1 &&
	L enqueue movies indexCreation --details '{"primaryKey":"id"}' &&
	L claim --index movies && L succeed 0 &&
	for i in 1 2 3; do L enqueue books documentAddition --details '{"receivedDocuments":2}' || exit; done &&
	L claim --index books --batch 3 &&
	L fail 1 --code missing_document_id --message 'Document doesn'\''t have a `isbn` attribute.' \
		--type invalid_request &&
	L fail 2 --code missing_document_id --message 'Document doesn'\''t have a `isbn` attribute.' \
		--type invalid_request &&
	L succeed 3 &&
	L enqueue movies documentAddition && L claim --index movies &&
	L fail 4 --code invalid_document_fields --message 'Unknown field `rating`.' --type invalid_request &&
	L enqueue movies settingsUpdate --details '{"rankingRules":["typo"]}' && L cancel 5 &&
	L enqueue movies documentAddition --details '{"receivedDocuments":1200}' && L claim --index movies &&
	L enqueue books documentAddition && L enqueue movies documentDeletion
} >"$T/setup.log" 2>&1 || { echo "dashboard.sh: cannot build the store:" >&2; cat "$T/setup.log" >&2; exit 99; }

MK=$T/master.key
printf '%s\n' "dashboard-suite-master-key-0123456789abcdef" >"$MK"
chmod 600 "$MK"
# A read key (tasks.get), as an operator would hand out for the dashboard.
KEY=$(L key create --description dashboard 2>/dev/null | json_get - 'd["key"]')
[ -n "$KEY" ] || { echo "dashboard.sh: cannot create a key" >&2; exit 99; }

# As root, Apache's workers run as RUN_USER: they must reach the socket and the page.
http_apache_run_user
grp=()
[ -n "$RUN_GROUP" ] && grp=(--socket-group "$RUN_GROUP")
chmod 711 "$T"
fcgi_start "$T/fcgi.sock" "$S" 2 --master-key-file "$MK" "${grp[@]}" ||
	{ fail "lmtasks-fcgi starts"; summary; exit 1; }
# The browser's helper stops it and starts it again (and stops that one by its PID).
KEYED_PID=$FCGI_PID
KEYED_ARGV="$LMTASKS_FCGI --listen unix:$T/fcgi.sock --threads 2 --db $S --master-key-file $MK ${grp[*]}"
# The quick start's case: a store (compat v0.25) and a responder with no key.
S=$T/demo http_demo_store dashboard.sh
fcgi_start "$T/demo.sock" "$T/demo" 1 || { fail "lmtasks-fcgi starts on the demo store"; summary; exit 1; }

section "nginx/lmtasks.conf as scripts/serve.sh writes it, on the demo store"
# serve.sh's own substitutions (the socket, the port, the page's directory), and its copy
# of ui/ in a directory of its own.
mkdir "$T/run" && cp -R "$top_srcdir/ui" "$T/run/ui" && chmod -R u+w,a+rX "$T/run/ui"
conf=$(sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/demo.sock|" -e 's|127\.0\.0\.1:7700|127.0.0.1:@PORT@|' \
	-e "s|/usr/share/lmtasks/ui/|$T/run/ui/|" "$NG/lmtasks.conf")
http_nginx_start serve "$conf" - || { fail "nginx starts from nginx/lmtasks.conf"; summary; exit 1; }
OPEN_BASE=$HTTP_BASE
http GET /ui
assert_eq "GET /ui: a redirect to /ui/" "301 $HTTP_BASE/ui/" "$HTTP_STATUS $(http_header Location)"
http GET /ui/
assert_eq "GET /ui/: the page, as HTML" "200 text/html" "$HTTP_STATUS $(http_header Content-Type)"
assert_contains "... with a Content-Security-Policy that allows only this server" \
	"default-src 'none'; script-src 'self'" "$(http_header Content-Security-Policy)"
http GET /ui/app.js
assert_eq "GET /ui/app.js: a JavaScript module's type (a browser runs no other)" "200 text/javascript" \
	"$HTTP_STATUS $(http_header Content-Type)"
http GET /ui/vendor/chart.js/chart.esm.js
assert_eq "GET /ui/vendor/chart.js/chart.esm.js: Debian's Chart.js" "200 text/javascript" \
	"$HTTP_STATUS $(http_header Content-Type)"
cmp -s "$HTTP_BODY_FILE" "$CHARTJS/chart.esm.js" && ok "... byte for byte $CHARTJS/chart.esm.js" ||
	fail "... byte for byte $CHARTJS/chart.esm.js"
http GET /tasks/0
assert_eq "GET /tasks/0 still goes to the responder" 200 "$HTTP_STATUS"
# The three /ui locations of lmtasks.conf are lmtasks-ui.conf's, so the two cannot drift.
ui_locs() { sed -n '/^[[:space:]]*location[^{]*\/ui/,/^[[:space:]]*}/p' "$1" | sed 's/^[[:space:]]*//'; }
assert_eq "nginx/lmtasks.conf holds lmtasks-ui.conf's locations, unchanged" \
	"$(ui_locs "$NG/lmtasks-ui.conf")" "$(ui_locs "$NG/lmtasks.conf")"

# Without Chart.js (its directory missing): the page must work and say so.
loc=$(cat "$NG/lmtasks-location.conf" "$NG/lmtasks-ui.conf" |
	sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/demo.sock|" -e "s|/usr/share/lmtasks/ui/|$top_srcdir/ui/|" \
		-e "s|/usr/share/javascript/chart.js/|$T/no-chart.js/|")
http_nginx_start nochart "" "$loc" || { fail "nginx starts without Chart.js"; summary; exit 1; }
NOCHART_BASE=$HTTP_BASE

section "nginx/lmtasks-ui.conf beside lmtasks-location.conf and lmtasks-stream.conf, with a key"
loc=$(cat "$NG/lmtasks-location.conf" "$NG/lmtasks-stream.conf" "$NG/lmtasks-ui.conf" |
	sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" -e "s|/usr/share/lmtasks/ui/|$top_srcdir/ui/|")
# What the stream's requests carry: Last-Event-ID when the page resumes one.
http_nginx_start snippets "log_format events '\$request \$status [\$http_last_event_id]';
	access_log $T/events.log events;" "$loc" || { fail "nginx starts with the three snippets"; summary; exit 1; }
http GET /ui/
assert_eq "GET /ui/: the page" "200 text/html" "$HTTP_STATUS $(http_header Content-Type)"
http GET /ui/vendor/chart.js/chunks/helpers.segment.js
assert_eq "GET /ui/vendor/chart.js/chunks/helpers.segment.js (what chart.esm.js imports)" \
	"200 text/javascript" "$HTTP_STATUS $(http_header Content-Type)"
http GET /tasks
assert_eq "GET /tasks without a key: 401 from the responder" 401 "$HTTP_STATUS"

section "apache/lmtasks-conf.conf (a2enconf) and lmtasks-proxy-fcgi.conf, with a key"
# A real Apache: the server's configuration includes lmtasks-conf.conf (the dashboard at
# /lmtasks/ui/, as the Debian package's conf-available/lmtasks.conf puts it), and a site
# of its own is lmtasks-proxy-fcgi.conf (the dashboard at /ui/).
APACHE=$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)
MODS=/usr/lib/apache2/modules
APACHE_BASE=
apache_conf() {
	local m loads="" user=""
	for m in mpm_event authz_core mime alias dir headers setenvif proxy proxy_fcgi unixd log_config \
	    cgid rewrite env; do
		"$APACHE" -l | grep -q "mod_$m\.c" && continue
		loads+="LoadModule ${m}_module $MODS/mod_$m.so"$'\n'
	done
	[ -n "$RUN_USER" ] && user="User $RUN_USER"$'\n'"Group $RUN_GROUP"
	local moved=(-e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" -e "s|/usr/share/lmtasks/ui|$T/run/ui|g")
	cat <<EOF
ServerRoot "$A"
ServerName 127.0.0.1
PidFile "$A/run/httpd.pid"
DefaultRuntimeDir "$A/run"
ErrorLog "$A/logs/error.log"
LogLevel info
$loads
$user
TypesConfig /etc/mime.types
LogFormat "%h %l %u %t \"%r\" %>s %O" common
CustomLog "$A/logs/access.log" common
ScriptSock "$A/run/cgid.sock"
<Directory />
	Options FollowSymLinks
	AllowOverride None
	Require all denied
</Directory>
# Shared hosting: the API as CGI in $T/www/api, with apache/htaccess and the page in ui/.
DocumentRoot "$T/www"
<Directory "$T/www">
	AllowOverride All
	Require all granted
</Directory>
Listen 127.0.0.1:$1
Listen 127.0.0.1:$2
$(sed "${moved[@]}" "$top_srcdir/apache/lmtasks-conf.conf")
$(sed "${moved[@]}" -e "s|<VirtualHost \*:80>|<VirtualHost 127.0.0.1:$2>|" "$top_srcdir/apache/lmtasks-proxy-fcgi.conf")
EOF
}
# shared_dir: $T/www/api as apache/README says to make it on a shared host: the program
# as lmtasks.cgi, apache/htaccess as .htaccess (its store and key moved), the page as ui/
# with Chart.js copied into ui/vendor/chart.js/.
shared_dir() {
	local d=$T/www/api
	mkdir -p "$d" && cp "$LMTASKS_FCGI" "$d/lmtasks.cgi" && chmod 755 "$d/lmtasks.cgi" &&
	sed -e "s|/home/me/lmtasks/store|$T/demo|" -e '/LMTASKS_MASTER_KEY_FILE/d' \
		"$top_srcdir/apache/htaccess" >"$d/.htaccess" &&
	cp -R "$top_srcdir/ui" "$d/ui" && chmod -R u+w "$d/ui" && mkdir -p "$d/ui/vendor" &&
	cp -R "$CHARTJS" "$d/ui/vendor/chart.js" && chmod -R u+w,a+rX "$T/www"
}
# apache_up: Apache on two free ports ($APACHE_BASE: the server's, $SITE_BASE: the site's).
apache_up() {
	local p1 p2 pid i
	A=$T/apache
	mkdir -p "$A/logs" "$A/run"
	shared_dir || return 1
	export APACHE_LOG_DIR=$A/logs
	p1=$(http_random_port) && p2=$(http_random_port) && [ "$p1" != "$p2" ] || return 1
	apache_conf "$p1" "$p2" >"$A/httpd.conf"
	"$APACHE" -t -f "$A/httpd.conf" >"$A/configtest.log" 2>&1 ||
		{ fail "apache2 -t accepts the shipped configurations" "$(cat "$A/configtest.log")"; return 1; }
	setsid "$APACHE" -f "$A/httpd.conf" -DFOREGROUND </dev/null >"$A/stdout.log" 2>&1 &
	pid=$!
	lmt_on_exit "http_stop $pid"
	# Up to 30 s (a hang guard: it ends as soon as both ports listen).
	for ((i = 0; i < 600; i++)); do
		http_alive "$pid" || break
		if ! http_port_free "$p1" && ! http_port_free "$p2"; then
			APACHE_BASE=http://127.0.0.1:$p1 SITE_BASE=http://127.0.0.1:$p2
			return 0
		fi
		sleep 0.05
	done
	fail "Apache starts" "$(tail -n 5 "$A/logs/error.log" "$A/stdout.log" 2>/dev/null)"
	return 1
}
if [ ! -x "$APACHE" ] || [ ! -f "$MODS/mod_proxy_fcgi.so" ]; then
	lmt_missing "the dashboard through Apache" apache2 "no Apache httpd with mod_proxy_fcgi"
elif apache_up; then
	pass_base=$HTTP_BASE
	for where in "$APACHE_BASE/lmtasks" "$SITE_BASE"; do
		HTTP_BASE=$where
		name="Apache, lmtasks-conf.conf: /lmtasks"
		[ "$where" = "$SITE_BASE" ] && name="Apache, lmtasks-proxy-fcgi.conf: "
		http GET /ui
		assert_eq "${name}/ui: a redirect to …/ui/" "301 $where/ui/" \
			"$HTTP_STATUS $(http_header Location)"
		http GET /ui/
		assert_eq "${name}/ui/: the page" "200 text/html" "$HTTP_STATUS $(http_header Content-Type | cut -d';' -f1)"
		assert_contains "${name}/ui/: with the Content-Security-Policy" "default-src 'none'" \
			"$(http_header Content-Security-Policy)"
		http GET /ui/app.js
		assert_eq "${name}/ui/app.js: JavaScript" "200 text/javascript" \
			"$HTTP_STATUS $(http_header Content-Type | cut -d';' -f1)"
		http GET /ui/vendor/chart.js/chart.esm.js
		assert_eq "${name}/ui/vendor/chart.js/chart.esm.js: Debian's Chart.js" \
			"200 text/javascript" "$HTTP_STATUS $(http_header Content-Type | cut -d';' -f1)"
		http GET "/tasks?limit=0" -H "Authorization: Bearer $KEY"
		json_check "${name}/tasks with the key: the responder's answer" "$HTTP_BODY" \
			'd["total"] == '"$(L stats | json_get - 'd["tasks"]')"
	done
	HTTP_BASE=$APACHE_BASE/api
	http GET /ui/
	assert_eq "Apache, apache/htaccess (shared hosting): /api/ui/ is the page, from files" "200 text/html" \
		"$HTTP_STATUS $(http_header Content-Type | cut -d';' -f1)"
	http GET /ui/vendor/chart.js/chart.esm.js
	assert_eq "... /api/ui/vendor/chart.js/chart.esm.js: Chart.js, copied there" "200 text/javascript" \
		"$HTTP_STATUS $(http_header Content-Type | cut -d';' -f1)"
	http GET /tasks/0
	assert_eq "... and /api/tasks/0 still goes to lmtasks.cgi (a JSON answer)" application/json \
		"$(http_header Content-Type)"
	HTTP_BASE=$pass_base
fi

section "the page in Chromium (tests/lib/dashboard.py)"
t0=$(now)
out=$T/browser.out
timeout 300 "$SELENIUM_PYTHON" "$top_srcdir/tests/lib/dashboard.py" --base "$HTTP_BASE" \
	--open-base "$OPEN_BASE" --open-db "$T/demo" ${APACHE_BASE:+--apache-base "$APACHE_BASE/lmtasks"} \
	--fcgi-pid "$KEYED_PID" --fcgi-argv "$KEYED_ARGV" --nochart-base "$NOCHART_BASE" \
	--lmtasks "$LMTASKS" --db "$S" --key "$KEY" --shots "$SHOTS" --profile "$T/chromium" \
	--driver-log "$T/chromedriver.log" --chromium "$CHROMIUM" --chromedriver "$CHROMEDRIVER" \
	>"$out" 2>"$out.err"
rc=$?
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) fail "${line#not ok - }" ;;	# its diagnostics follow as "# " lines
	*) echo "$line" ;;
	esac
done <"$out"
assert_eq "the browser checks ran to their end ($(elapsed "$t0") s)" 0 "$rc"
[ "$rc" -eq 0 ] || lmt__diag "$(tail -n 15 "$out.err")"
for shot in overview filtered; do
	[ -s "$SHOTS/dashboard-$shot.png" ] && ok "screenshot $SHOTS/dashboard-$shot.png" ||
		fail "screenshot $SHOTS/dashboard-$shot.png"
done

section "what the page asked of nginx"
log=$HTTP_NGINX_DIR/access.log
grep -qF -- "$KEY" "$log" && fail "the key appears in no URL" "$(grep -F -- "$KEY" "$log" | head -n 3)" ||
	ok "the key appears in no URL ($(wc -l <"$log") requests logged)"
# Every list request names a limit of at most 500 (a page), and the stream was used.
pages=$(grep -oE '"GET /(tasks|batches)\?[^ ]*' "$log" | sort -u)
unbounded=$(printf '%s\n' "$pages" | grep -vE '[?&]limit=([0-9]|[1-9][0-9]|[1-4][0-9][0-9]|500)(&|$)')
assert_eq "every list it asked for is a page (limit at most 500), never the whole store" "" "$unbounded"
grep -q '"GET /tasks?' "$log" && ok "... (it did ask for lists: $(printf '%s\n' "$pages" | wc -l) distinct)" ||
	fail "... it asked for lists"
grep -q '"GET /tasks/stream HTTP' "$log" && ok "it followed GET /tasks/stream" ||
	fail "it followed GET /tasks/stream" "$(grep stream "$log" | head -n 3)"
# The list of batches reads every batch: asked for once per start of the page -- without
# a key (401), with the wrong one (403), with the right one, and when the stream came back
# after the restart -- and never because a task changed.
assert_eq "the list of batches is asked for when the page (re)starts only: 4 times" 4 \
	"$(grep -c '"GET /batches?' "$log")"
# The stream the responder's restart cut (502s while it was away, then 200), resumed
# after the last event seen.
assert_match "the stream it reopened after the restart named the last event it had (Last-Event-ID)" \
	'^GET /tasks/stream HTTP/1.1 200 \[[0-9]+\]$' "$(cat "$T/events.log")"

check "the store passes lmtasks check" L check
echo "# $(elapsed "$START") s"
summary
