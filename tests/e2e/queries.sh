#!/usr/bin/env bash
# The list filters, their errors, deletion, indexes and leases, end to end (SPEC §2, §3):
# lmtasks-fcgi answering as a CGI program and the lmtasks CLI on the same stores.
#
#   - every filter over HTTP and as `lmtasks list` flags, totals and pages checked against
#     a count done in Python over the whole store; HTTP and CLI envelopes byte for byte;
#   - every error code over HTTP, and the CLI's exit 2 with the same message;
#   - `lmtasks delete` (--before, --keep, UIDs, filters), `index list` / `index delete`;
#   - leases: claim --lease, reap, heartbeat, --requeue, --started-at.
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/queries.sh
#
# LMT_KEEP_TMP=1 keeps the stores and outputs for a post-mortem.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE
for _v in LMTASKS LMTASKS_FCGI; do
	_p=${!_v}
	[ -x "$_p" ] || { echo "queries.sh: no binary at $_p (set LMTASKS and LMTASKS_FCGI)" >&2; exit 99; }
	case $_p in /*) ;; *) _p=$(cd "$(dirname "$_p")" && pwd)/$(basename "$_p") ;; esac
	printf -v "$_v" '%s' "$_p"
done
unset _v _p
lmt_tmpdir
T=$LMT_TMP
START=$(now)
section() { echo "# --- $* (at $(elapsed "$START") s)"; }

# cgi URI [STORE]: one GET answered by lmtasks-fcgi as a CGI program.  Sets CGI_RC,
# CGI_CODE (the status number, or "exit N ..." when it failed) and CGI_BODY (also in $T/cgi.body: the bytes after the
# blank line that ends the headers).
cgi() {
	local uri=$1 db=${2:-$DB} qs="" first=
	case $uri in *\?*) qs=${uri#*\?} ;; esac
	lmt_guard 10 env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 \
		SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD=GET REQUEST_URI="$uri" QUERY_STRING="$qs" \
		"$LMTASKS_FCGI" --db "$db" </dev/null >"$T/cgi.out" 2>"$T/cgi.err"
	CGI_RC=$?
	# The first line's status, read by the shell (no head and sed for each request).
	CGI_CODE=
	IFS= read -r first <"$T/cgi.out"
	[[ $first =~ ^Status:\ ([0-9][0-9][0-9]) ]] && CGI_CODE=${BASH_REMATCH[1]}
	# A CGI program that fails has not answered, whatever it printed.
	[ "$CGI_RC" -eq 0 ] || CGI_CODE="exit $CGI_RC (${CGI_CODE:-no status}; $(head -c 200 "$T/cgi.err"))"
	# The body: what follows the first empty (or "\r") line after the first, byte for byte
	# (sed '1,/^\r\{0,1\}$/d' did it, a process per request).
	# A NUL byte, which a shell variable cannot hold (read then finds its delimiter): sed
	# cuts that answer, byte for byte.
	local line body= nul=
	{
		IFS= read -r line && while IFS= read -r line && [ -n "${line%$'\r'}" ]; do :; done
		IFS= read -r -d '' body && nul=1
	} <"$T/cgi.out"
	if [ -n "$nul" ]; then
		sed '1,/^\r\{0,1\}$/d' "$T/cgi.out" >"$T/cgi.body"
	else
		printf '%s' "$body" >"$T/cgi.body"
	fi
	# As $(<FILE): without the newlines at the end.
	while [[ $body == *$'\n' ]]; do body=${body%$'\n'}; done
	CGI_BODY=$body
}

# errparts BODY: "CODE<TAB>TYPE<TAB>MESSAGE" when BODY is exactly an error body of SPEC §2
# (keys in order, the link made from the code), else nothing.
errparts() {
	local re='^\{"message":"(.*)","code":"([a-z_]*)","type":"([a-z_]*)","link":"https://docs\.meilisearch\.com/errors#([a-z_]*)"\}$'
	# (In the shell: no sed and awk for each of the answers.)
	[[ $1 != *$'\n'* && $1 =~ $re ]] && [ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[4]}" ] &&
		printf '%s\t%s\t%s\n' "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" "${BASH_REMATCH[1]}"
	return 0
}

# field NAME JSON: the first scalar "NAME": value in JSON (strings unquoted).
field() {
	local nl=$'\n' v
	local re="\"$1\":(\"[^\"$nl]*\"|-?[0-9]+|null|true|false)"
	# (In the shell: no grep, head and sed for each of the values.)
	[[ $2 =~ $re ]] || return 0
	v=${BASH_REMATCH[1]}
	v=${v#\"}
	printf '%s\n' "${v%\"}"
}

# qs_of K=V&...: the query string for decoded parameters ('+' escaped: it means a space).
qs_of() { printf '%s' "${1//+/%2B}"; }

# scan_once KIND CMD...: runs CMD.  Under AddressSanitizer the leak scan at a process's
# exit is two thirds of its CPU; for the writes that build the stores and the lookups that
# repeat one command, the first CMD of each KIND is scanned (asked for by name: the CLI the
# suites run under ASan, tests/lmtasks-noscan, skips it by default) and the rest run under
# ASan and UBSan without the scan.
declare -A SCANNED=()
scan_once() {
	local kind=$1
	shift
	if [ -z "${ASAN_OPTIONS:-}" ]; then
		"$@"
	elif [ -z "${SCANNED[$kind]:-}" ]; then
		SCANNED[$kind]=1
		ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=1 "$@"
	else
		ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 "$@"
	fi
}

# flags_of K=V&...: the same parameters as `lmtasks list` flags, one per line.
flags_of() {
	local kv IFS='&'
	for kv in $1; do
		[ -n "$kv" ] && printf -- '--%s=%s\n' "${kv%%=*}" "${kv#*=}"
	done
}

###########################################################################################
section "a store of a few hundred tasks in every status"

DB=$T/q
L() { "$LMTASKS" --db "$DB" "$@"; }
# LW CMD ...: L for the store's ~400 writes, their leak scan once per command (scan_once).
LW() {
	local kind="L $1"
	[ "${2:-}" = --batch ] && kind+=" --batch"
	scan_once "$kind" L "$@"
}
IXS=(movies books songs user-data logs_2021)
TYS=(documentAddition settingsUpdate indexCreation myCustomType reindexAll)
RANDOM=4242
{
	L init
	# Six batches: six distinct enqueuedAt values, 50 tasks each.
	for b in 0 1 2 3 4 5; do
		for i in $(seq 50); do
			printf '{"indexUid":"%s","type":"%s","details":{"batch":%d}}\n' \
				"${IXS[RANDOM % 5]}" "${TYS[RANDOM % 5]}" "$b"
		done >"$T/batch$b.ndjson"
		LW enqueue --batch "$T/batch$b.ndjson"
	done
	pending=()
	for u in $(seq 0 299); do
		r=$((RANDOM % 100))
		if [ "$r" -lt 20 ]; then
			continue
		elif [ "$r" -lt 30 ]; then
			LW start "$u"
		elif [ "$r" -lt 70 ]; then
			LW start "$u" && LW succeed "$u" --details '{"indexedDocuments":1}'
		elif [ "$r" -lt 85 ]; then
			LW start "$u" && LW fail "$u" --code index_not_accessible --message "it broke"
		else
			[ $((RANDOM % 2)) -eq 0 ] && LW start "$u"
			pending+=("$u")
			if [ ${#pending[@]} -ge 9 ]; then
				LW cancel "${pending[@]}"
				pending=()
			fi
		fi
	done
	[ ${#pending[@]} -gt 0 ] && LW cancel "${pending[@]}"
	# A few more after the cancelations, enqueued later.
	for i in 1 2 3 4 5 6; do LW enqueue "${IXS[i % 5]}" documentAddition; done
	L list --limit 1000 >"$T/all.json"
} >"$T/setup.log" 2>&1 || { echo "queries.sh: cannot build the store:" >&2; tail -n 20 "$T/setup.log" >&2; exit 99; }

# Values picked from the store itself: times at and between tasks, cancelation uids.
"$LMT_PYTHON" - "$T/all.json" >"$T/vars.sh" <<'EOF' || { echo "queries.sh: cannot read all.json" >&2; exit 99; }
import json, sys, datetime as dt
d = json.load(open(sys.argv[1]))
ts = {t["uid"]: t for t in d["results"]}
assert d["total"] == len(d["results"]) and d["next"] is None
def us(s):
    x = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (x - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)
def fmt(u, off_min=0, digits=6):
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=u)
    t = t.astimezone(dt.timezone(dt.timedelta(minutes=off_min)))
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 3: s += ".%03d" % (t.microsecond // 1000)
    if digits == 6: s += ".%06d" % t.microsecond
    if off_min == 0: return s + "Z"
    sign = "+" if off_min > 0 else "-"
    return s + "%s%02d:%02d" % (sign, abs(off_min) // 60, abs(off_min) % 60)
started = sorted(us(t["startedAt"]) for t in ts.values() if t["startedAt"])
finished = sorted(us(t["finishedAt"]) for t in ts.values() if t["finishedAt"])
cancels = sorted(t["uid"] for t in ts.values() if t["type"] == "taskCancelation")
s_mid, f_mid = started[len(started) // 2], finished[len(finished) // 3]
today = dt.datetime.now(dt.timezone.utc).date()
out = {
    "E_MID": ts[150]["enqueuedAt"],
    "S_MID": fmt(s_mid),
    "S_MID_PLUS": fmt(s_mid, 330),
    "S_MID_MINUS": fmt(s_mid, -180),
    "F_MID": fmt(f_mid),
    "F_MID_MS": fmt(f_mid, 0, 3),
    "F_MID_S": fmt(f_mid, 0, 0),
    "C1": cancels[0], "C2": cancels[-1], "C3": cancels[len(cancels) // 2],
    "TODAY": today.isoformat(),
    "YESTERDAY": (today - dt.timedelta(days=1)).isoformat(),
    "TOMORROW": (today + dt.timedelta(days=1)).isoformat(),
    "NTASKS": d["total"],
}
for k, v in out.items():
    print("%s='%s'" % (k, v))
EOF
. "$T/vars.sh"
assert_match "the store has a few hundred tasks ($NTASKS)" '^3[0-9][0-9]$' "$NTASKS"

###########################################################################################
section "every filter: HTTP = CLI, totals and pages = a count in Python"

# Decoded parameters; '*' inside lists; RFC 3339 with offsets and date-only values.
COMBOS=(
	""
	"statuses=succeeded"
	"statuses=enqueued,processing"
	"statuses=canceled"
	"statuses=failed,*"
	"statuses=*"
	"types=documentAddition,myCustomType"
	"types=taskCancelation"
	"types=*,reindexAll"
	"types=neverUsed"
	"indexUids=movies"
	"indexUids=books,user-data"
	"indexUids=songs,*"
	"indexUids=nosuchIndex"
	"uids=0,5,10,150,299,999"
	"uids=*,3"
	"uids=7"
	"canceledBy=$C1"
	"canceledBy=$C1,$C2,$C3"
	"canceledBy=*"
	"canceledBy=0"
	"beforeEnqueuedAt=$E_MID"
	"afterEnqueuedAt=$E_MID"
	"afterEnqueuedAt=$E_MID&beforeEnqueuedAt=$TOMORROW"
	"afterEnqueuedAt=$TODAY"
	"afterEnqueuedAt=$YESTERDAY"
	"beforeEnqueuedAt=$TODAY"
	"beforeEnqueuedAt=$TOMORROW"
	"afterEnqueuedAt=*"
	"beforeStartedAt=$S_MID"
	"afterStartedAt=$S_MID"
	"afterStartedAt=$S_MID_PLUS"
	"beforeStartedAt=$S_MID_MINUS"
	"afterStartedAt=$YESTERDAY"
	"beforeStartedAt=*&statuses=enqueued"
	"beforeFinishedAt=$F_MID"
	"afterFinishedAt=$F_MID"
	"afterFinishedAt=$F_MID_MS"
	"beforeFinishedAt=$F_MID_S"
	"beforeFinishedAt=$TOMORROW"
	"afterFinishedAt=$YESTERDAY&statuses=processing"
	"statuses=succeeded,failed&indexUids=movies&types=documentAddition"
	"statuses=canceled&canceledBy=$C1,$C2&indexUids=books,songs"
	"afterEnqueuedAt=$E_MID&beforeFinishedAt=$F_MID&statuses=succeeded,canceled"
	"uids=1,2,3,4,5,6,7,8,9,10,11,12&statuses=succeeded"
	"types=settingsUpdate&afterStartedAt=$S_MID&beforeEnqueuedAt=$TOMORROW"
	"limit=7&reverse=true&from=100&statuses=succeeded,failed"
	"limit=3&from=200&indexUids=movies"
	"limit=0&statuses=enqueued"
	"limit=1000"
	"limit=5&reverse=true"
	"from=99999&limit=2"
	"reverse=false&limit=4&types=myCustomType"
	"indexUids=movies,movies"
	"types=documentAddition,documentAddition&afterEnqueuedAt=$YESTERDAY"
)
# The same through /indexes/{index}/tasks: the scope ANDs with the filters.
SCOPED=(
	"movies|"
	"movies|statuses=succeeded"
	"books|types=documentAddition,settingsUpdate&limit=5"
	"songs|afterStartedAt=$S_MID"
	"user-data|reverse=true&limit=3&from=10"
	"movies|indexUids=books"
	"movies|indexUids=movies,books"
	"logs_2021|indexUids=*&canceledBy=*"
)

mkdir -p "$T/c"
: >"$T/c/manifest"
n=0
for combo in "${COMBOS[@]}" "${SCOPED[@]/#/@}"; do
	scope=""
	if [ "${combo:0:1}" = @ ]; then
		scope=${combo:1}
		scope=${scope%%|*}
		combo=${combo#*|}
	fi
	mapfile -t flags < <(flags_of "$combo")
	cmp=1
	if [ -n "$scope" ]; then
		uri="/indexes/$scope/tasks"
		# The CLI has no scope: --indexUids SCOPE says the same when no indexUids is given
		# (with one, the envelope is only checked against the count).
		case $combo in *indexUids=*) clif=() cmp=0 ;; *) clif=("--indexUids=$scope") ;; esac
	else
		uri=/tasks
		clif=()
	fi
	[ -n "$combo" ] && uri="$uri?$(qs_of "$combo")"
	L list "${flags[@]}" "${clif[@]}" >"$T/c/$n.cli" 2>"$T/c/$n.clierr"
	echo $? >"$T/c/$n.clirc"
	cgi "$uri"
	cp "$T/cgi.body" "$T/c/$n.cgi"
	printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$CGI_CODE" "$scope" "$combo" "$cmp" >>"$T/c/manifest"
	n=$((n + 1))
done

cat >"$T/check_combos.py" <<'EOF'
# Each combination: what the whole store says it should give, against the CLI's and the
# HTTP answer.  Prints "ok<TAB>name" or "fail<TAB>name<TAB>why" lines.
import json, re, sys, datetime as dt
tdir = sys.argv[1]
tasks = json.load(open(tdir + "/all.json"))["results"]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
DAY = 86400 * 10**6
def us(s):
    return (dt.datetime.fromisoformat(s.replace("Z", "+00:00")) - EPOCH) // dt.timedelta(microseconds=1)
def date_value(v):
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return us(v + "T00:00:00Z"), True
    return us(v), False
TIMES = {"EnqueuedAt": "enqueuedAt", "StartedAt": "startedAt", "FinishedAt": "finishedAt"}
def matches(t, params):
    for k, v in params.items():
        if k in ("limit", "from", "reverse"):
            continue
        items = v.split(",")
        if "*" in items:
            continue
        if k == "uids" and t["uid"] not in {int(x) for x in items}: return False
        if k == "statuses" and t["status"] not in items: return False
        if k == "types" and t["type"] not in items: return False
        if k == "indexUids" and t["indexUid"] not in items: return False
        if k == "canceledBy" and t.get("canceledBy") not in {int(x) for x in items}: return False
        m = re.fullmatch(r"(before|after)(\w+At)", k)
        if m:
            tv = t[TIMES[m.group(2)]]
            if tv is None: return False
            tv = us(tv)
            val, date_only = date_value(v)
            if m.group(1) == "after" and not (tv >= val + DAY if date_only else tv > val): return False
            if m.group(1) == "before" and not tv < val: return False
    return True
out = []
for line in open(tdir + "/c/manifest"):
    n, code, scope, combo, cmp = line.rstrip("\n").split("\t")
    params = dict(kv.split("=", 1) for kv in combo.split("&") if kv)
    name = ("/indexes/%s/tasks" % scope if scope else "/tasks") + ("?" + combo if combo else "")
    if len(name) > 110: name = name[:107] + "..."
    cli = open("%s/c/%s.cli" % (tdir, n)).read()
    clirc = open("%s/c/%s.clirc" % (tdir, n)).read().strip()
    cgi = open("%s/c/%s.cgi" % (tdir, n)).read()
    clif = " --indexUids=" + scope if scope else ""
    if clirc != "0" or code != "200":
        out.append(("fail", name + ": answered", "CLI exit %s, HTTP status %s; %s" %
                    (clirc, code, open("%s/c/%s.clierr" % (tdir, n)).read()[:300] + cgi[:300])))
        continue
    if cmp != "1":
        pass
    elif cli.endswith("\n") and cli[:-1] == cgi:
        out.append(("ok", name + ": HTTP body = lmtasks list" + clif, ""))
    else:
        out.append(("fail", name + ": HTTP body = lmtasks list" + clif,
                    "cli: %s | http: %s" % (cli[:300], cgi[:300])))
    want = sorted((t for t in tasks if matches(t, params) and (not scope or t["indexUid"] == scope)),
                  key=lambda t: t["uid"], reverse=params.get("reverse") != "true")
    total = len(want)
    if "from" in params:
        f = int(params["from"])
        want = [t for t in want if (t["uid"] >= f if params.get("reverse") == "true" else t["uid"] <= f)]
    limit = int(params.get("limit", 20))
    page, rest = want[:limit], want[limit:]
    try:
        d = json.loads(cgi)
    except ValueError as e:
        out.append(("fail", name + ": total and page", "not JSON: %s" % cgi[:300]))
        continue
    why = []
    if list(d.keys()) != ["results", "total", "limit", "from", "next"]:
        why.append("keys %s" % list(d.keys()))
    if d.get("total") != total:
        why.append("total %s, expected %d" % (d.get("total"), total))
    if d.get("limit") != limit:
        why.append("limit %s, expected %d" % (d.get("limit"), limit))
    got = [t["uid"] for t in d.get("results", [])]
    exp = [t["uid"] for t in page]
    if got != exp:
        why.append("uids %s, expected %s" % (got[:30], exp[:30]))
    elif d["results"] != page:
        why.append("the tasks differ from lmtasks list --limit 1000's")
    if limit > 0:
        if d.get("from") != (exp[0] if exp else None):
            why.append("from %s, expected %s" % (d.get("from"), exp[0] if exp else None))
        if d.get("next") != (rest[0]["uid"] if rest else None):
            why.append("next %s, expected %s" % (d.get("next"), rest[0]["uid"] if rest else None))
    elif d.get("results") != []:
        why.append("limit 0 gave results")
    out.append(("fail" if why else "ok", name + ": total %d, page of %d" % (total, len(exp)), "; ".join(why)))
for o in out:
    print("\t".join(o))
EOF
while IFS=$'\t' read -r st name why; do
	if [ "$st" = ok ]; then ok "$name"; else fail "$name" "$why"; fi
done < <("$LMT_PYTHON" "$T/check_combos.py" "$T" 2>&1 || echo "fail	check_combos.py crashed	")

###########################################################################################
section "every error code: HTTP 400 and the CLI's exit 2 with the same message"

BIGLIST=$(seq -s, 0 300)
LONGIX=$(printf 'a%.0s' $(seq 401))
ERRORS=(
	"limit=abc|invalid_task_limit"
	"limit=1001|invalid_task_limit"
	"limit=-1|invalid_task_limit"
	"limit=|invalid_task_limit"
	"from=abc|invalid_task_from"
	"from=-1|invalid_task_from"
	"from=18446744073709551616|invalid_task_from"
	"uids=1,abc|invalid_task_uids"
	"uids=1.5|invalid_task_uids"
	"uids=$BIGLIST|invalid_task_uids"
	"statuses=done|invalid_task_statuses"
	"statuses=succeeded,,failed|invalid_task_statuses"
	"statuses=|invalid_task_statuses"
	"types=Bad-Type|invalid_task_types"
	"types=documentAddition,9lives|invalid_task_types"
	"indexUids=bad!index|invalid_index_uid"
	"indexUids=$LONGIX|invalid_index_uid"
	"canceledBy=x|invalid_task_canceled_by"
	"canceledBy=1,|invalid_task_canceled_by"
	"reverse=yes|invalid_task_reverse"
	"reverse=1|invalid_task_reverse"
	"beforeEnqueuedAt=yesterday|invalid_task_before_enqueued_at"
	"afterEnqueuedAt=2021-13-01|invalid_task_after_enqueued_at"
	"beforeStartedAt=2021-08-10T25:00:00Z|invalid_task_before_started_at"
	"afterStartedAt=2021-02-30|invalid_task_after_started_at"
	"beforeFinishedAt=2021-08-10T10:00:00|invalid_task_before_finished_at"
	"afterFinishedAt=1628605757|invalid_task_after_finished_at"
	"afterFinishedAt=|invalid_task_after_finished_at"
	"statuses=succeeded&limit=1&limit=2|bad_request"
	"types=*&statuses=failed&types=clearAll|bad_request"
)
for e in "${ERRORS[@]}"; do
	combo=${e%|*} code=${e##*|}
	name=${combo:0:60}
	[ ${#combo} -gt 60 ] && name="$name... (${#combo} bytes)"
	cgi "/tasks?$(qs_of "$combo")"
	parts=$(errparts "$CGI_BODY")
	IFS=$'\t' read -r gcode gtype msg <<<"$parts"
	if [ "$CGI_CODE" = 400 ] && [ "$gcode" = "$code" ] && [ "$gtype" = invalid_request ]; then
		ok "HTTP ?$name: 400 $code"
	else
		fail "HTTP ?$name: 400 $code" "status $CGI_CODE" "body: ${CGI_BODY:0:400}"
	fi
	# The message names the parameter that is wrong.
	pname=${combo%%=*}
	[ "$code" = bad_request ] && pname=limit && case $combo in types=\**) pname=types ;; esac
	assert_contains "HTTP ?$name: the message names \`$pname\`" "\`$pname\`" "$msg"
	mapfile -t flags < <(flags_of "$combo")
	run "$LMTASKS" --db "$DB" list "${flags[@]}"
	if [ "$LMT_RC" -eq 2 ] && [ -z "$LMT_STDOUT" ] && [ -n "$msg" ] &&
		[ "$LMT_STDERR" == "lmtasks: list: $msg" ]; then
		ok "CLI list ${name//&/ --}: exit 2, the same message"
	else
		fail "CLI list ${name//&/ --}: exit 2, the same message" "exit $LMT_RC" \
			"stderr: ${LMT_STDERR:0:400}" "http message: ${msg:0:400}"
	fi
done

# An unknown parameter: bad_request naming it and every accepted one.
cgi "/tasks?statuses=failed&nope=1"
IFS=$'\t' read -r gcode gtype msg <<<"$(errparts "$CGI_BODY")"
assert_eq "HTTP ?nope=1: 400 bad_request" "400 bad_request" "$CGI_CODE $gcode"
want='Unknown parameter `nope`: expected one of `limit`, `from`, `reverse`, `uids`, `canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`'
assert_eq "HTTP ?nope=1: the message names it and lists the accepted parameters" "$want" "$msg"
cgi "/indexes/nosuch/tasks?nope=1"
IFS=$'\t' read -r gcode gtype msg <<<"$(errparts "$CGI_BODY")"
assert_eq "HTTP /indexes/nosuch/tasks?nope=1: parameters are checked first (400 bad_request)" \
	"400 bad_request" "$CGI_CODE $gcode"
cgi "/tasks?index_uids=movies"
IFS=$'\t' read -r gcode gtype msg <<<"$(errparts "$CGI_BODY")"
assert_contains "HTTP ?index_uids=movies (the CLI's kebab alias is no URL name): bad_request" \
	'Unknown parameter `index_uids`' "$CGI_CODE $gcode $msg"
run "$LMTASKS" --db "$DB" list --nope=1
if [ "$LMT_RC" -eq 2 ] && [ -z "$LMT_STDOUT" ] && [[ $LMT_STDERR == *nope* ]]; then
	ok "CLI list --nope=1: exit 2, names the flag"
else
	fail "CLI list --nope=1: exit 2, names the flag" "exit $LMT_RC" "stderr: $LMT_STDERR"
fi
bad_lines=$(printf '%s\n' "$LMT_STDERR" | grep -v '^lmtasks: ' || true)
assert_eq "CLI list --nope=1: every stderr line is 'lmtasks: ...' (SPEC §3)" "" "$bad_lines"

# A value too big for any parameter: refused, never a crash or a truncated match.
HUGE=$(head -c 20000 /dev/zero | tr '\0' a)
cgi "/tasks?types=$HUGE"
IFS=$'\t' read -r gcode gtype msg <<<"$(errparts "$CGI_BODY")"
if [ "$CGI_CODE" = 400 ] && [ -n "$gcode" ] && [[ $msg == *'`types`'* ]] && [ ${#msg} -lt 700 ]; then
	ok "HTTP ?types=<20000 bytes>: 400 naming \`types\` ($gcode)"
else
	fail "HTTP ?types=<20000 bytes>: 400 naming \`types\`" "status $CGI_CODE" "body: ${CGI_BODY:0:300}"
fi
run "$LMTASKS" --db "$DB" list --types="$HUGE"
if [ "$LMT_RC" -eq 2 ] && [ -z "$LMT_STDOUT" ] && [[ $LMT_STDERR == *'`types`'* ]] && [ ${#LMT_STDERR} -lt 800 ]; then
	ok "CLI list --types=<20000 bytes>: exit 2 naming \`types\`, a short message"
else
	fail "CLI list --types=<20000 bytes>: exit 2 naming \`types\`" "exit $LMT_RC" "stderr: ${LMT_STDERR:0:300}"
fi
cgi "/tasks?uids=$(seq -s, 0 256 | sed 's/,256$//')"
assert_eq "HTTP ?uids=<256 values> (the most a list takes): 200" 200 "$CGI_CODE"
cgi "/tasks?uids=$BIGLIST"
assert_eq "HTTP ?uids=<301 values>: 400" 400 "$CGI_CODE"
cgi "/tasks?statuses=%zz"
IFS=$'\t' read -r gcode gtype msg <<<"$(errparts "$CGI_BODY")"
assert_eq "HTTP ?statuses=%zz (a malformed escape): 400 bad_request" "400 bad_request" "$CGI_CODE $gcode"

###########################################################################################
section "delete: only finished tasks, a taskDeletion task, uids never reused"

DD=$T/del
D() { "$LMTASKS" --db "$DD" "$@"; }
# (Kinds of their own: the deletion store's first write of each command is scanned too.)
DW() { scan_once "D $1" D "$@"; }
{
	D init
	for i in 0 1 2 3 4 5 6 7 8 9; do
		if [ $((i % 2)) -eq 0 ]; then DW enqueue movies documentAddition; else DW enqueue books documentAddition; fi
	done
	DW start 0 && DW succeed 0 && DW start 1 && DW succeed 1 && DW start 2 && DW succeed 2
	DW start 3 && DW fail 3 --code boom --message "it broke"
	DW cancel 4			# the taskCancelation is uid 10
	DW start 5			# 5 processing, 6..9 enqueued
} >"$T/del.log" 2>&1 || { echo "queries.sh: cannot build the deletion store" >&2; cat "$T/del.log" >&2; exit 99; }
F2=$(field finishedAt "$(D get 2)")

# deleted NAME JSON UID MATCHED DELETED FILTER: JSON is the taskDeletion task SPEC §1 wants.
deleted() {
	json_check "$1" "$2" "keys(d) == ['uid','indexUid','status','type','details','duration','enqueuedAt','startedAt','finishedAt'] and d['uid'] == $3 and d['indexUid'] is None and d['status'] == 'succeeded' and d['type'] == 'taskDeletion' and keys(d['details']) == ['matchedTasks','deletedTasks','originalFilter'] and d['details']['matchedTasks'] == $4 and d['details']['deletedTasks'] == $5 and d['details']['originalFilter'] == '$6' and d['startedAt'] is not None and d['finishedAt'] is not None"
}
# gone UID... / kept UID...: whether `lmtasks get` still finds them.
gone() {
	local u bad=""
	for u in "$@"; do scan_once "D get gone" D get "$u" >/dev/null 2>&1; [ $? -eq 1 ] || bad+=" $u"; done
	assert_eq "deleted: ${*}" "" "$bad"
}
kept() {
	local u bad=""
	for u in "$@"; do scan_once "D get kept" D get "$u" >/dev/null 2>&1 || bad+=" $u"; done
	assert_eq "still there: ${*}" "" "$bad"
}
# healthy TOTAL: list's total, stats' tasks and check agree.
healthy() {
	local lt st
	lt=$(field total "$(D list --limit 0)")
	st=$(field tasks "$(D stats)")
	assert_eq "list total = stats tasks = $1" "$1 $1" "$lt $st"
	check "lmtasks check finds no problem" D check
}

run D delete --before "$F2"
assert_eq "delete --before <finishedAt of 2>: exit 0" 0 "$LMT_RC"
deleted "delete --before: prints the taskDeletion task (11), matched 2, deleted 2" "$LMT_STDOUT" 11 2 2 "?beforeFinishedAt=$F2"
gone 0 1
kept 2 3 4 5 6 7 8 9 10 11
healthy 10
run D get 11
deleted "the taskDeletion task is stored (lmtasks get 11)" "$LMT_STDOUT" 11 2 2 "?beforeFinishedAt=$F2"
cgi /tasks/0 "$DD"
IFS=$'\t' read -r gcode gtype msg <<<"$(errparts "$CGI_BODY")"
assert_eq "HTTP /tasks/0 after its deletion: 404 task_not_found" "404 task_not_found" "$CGI_CODE $gcode"
cgi "/tasks?types=taskDeletion" "$DD"
assert_eq "HTTP /tasks?types=taskDeletion: total 1" 1 "$(field total "$CGI_BODY")"

run D delete 5 6 7
deleted "delete 5 6 7 (processing, enqueued): matched 3, deleted 0" "$LMT_STDOUT" 12 3 0 "?uids=5,6,7"
kept 5 6 7

run D delete --statuses enqueued,processing
deleted "delete --statuses enqueued,processing: matched 5, deleted 0" "$LMT_STDOUT" 13 5 0 "?statuses=enqueued,processing"
kept 5 6 7 8 9
healthy 12

run D delete --statuses failed,succeeded --indexUids books
deleted "delete --statuses failed,succeeded --indexUids books: only 3" "$LMT_STDOUT" 14 1 1 "?statuses=failed,succeeded&indexUids=books"
gone 3
kept 2 4

# Finished now: 2, 4, 10, 11, 12, 13, 14; --keep 2 keeps the two newest of them.
run D delete --keep 2
deleted "delete --keep 2: matched 12, deleted 5" "$LMT_STDOUT" 15 12 5 "?keep=2"
gone 2 4 10 11 12
kept 5 6 7 8 9 13 14 15
healthy 8

# The newest uid deleted: the next task still gets a new one.
run D delete 15
deleted "delete 15 (the newest task)" "$LMT_STDOUT" 16 1 1 "?uids=15"
gone 15
assert_eq "after deleting 15 the next enqueue gets 17, not a deleted uid" 17 \
	"$(field uid "$(D enqueue movies documentAddition 2>/dev/null)")"
assert_eq "stats nextUid 18" 18 "$(field nextUid "$(D stats)")"

run D delete --before "$TOMORROW"
deleted "delete --before TOMORROW: every finished task (13, 14, 16)" "$LMT_STDOUT" 18 3 3 "?beforeFinishedAt=$TOMORROW"
gone 13 14 16
kept 5 6 7 8 9 17 18
cgi "/tasks?statuses=succeeded,failed,canceled" "$DD"
assert_eq "HTTP: only the new taskDeletion task is finished now" '1 18' \
	"$(field total "$CGI_BODY") $(field uid "$CGI_BODY")"
healthy 7
run D delete 999
if [ "$LMT_RC" -le 1 ] && [ "$(field deletedTasks "$LMT_STDOUT")" != 1 ]; then
	ok "delete 999 (no such task): nothing deleted (exit $LMT_RC)"
else
	fail "delete 999 (no such task): nothing deleted" "exit $LMT_RC" "$LMT_STDOUT $LMT_STDERR"
fi
kept 5 6 7 8 9 17 18
TOTAL_NOW=$(field total "$(D list --limit 0)")
assert_exit -m "delete with nothing to say which: exit 2" 2 D delete
assert_exit -m "delete --limit 5: exit 2" 2 D delete --limit 5
run D delete --before notadate
if [ "$LMT_RC" -eq 2 ] && [[ $LMT_STDERR == *beforeFinishedAt*notadate* ]]; then
	ok "delete --before notadate: exit 2 naming the value"
else
	fail "delete --before notadate: exit 2 naming the value" "exit $LMT_RC" "$LMT_STDERR"
fi
run D delete --statuses 'done'
assert_eq "delete --statuses done: exit 2, list's message" \
	"2 lmtasks: delete: Invalid value in parameter \`statuses\`: \`done\` is not a valid task status. Available statuses are \`enqueued\`, \`processing\`, \`succeeded\`, \`failed\`, \`canceled\`." \
	"$LMT_RC $LMT_STDERR"
healthy "$TOTAL_NOW"

###########################################################################################
section "index list, index delete"

DI=$T/idx
I() { "$LMTASKS" --db "$DI" "$@"; }
{
	I init && I enqueue movies documentAddition && I enqueue books indexCreation &&
	I enqueue movies settingsUpdate && I enqueue songs documentAddition &&
	I start 0 && I succeed 0
} >"$T/idx.log" 2>&1 || { echo "queries.sh: cannot build the index store" >&2; cat "$T/idx.log" >&2; exit 99; }
run I index list
assert_eq "index list: exit 0" 0 "$LMT_RC"
json_check "index list: {results:[{uid,createdAt}] in name order, total 3}" "$LMT_STDOUT" \
	"keys(d) == ['results','total'] and d['total'] == 3 and [i['uid'] for i in d['results']] == ['books','movies','songs'] and all(keys(i) == ['uid','createdAt'] and re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$', i['createdAt']) for i in d['results'])"
MOVIES_CREATED=$(field enqueuedAt "$(I get 0)")
assert_contains "index list: movies' createdAt is its first task's enqueuedAt" \
	"{\"uid\":\"movies\",\"createdAt\":\"$MOVIES_CREATED\"}" "$LMT_STDOUT"

run I index delete movies
assert_eq "index delete movies: exit 0, prints it" '0 {"uid":"movies","deleted":true}' "$LMT_RC $LMT_STDOUT"
run I index list
json_check "index list afterwards: books, songs" "$LMT_STDOUT" \
	"[i['uid'] for i in d['results']] == ['books','songs'] and d['total'] == 2"
for p in /indexes/movies/tasks /indexes/movies/tasks/0 /indexes/movies/tasks/2 "/indexes/movies/tasks?statuses=succeeded"; do
	cgi "$p" "$DI"
	assert_eq "HTTP $p after index delete: 404 index_not_found" \
		'404 {"message":"Index `movies` not found.","code":"index_not_found","type":"invalid_request","link":"https://docs.meilisearch.com/errors#index_not_found"}' \
		"$CGI_CODE $CGI_BODY"
done
cgi "/tasks?indexUids=movies" "$DI"
assert_eq "HTTP /tasks?indexUids=movies still lists its 2 tasks" "200 2" "$CGI_CODE $(field total "$CGI_BODY")"
cgi /tasks "$DI"
assert_eq "HTTP /tasks: all 4 tasks" "200 4" "$CGI_CODE $(field total "$CGI_BODY")"
for u in 0 2; do
	cgi "/tasks/$u" "$DI"
	assert_eq "HTTP /tasks/$u (a movies task) still 200" "200 movies" "$CGI_CODE $(field indexUid "$CGI_BODY")"
done
cgi /indexes/books/tasks "$DI"
assert_eq "HTTP /indexes/books/tasks unaffected" "200 1" "$CGI_CODE $(field total "$CGI_BODY")"
assert_exit -m "index delete movies again: exit 1" 1 I index delete movies
assert_exit -m "index delete nosuch: exit 1" 1 I index delete nosuch
assert_exit -m "index delete 'bad!name': exit 2" 2 I index delete 'bad!name'
assert_exit -m "index frobnicate: exit 2" 2 I index frobnicate
check "lmtasks check after index delete" I check
I enqueue movies clearAll >/dev/null 2>&1
cgi /indexes/movies/tasks "$DI"
assert_eq "a new task for movies makes the index exist again" 200 "$CGI_CODE"

###########################################################################################
section "leases: reap, heartbeat, --requeue, --started-at"

# Five stores, each with one task claimed under a 60 s lease; the programs with the clock
# seam run them, and one move of their clock by 61 s ends every lease (no sleep: the
# checks hold however slow the machine is).
clock_use "$T/lease-clock"
for x in reap enq requeue again late; do
	scan_once "clocked init" "$LMTASKS_CLOCKED" --db "$T/l-$x" init 2>/dev/null
	scan_once "clocked enqueue" "$LMTASKS_CLOCKED" --db "$T/l-$x" enqueue jobs work >/dev/null 2>&1
	scan_once "clocked enqueue" "$LMTASKS_CLOCKED" --db "$T/l-$x" enqueue jobs work >/dev/null 2>&1
done
LR() { "$LMTASKS_CLOCKED" --db "$T/l-$1" "${@:2}"; }
run LR reap claim --lease 60
assert_eq "claim --lease 60: task 0, processing" "0 0 processing" "$LMT_RC $(field uid "$LMT_STDOUT") $(field status "$LMT_STDOUT")"
run LR reap reap
assert_eq "reap before the lease ends: nothing" '0 {"reaped":0}' "$LMT_RC $LMT_STDOUT"
clock_move 30
run LR reap reap
assert_eq "reap 30 s into a 60 s lease: nothing" '0 {"reaped":0}' "$LMT_RC $LMT_STDOUT"
clock_move -30
LR enq claim --lease 60 >/dev/null 2>&1
run LR requeue claim --lease 60 --requeue
RQ_ENQ=$(field enqueuedAt "$LMT_STDOUT")
assert_eq "claim --lease 60 --requeue: task 0" "0 0" "$LMT_RC $(field uid "$LMT_STDOUT")"
run LR again claim --lease 60 --requeue
OLD_START=$(field startedAt "$LMT_STDOUT")
run LR late claim --lease 60
clock_move 61
run "$LMTASKS" --db "$T/l-enq" reap
assert_eq "the installed lmtasks has no clock seam: its reap ends no lease" '0 {"reaped":0}' \
	"$LMT_RC $LMT_STDOUT"

run LR reap reap
assert_eq "reap once the clock moved 61 s: one lease ended" '0 {"reaped":1}' "$LMT_RC $LMT_STDOUT"
run LR reap get 0
json_check "the task failed: task_lease_expired, type internal, finishedAt set" "$LMT_STDOUT" \
	"d['status'] == 'failed' and d['error']['code'] == 'task_lease_expired' and d['error']['type'] == 'internal' and d['error']['link'].endswith('#task_lease_expired') and d['error']['message'] and d['finishedAt'] is not None and d['duration'] is not None"
assert_eq "the other task is untouched (enqueued)" enqueued "$(field status "$(LR reap get 1)")"

LR enq enqueue jobs more >/dev/null 2>&1
assert_eq "another writer (enqueue) reaps too: the task failed" "failed task_lease_expired" \
	"$(LR enq get 0 >"$T/got.json"; field status "$(<"$T/got.json")") $(field code "$(<"$T/got.json")")"
check "lmtasks check after reaping" LR enq check

run LR requeue reap
assert_eq "reap of a --requeue lease: one" '{"reaped":1}' "$LMT_STDOUT"
run LR requeue get 0
json_check "--requeue: back to enqueued, same uid and enqueuedAt, startedAt null, no error" "$LMT_STDOUT" \
	"d['uid'] == 0 and d['status'] == 'enqueued' and d['enqueuedAt'] == '$RQ_ENQ' and d['startedAt'] is None and d['finishedAt'] is None and 'error' not in d"
run LR requeue claim
assert_eq "the next claim gets it again" "0 0 processing" "$LMT_RC $(field uid "$LMT_STDOUT") $(field status "$LMT_STDOUT")"

run LR late succeed 0
if [ "$LMT_RC" -eq 3 ] && [ -z "$LMT_STDOUT" ] && [[ $LMT_STDERR == "lmtasks: "*lease*expired* ]]; then
	ok "a late succeed after the lease expired: exit 3, says the lease expired"
else
	fail "a late succeed after the lease expired: exit 3, says the lease expired" "exit $LMT_RC" "stderr: $LMT_STDERR" "stdout: $LMT_STDOUT"
fi
assert_eq "... and the task stays failed with task_lease_expired" "failed task_lease_expired" \
	"$(LR late get 0 >"$T/got.json"; field status "$(<"$T/got.json")") $(field code "$(<"$T/got.json")")"
assert_exit -m "a late fail after the lease expired: exit 3" 3 LR late fail 0 --code x --message y

# Claimed again by a second worker once the first one's lease ran out.
run LR again claim --lease 30
NEW_START=$(field startedAt "$LMT_STDOUT")
assert_eq "the expired --requeue task is claimed again by a new worker" "0 0" "$LMT_RC $(field uid "$LMT_STDOUT")"
assert_ne "... with a new startedAt" "$OLD_START" "$NEW_START"
run LR again succeed 0 --started-at "$OLD_START"
if [ "$LMT_RC" -eq 3 ] && [ -z "$LMT_STDOUT" ] && [[ $LMT_STDERR == "lmtasks: "*claimed\ again* ]]; then
	ok "succeed --started-at <the old claim's startedAt>: exit 3, says it was claimed again"
else
	fail "succeed --started-at <the old claim's startedAt>: exit 3" "exit $LMT_RC" "stderr: $LMT_STDERR"
fi
assert_eq "... and the task is still the new worker's (processing)" processing "$(field status "$(LR again get 0)")"
assert_exit -m "heartbeat --started-at <the old startedAt>: exit 3" 3 LR again heartbeat 0 --started-at "$OLD_START"
run LR again succeed 0 --started-at "$NEW_START"
assert_eq "the new worker's succeed --started-at works" "0 succeeded" "$LMT_RC $(field status "$LMT_STDOUT")"

# Heartbeats every 40 s keep a 60 s lease alive for 320 s (of the moved clock); without
# one for 61 s more it ends.
HB=$T/l-hb
"$LMTASKS_CLOCKED" --db "$HB" init 2>/dev/null
"$LMTASKS_CLOCKED" --db "$HB" enqueue jobs work >/dev/null 2>&1
"$LMTASKS_CLOCKED" --db "$HB" claim --lease 60 >/dev/null 2>&1
hb_bad=""
for i in 1 2 3 4 5 6 7 8; do
	clock_move 40
	"$LMTASKS_CLOCKED" --db "$HB" heartbeat 0 >"$T/hb.out" 2>&1 || hb_bad+=" #$i: $(cat "$T/hb.out")"
done
assert_eq "8 heartbeats, 40 s apart, all accepted" "" "$hb_bad"
run "$LMTASKS_CLOCKED" --db "$HB" reap
assert_eq "after 320 s with heartbeats: nothing to reap" '{"reaped":0}' "$LMT_STDOUT"
run "$LMTASKS_CLOCKED" --db "$HB" succeed 0
assert_eq "... and the task can then succeed" "0 succeeded" "$LMT_RC $(field status "$LMT_STDOUT")"
run "$LMTASKS_CLOCKED" --db "$HB" heartbeat 0
if [ "$LMT_RC" -eq 3 ] && [[ $LMT_STDERR == "lmtasks: "* ]]; then
	ok "heartbeat of a succeeded task: exit 3"
else
	fail "heartbeat of a succeeded task: exit 3" "exit $LMT_RC" "stderr: $LMT_STDERR"
fi
"$LMTASKS_CLOCKED" --db "$HB" enqueue jobs work >/dev/null 2>&1
assert_exit -m "heartbeat of an enqueued task: exit 3" 3 "$LMTASKS_CLOCKED" --db "$HB" heartbeat 1
assert_exit -m "heartbeat of a missing task: exit 1" 1 "$LMTASKS_CLOCKED" --db "$HB" heartbeat 99
HB2=$T/l-hb2
"$LMTASKS_CLOCKED" --db "$HB2" init 2>/dev/null
"$LMTASKS_CLOCKED" --db "$HB2" enqueue jobs work >/dev/null 2>&1
"$LMTASKS_CLOCKED" --db "$HB2" claim --lease 60 >/dev/null 2>&1
clock_move 40
"$LMTASKS_CLOCKED" --db "$HB2" heartbeat 0 >/dev/null 2>&1
clock_move 61
run "$LMTASKS_CLOCKED" --db "$HB2" reap
assert_eq "61 s after the last heartbeat: the lease ended" '{"reaped":1}' "$LMT_STDOUT"
check "lmtasks check after the leases" "$LMTASKS_CLOCKED" --db "$HB" check

echo "# done in $(elapsed "$START") s"
summary
