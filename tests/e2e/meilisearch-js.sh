#!/usr/bin/env bash
# The newest official JavaScript client, meilisearch 0.62.0 from the npm registry, run
# unchanged (tests/lib/meilisearch-js.mjs) against lmtasks behind a real nginx: the responder
# and lmtasks-writer mounted with the shipped snippets (nginx/lmtasks-location.conf,
# nginx/lmtasks-writer.conf).  First a `compat v1` store: tasks.getTask/getTasks (indexUids,
# reverse, batchUids, canceledBy), batches.getBatch/getBatches, waitForTask while a worker
# finishes the task, MeilisearchApiError codes for missing tasks and batches, and
# tasks.cancelTasks/deleteTasks through the writer with a key that has the action (and
# refused with one that has not), waitForTask through a retry (a task with maxAttempts 2
# that fails once then succeeds, one that fails twice: it ends only at the final state);
# then the same client against a default v0.25 store for what it can do there.
#
# The client is installed once into $top_builddir/npm-cache/meilisearch-js (npm install);
# without node or npm, or when npm fails, the suite is skipped, and fails under CI=true.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi LMTASKS_WRITER=build/lmtasks-writer \
#       top_builddir=build bash tests/e2e/meilisearch-js.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
: "${top_builddir:=.}"
top_builddir=$(cd "$top_builddir" && pwd)
: "${LMTASKS_WRITER:=$top_builddir/lmtasks-writer}"
case $LMTASKS_WRITER in /*) ;; *) LMTASKS_WRITER=$(pwd)/$LMTASKS_WRITER ;; esac
for b in "$LMTASKS" "$LMTASKS_FCGI" "$LMTASKS_WRITER"; do
	[ -x "$b" ] || { echo "meilisearch-js.sh: no binary at $b" >&2; exit 99; }
done
[ -x "$HTTP_NGINX" ] || lmt_missing_all nginx "no nginx (apt-get install nginx)"
lmt_have curl || lmt_missing_all curl "no curl"
lmt_have node || lmt_missing_all node "no node (apt-get install nodejs)"
lmt_have npm || lmt_missing_all npm "no npm (apt-get install npm)"

VERSION=0.62.0
# LMTASKS_NPM_CACHE: where the client is kept between runs (scripts/test.sh gives the
# tarball's make check the build tree's, so it is fetched once).
CACHE=${LMTASKS_NPM_CACHE:-$top_builddir/npm-cache}/meilisearch-js
MODULE=$CACHE/node_modules/meilisearch/dist/index.js
installed() {
	[ -f "$MODULE" ] && [ "$(node -p "require('$CACHE/node_modules/meilisearch/package.json').version" 2>/dev/null)" = "$VERSION" ]
}
if ! installed; then
	mkdir -p "$CACHE"
	[ -f "$CACHE/package.json" ] || echo '{"name":"lmtasks-client-test","private":true}' >"$CACHE/package.json"
	if ! (cd "$CACHE" && timeout 300 npm install --no-audit --no-fund --no-save \
	    "meilisearch@$VERSION") >"$HTTP_TMP/npm.log" 2>&1 || ! installed; then
		echo "# npm install meilisearch@$VERSION failed:"
		sed 's/^/#   /' "$HTTP_TMP/npm.log" | tail -n 15
		lmt_missing_all npm "npm could not install meilisearch@$VERSION"
	fi
fi
ok "meilisearch@$VERSION from npm, in $CACHE"

T=$HTTP_TMP
MASTER=meilisearch-js-suite-master-key-0123
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"

# client COMPAT STORE: a store, the responder and the writer on it, nginx in front, and the
# client's checks; each check line of the client becomes one of ours.
client() {
	local compat=$1 name=$2
	S=$T/$name
	local init=()
	[ "$compat" = v1 ] && init=(--compat v1)
	section "meilisearch-js $VERSION against a $compat store"
	L init "${init[@]}" 2>/dev/null || { fail "lmtasks init ${init[*]}" "$(L init "${init[@]}" 2>&1)"; return; }
	{
		L enqueue movies documentAddition --details '{"receivedDocuments":3}' \
			--custom-metadata 'import "42" é' &&					# 0
		L enqueue books indexCreation &&						# 1
		L enqueue movies settingsUpdate --details '{"rankingRules":["typo"]}' \
			--custom-metadata '' &&							# 2
		L claim --index movies &&							# 0 processing
		L succeed 0 --details '{"indexedDocuments":3}' &&
		L start 1 &&
		L fail 1 --code index_already_exists --message 'Index `books` already exists.' \
			--type invalid_request &&
		L start 2 && L succeed 2 &&
		L enqueue movies documentAddition &&						# 3: waitForTask
		L enqueue books documentAddition &&						# 4: cancelTasks
		L enqueue series documentAddition && L enqueue series documentAddition &&	# 5, 6
		L enqueue retries documentAddition --max-attempts 2 --backoff 100ms &&	# 7: fails once
		L enqueue retries documentAddition --max-attempts 2 --backoff 100ms &&	# 8: for good
		L enqueue queue documentAddition --priority 5 &&				# 9
		L enqueue queue documentAddition --delay 1d &&				# 10
		L enqueue queue documentAddition --custom-metadata 'q' && L start 11 &&	# 11
		L heartbeat 11 --progress 40/100 --step indexing
	} >/dev/null || { fail "the demo store for $compat"; return; }
	# Compacted while nothing runs on it: the client reads the copy.
	check "$compat: lmtasks compact" L compact
	# Tasks 0 and 2 carry customMetadata (Meilisearch 1.26; 2 an empty one): the client's
	# getTask(0) and getTasks compare what it reads with `lmtasks get` and `list`.
	if [ "$compat" = v1 ]; then
		json_check "$compat: task 0 has its customMetadata" "$(L get 0)" 'd["customMetadata"] == "import \"42\" é"'
	fi
	# v1: 5 and 6 claimed together, one batch, for cancelTasks({ batchUids }).
	if [ "$compat" = v1 ]; then
		L claim --batch 2 --index series >/dev/null || { fail "claim --batch 2"; return; }
	fi
	local read_key write_key
	read_key=$(L key create | json_get - 'd["key"]')
	write_key=$(L key create --actions 'tasks.*' | json_get - 'd["key"]')

	fcgi_start "$T/$name-fcgi.sock" "$S" 2 --master-key-file "$T/master.key" ||
		{ fail "lmtasks-fcgi starts"; return; }
	"$LMTASKS_WRITER" --db "$S" --listen "unix:$T/$name-writer.sock" \
		--master-key-file "$T/master.key" </dev/null >>"$T/$name-writer.log" 2>&1 &
	local wpid=$! i
	lmt_on_exit "http_stop $wpid"
	for ((i = 0; i < 600; i++)); do http_sock_ready "$T/$name-writer.sock" && break; sleep 0.05; done
	local loc wconf
	loc=$(sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/$name-fcgi.sock|" "$top_srcdir/nginx/lmtasks-location.conf")
	wconf=$(sed -e "s|unix:/run/lmtasks/writer.sock|unix:$T/$name-writer.sock|" \
		-e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/$name-fcgi.sock|" "$top_srcdir/nginx/lmtasks-writer.conf")
	http_nginx_start "$name" "" "$loc
$wconf" || { fail "nginx starts"; return; }

	local out=$T/$name-client.out line
	MJS_MODULE=$MODULE MJS_BASE=$HTTP_BASE MJS_MASTER=$MASTER MJS_READ_KEY=$read_key \
	MJS_WRITE_KEY=$write_key MJS_COMPAT=$compat MJS_LMTASKS="$LMTASKS --db $S" \
	MJS_ENQUEUED=3 MJS_CANCEL=4 MJS_BATCHED=5,6 MJS_RETRY=7,8 MJS_QUEUE=9,10,11 \
		timeout 120 node "$top_srcdir/tests/lib/meilisearch-js.mjs" >"$out" 2>"$out.err"
	local rc=$?
	[ "$rc" -eq 0 ] || fail "the client ran to its end" "exit status $rc" "$(tail -n 5 "$out.err")"
	[ -s "$out" ] || fail "the client printed its checks" "$(tail -n 5 "$out.err")"
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "$compat: ${line#ok - }" ;;
		"not ok - "*) line=${line#not ok - }; fail "$compat: ${line%%: *}" "${line#*: }" ;;
		*) echo "# $line" ;;
		esac
	done <"$out"
	check "$compat: the store passes lmtasks check after the client" L check
	http_stop "$wpid"
}

if "$LMTASKS" init --help 2>&1 | grep -q -e '--compat'; then
	client v1 v1
else
	skip "meilisearch-js $VERSION against a compat v1 store" \
	    "this build has no compat setting (lmtasks init --compat v1)"
fi
client v0.25 v025
summary
