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
"$LMT_PYTHON" -c 'import selenium' 2>/dev/null ||
	lmt_missing_all python3-selenium "no Selenium for $LMT_PYTHON (apt-get install python3-selenium)"
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

fcgi_start "$T/fcgi.sock" "$S" 2 --master-key-file "$MK" || { fail "lmtasks-fcgi starts"; summary; exit 1; }
# The quick start's case: a store (compat v0.25) and a responder with no key.
S=$T/demo http_demo_store dashboard.sh
fcgi_start "$T/demo.sock" "$T/demo" 1 || { fail "lmtasks-fcgi starts on the demo store"; summary; exit 1; }

section "nginx/lmtasks.conf as scripts/serve.sh writes it, on the demo store"
# serve.sh's own substitutions (the socket, the port, the page's directory), and its copy
# of ui/ in a directory of its own.
mkdir "$T/run" && cp -R "$top_srcdir/ui" "$T/run/ui" && chmod -R a+rX "$T/run/ui"
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

section "nginx/lmtasks-ui.conf beside lmtasks-location.conf and lmtasks-stream.conf, with a key"
loc=$(cat "$NG/lmtasks-location.conf" "$NG/lmtasks-stream.conf" "$NG/lmtasks-ui.conf" |
	sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" -e "s|/usr/share/lmtasks/ui/|$top_srcdir/ui/|")
http_nginx_start snippets "" "$loc" || { fail "nginx starts with the three snippets"; summary; exit 1; }
http GET /ui/
assert_eq "GET /ui/: the page" "200 text/html" "$HTTP_STATUS $(http_header Content-Type)"
http GET /ui/vendor/chart.js/chunks/helpers.segment.js
assert_eq "GET /ui/vendor/chart.js/chunks/helpers.segment.js (what chart.esm.js imports)" \
	"200 text/javascript" "$HTTP_STATUS $(http_header Content-Type)"
http GET /tasks
assert_eq "GET /tasks without a key: 401 from the responder" 401 "$HTTP_STATUS"

section "the page in Chromium (tests/lib/dashboard.py)"
t0=$(now)
out=$T/browser.out
timeout 300 "$LMT_PYTHON" "$top_srcdir/tests/lib/dashboard.py" --base "$HTTP_BASE" \
	--open-base "$OPEN_BASE" --open-db "$T/demo" \
	--lmtasks "$LMTASKS" --db "$S" --key "$KEY" --shots "$SHOTS" --profile "$T/chromium" \
	--driver-log "$T/chromedriver.log" --chromium "$CHROMIUM" --chromedriver "$CHROMEDRIVER" \
	>"$out" 2>"$out.err"
rc=$?
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) line=${line#not ok - }; fail "${line%%: *}" "${line#*: }" ;;
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

check "the store passes lmtasks check" L check
echo "# $(elapsed "$START") s"
summary
