#!/usr/bin/env bash
# README.md, run: every shell or command-line code block of the README is run here, so the
# README cannot drift from the programs.
#
# Each ```sh (```bash, ```shell, ```console) block and each bare ``` block must be
# preceded by a tag, the line right before it (blank lines between allowed):
#
#   <!-- readme-test: NAME -->            the block runs here; NAME says how (below)
#   <!-- readme-test: skip (REASON) -->   it cannot run in a test: it is only parsed (and
#                                         the ./scripts it names must exist)
#
# An untagged block, an unknown NAME, a NAME used twice or a NAME that is no longer in the
# README is a failing check.  Other blocks (```json) are not commands and need no tag.
#
# A tagged block runs in a sandbox: a bash of its own (commands one logical line at a
# time, each one a check that it exits 0, then checks of what it printed or did), with
# standard input from /dev/null, PATH starting with a directory holding `lmtasks` and
# `lmtasks-fcgi` (links to the binaries under test), LMTASKS_DB set to the sandbox's
# store, HOME the sandbox.  The README's text is changed by these substitutions only:
#
#   (1) /var/lib/lmtasks, /etc/lmtasks, /run/lmtasks  ->  SANDBOX/var/lib/lmtasks,
#       SANDBOX/etc/lmtasks, SANDBOX/run/lmtasks (a fresh SANDBOX per block, in which
#       var/lib, etc/lmtasks and run/lmtasks exist, as their parents do on a system)
#   (2) 127.0.0.1:7700  ->  the address of the test's nginx (block curl)
#   (3) block worker: `--wait 30` -> `--wait 1` and `sleep 20` -> `sleep 0.2`, so that
#       the loop ends once the queue is empty and the heartbeat runs during a short job;
#       `do_the_work` is a shell function defined here (it returns once the task's
#       heartbeat has printed it, and fails the tasks whose details say "fail":true, with
#       status 7), and the tasks are enqueued before the loop runs
#   (4) block keys: KEY_OR_UID  ->  the uid that `lmtasks key create` printed
#
# and one change in how a command runs, not in its text: `lmtasks-fcgi ... --listen ...`
# (a server) is started in the background and stopped with SIGTERM after the checks.
#
# The blocks:
#   curl         GETs through nginx (nginx/lmtasks.conf, the socket and port moved) and
#                the responder, on a store with the index movies and a task 0; with
#                LMTASKS_README_SERVE=1, through scripts/serve.sh itself instead (run from
#                top_srcdir on a free LMTASKS_PORT: it installs, builds and writes there)
#   cli          the CLI tour, with what each command prints
#   worker       the worker loop: the tasks end succeeded / failed as do_the_work says
#   fcgi-usage   the synopsis is the usage line of `lmtasks-fcgi --help`
#   writer-usage the synopsis is the usage line of `lmtasks-writer --help`
#   permissions  as root (or a member of www-data) only: the modes, the group, and
#                www-data reading the store through lmtasks-fcgi
#   master-key   the key file and the responder with it: nginx in front answers 401
#                without the key, 403 with another, 200 with it; CGI with the variable
#   keys         key create / list / delete, the key used through the responder between
#   watch        lmtasks watch --until-finished in the background, the task finished
#                meanwhile: its last line is the succeeded task at its latest sequence
#   webhooks     webhook add / list / delete and notify --once against a receiver on
#                127.0.0.1 (tests/lib/webhook-receiver.py; 127.0.0.1:8000 -> its port): the
#                finished task arrives gzip NDJSON with the block's Authorization header
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/readme.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
shopt -s extglob
http_need_binaries readme.sh
README=$top_srcdir/README.md
[ -r "$README" ] || { echo "readme.sh: no $README" >&2; exit 99; }

T=$LMT_TMP
START=$(now)
BIN=$T/bin
mkdir -p "$BIN" "$T/steps"
ln -s "$LMTASKS" "$BIN/lmtasks"
ln -s "$LMTASKS_FCGI" "$BIN/lmtasks-fcgi"
PARAMS=/etc/nginx/fastcgi_params
HAVE_NGINX=
[ -x "$HTTP_NGINX" ] && [ -f "$PARAMS" ] && command -v curl >/dev/null &&
	command -v ss >/dev/null && HAVE_NGINX=1
section() { echo "# --- $*"; }

# ---- the README's code blocks ----

# Per block i: B_LINE (of the opening fence), B_INFO (its info string), B_TAG (the tag's
# text, "" when untagged), B_TEXT (the lines inside).
B_LINE=() B_INFO=() B_TAG=() B_TEXT=()
UNCLOSED=
parse_readme() {
	local n=0 line in=0 fence="" text="" prev=""
	local open_re='^ {0,3}(```+)[[:space:]]*([^[:space:]`]*)' close_re='^ {0,3}(```+)[[:space:]]*$'
	local tag_re='^<!-- readme-test: (.*) -->[[:space:]]*$'
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		if ((in)); then
			if [[ $line =~ $close_re ]] && [ ${#BASH_REMATCH[1]} -ge ${#fence} ]; then
				in=0
				B_TEXT+=("$text")
				prev=$line
			else
				text+=$line$'\n'
			fi
			continue
		fi
		if [[ $line =~ $open_re ]]; then
			fence=${BASH_REMATCH[1]}
			B_LINE+=("$n")
			B_INFO+=("${BASH_REMATCH[2]}")
			if [[ $prev =~ $tag_re ]]; then
				B_TAG+=("${BASH_REMATCH[1]}")
			else
				B_TAG+=("")
			fi
			in=1 text=""
			continue
		fi
		[[ $line == *[![:space:]]* ]] && prev=$line
	done <"$README"
	((in)) && { UNCLOSED=${B_LINE[${#B_LINE[@]} - 1]}; B_TEXT+=("$text"); }
	return 0
}

# is_command_block INFO: a shell block, or a bare one (a command line).
is_command_block() {
	case $1 in "" | sh | bash | shell | console | shell-session | zsh) return 0 ;; esac
	return 1
}

# The names this suite knows how to run; each must tag exactly one block.
KNOWN=(curl cli worker fcgi-usage writer-usage permissions master-key keys watch webhooks)
declare -A BLOCK_OF=()	# NAME -> block index

# ---- steps: a block split into logical commands ----

# split_steps TEXT FIRSTLINE: sets STEP_CMD[] (each logical command: a line with its
# backslash continuations, or as many lines as bash needs to parse a compound command) and
# STEP_LINE[] (its first README line).  Blank and comment-only lines between commands are
# dropped.  SPLIT_ERR names a line where the text never parses.
split_steps() {
	local text=$1 n=$(( $2 - 1 )) line acc="" first=0
	STEP_CMD=() STEP_LINE=() SPLIT_ERR=
	while IFS= read -r line; do
		n=$((n + 1))
		if [ -z "$acc" ]; then
			[[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
			first=$n
			acc=$line
		else
			acc+=$'\n'$line
		fi
		[[ $line == *\\ ]] && continue
		if bash -n <<<"$acc" 2>/dev/null; then
			STEP_CMD+=("$acc")
			STEP_LINE+=("$first")
			acc=""
		fi
	done <<<"${text%$'\n'}"
	[ -n "$acc" ] && SPLIT_ERR=$first
	return 0
}

# short CMD: its first line, trimmed, at most 70 characters (for check names).
short() {
	local s
	s=$(printf '%s\n' "${1%%$'\n'*}" | sed -e 's/[[:space:]]\{1,\}#.*//' -e 's/[[:space:]\\]*$//')
	[ ${#s} -gt 70 ] && s="${s:0:67}..."
	printf '%s' "$s"
}

# opt_of CMD NAME: the value of --NAME in the command line CMD (as the shell splits it),
# or nothing.  The checks take the README's values from its commands this way.
opt_of() {
	"$LMT_PYTHON" -S -c 'import shlex, sys
w = shlex.split(sys.argv[1], comments=True)
for i, a in enumerate(w[:-1]):
    if a == "--" + sys.argv[2]:
        print(w[i + 1])
        break' "$1" "$2" 2>/dev/null
}

# ---- the block runner: one bash per block, fed one command at a time ----

RB_PIDV='' RB_W='' RB_R='' RB_RC='' RB_OUT='' RB_ERR='' RB_N=0 SB=''

# new_sandbox NAME: a fresh $SB with the parents of the README's system paths.
new_sandbox() {
	SB=$T/sb/$1
	mkdir -p "$SB/var/lib" "$SB/etc/lmtasks" "$SB/run/lmtasks"
}

# subst_paths TEXT: substitution (1), into $SB.
subst_paths() {
	local s=$1
	s=${s//\/var\/lib\/lmtasks/$SB\/var\/lib\/lmtasks}
	s=${s//\/etc\/lmtasks/$SB\/etc\/lmtasks}
	s=${s//\/run\/lmtasks/$SB\/run\/lmtasks}
	printf '%s' "$s"
}

# rb_start: the block's bash, in $SB, with the sandbox environment.
rb_start() {
	coproc RB {
		cd "$SB" && exec env -u LMTASKS_MASTER_KEY_FILE -u LMTASKS_MAPSIZE -u BASH_ENV \
			-u ENV -u CDPATH PATH="$BIN:$PATH" LMTASKS_DB="$SB/var/lib/lmtasks" HOME="$SB" \
			bash --noprofile --norc
	}
	RB_PIDV=$RB_PID RB_W=${RB[1]} RB_R=${RB[0]}
	lmt_on_exit "http_stop $RB_PIDV"
}

# rb_wait TAG SECONDS: reads the block bash's answers until "__rb TAG ..."; RB_RC is the
# rest.  1 when it did not come in time (or the bash is gone).
rb_wait() {
	local line
	RB_RC=
	while IFS= read -r -t "$2" line <&"$RB_R"; do
		case $line in "__rb $1 "*) RB_RC=${line#"__rb $1 "}; return 0 ;; esac
	done 2>/dev/null
	return 1
}

# rb_run CMD [SECONDS]: runs CMD (text) in the block bash, its output to files; sets RB_RC
# (its exit status, or "timeout"), RB_OUT, RB_ERR (the files), RB_STDOUT, RB_STDERR.
rb_run() {
	RB_N=$((RB_N + 1))
	RB_OUT=$T/steps/$RB_N.out RB_ERR=$T/steps/$RB_N.err
	printf '{ %s\n} </dev/null >%q 2>%q; echo "__rb %s $?"\n' "$1" "$RB_OUT" "$RB_ERR" "$RB_N" \
		1>&"$RB_W" 2>/dev/null
	# 60 s by default: a hang guard (a step takes seconds at most; it holds at a fifth of
	# the machine's speed).
	rb_wait "$RB_N" "${2:-60}" || RB_RC=timeout
	RB_STDOUT=$(cat "$RB_OUT" 2>/dev/null)
	RB_STDERR=$(cat "$RB_ERR" 2>/dev/null)
}

# rb_run_bg CMD: starts CMD, a simple command, in the background of the block bash (which
# stays its parent: rb_stop_bg stops it); RB_RC is then its PID.
rb_run_bg() {
	RB_N=$((RB_N + 1))
	RB_OUT=$T/steps/$RB_N.out RB_ERR=$T/steps/$RB_N.err
	printf '( exec %s\n) </dev/null >%q 2>%q & echo "__rb %s $!"\n' "$1" "$RB_OUT" "$RB_ERR" "$RB_N" \
		1>&"$RB_W" 2>/dev/null
	rb_wait "$RB_N" 30 || RB_RC=
}

# rb_stop_bg PID: SIGTERM to the background command PID, and its exit status (RB_RC).
rb_stop_bg() {
	RB_N=$((RB_N + 1))
	printf 'kill -TERM %s; wait %s; echo "__rb %s $?"\n' "$1" "$1" "$RB_N" 1>&"$RB_W" 2>/dev/null
	rb_wait "$RB_N" 30 || RB_RC=timeout
}

rb_end() {
	[ -n "$RB_PIDV" ] || return 0
	printf 'exit 0\n' 1>&"$RB_W" 2>/dev/null
	http_wait_gone 30 "$RB_PIDV" || http_stop "$RB_PIDV" KILL
	RB_PIDV=
}

# step_check NAME: the last rb_run exited 0.
step_check() {
	if [ "$RB_RC" = 0 ]; then
		ok "$1"
	else
		fail "$1" "exit status: $RB_RC" "stdout: ${RB_STDOUT:0:400}" "stderr: ${RB_STDERR:0:400}"
	fi
}

# run_block NAME SUBST_FN HOOK_FN: the tagged block NAME, step by step in a block bash
# (rb_start already done): each step substituted by SUBST_FN CMD (which prints the text to
# run), run (a server in the background), checked for exit 0, then HOOK_FN CMD.
BG_PIDS=()
run_block() {
	local name=$1 subst=$2 hook=$3 i cmd run_cmd label
	local b=${BLOCK_OF[$name]}
	split_steps "${B_TEXT[$b]}" $(( B_LINE[b] + 1 ))
	if [ -n "$SPLIT_ERR" ]; then
		fail "$name: README.md:$SPLIT_ERR parses as shell" "$(bash -n <<<"${B_TEXT[$b]}" 2>&1)"
		return
	fi
	for i in "${!STEP_CMD[@]}"; do
		cmd=${STEP_CMD[$i]}
		run_cmd=$("$subst" "$cmd")
		label="$name: README.md:${STEP_LINE[$i]}: $(short "$cmd")"
		if [[ $cmd == lmtasks-fcgi\ * && $cmd == *--listen* ]]; then
			rb_run_bg "$run_cmd"
			if [ -n "$RB_RC" ]; then
				BG_PIDS+=("$RB_RC")
				ok "$label (started in the background)"
			else
				fail "$label (started in the background)" "the block's bash did not answer"
			fi
		else
			rb_run "$run_cmd"
			step_check "$label exits 0"
			if [ "$RB_RC" = timeout ]; then
				# Still running: stop the block's bash and what it started, by PID.
				http_stop "$RB_PIDV" KILL
				RB_PIDV=
				[ $((i + 1)) -lt ${#STEP_CMD[@]} ] &&
					fail "$name: the rest of the block runs" "not run: README.md:${STEP_LINE[$i]} hung"
				return
			fi
		fi
		"$hook" "$cmd"
	done
}

# ---- 1. every command block is tagged, with a name this suite runs ----

section "tags"
parse_readme
if [ -n "$UNCLOSED" ]; then
	fail "README.md:$UNCLOSED: the code block is closed"
fi
NCMD=0
for b in "${!B_LINE[@]}"; do
	is_command_block "${B_INFO[$b]}" || continue
	NCMD=$((NCMD + 1))
	l=${B_LINE[$b]} tag=${B_TAG[$b]}
	what="README.md:$l: \`\`\`${B_INFO[$b]} block"
	if [ -z "$tag" ]; then
		fail "$what is tagged" "add <!-- readme-test: NAME --> (a name this suite runs) or" \
			"<!-- readme-test: skip (REASON) --> on the line before it" \
			"it begins: $(short "$(sed -n "$((l + 1))p" "$README")")"
		continue
	fi
	case $tag in
	skip\ \(*[![:space:]]*\))
		ok "$what is tagged: $(short "$tag")"
		;;
	skip*)
		fail "$what is tagged" "a skip needs a reason: <!-- readme-test: skip (REASON) -->"
		;;
	*)
		known=
		for k in "${KNOWN[@]}"; do [ "$k" = "$tag" ] && known=1; done
		if [ -z "$known" ]; then
			fail "$what is tagged with a name this suite runs" "unknown name: $tag" \
				"known: ${KNOWN[*]}"
		elif [ -n "${BLOCK_OF[$tag]:-}" ]; then
			fail "$what: tag $tag is used once" \
				"also at README.md:${B_LINE[${BLOCK_OF[$tag]}]}"
		else
			BLOCK_OF[$tag]=$b
			ok "$what is tagged: $tag"
		fi
		;;
	esac
done
for k in "${KNOWN[@]}"; do
	[ -n "${BLOCK_OF[$k]:-}" ] ||
		fail "the README has a block tagged $k" "this suite runs it: tag it, or drop its runner here"
done

# ---- 2. skipped blocks: they parse, and the scripts they name exist ----

section "skipped blocks"
for b in "${!B_LINE[@]}"; do
	is_command_block "${B_INFO[$b]}" || continue
	[[ ${B_TAG[$b]} == skip\ * ]] || continue
	split_steps "${B_TEXT[$b]}" $(( B_LINE[b] + 1 ))
	if [ -n "$SPLIT_ERR" ]; then
		fail "README.md:$SPLIT_ERR parses as shell (skipped block)"
		continue
	fi
	for i in "${!STEP_CMD[@]}"; do
		first=${STEP_CMD[$i]%%[[:space:]]*}
		case $first in
		./*)
			if [ -x "$top_srcdir/${first#./}" ] && [ -f "$top_srcdir/${first#./}" ]; then
				ok "README.md:${STEP_LINE[$i]}: $first is an executable file (block skipped)"
			else
				fail "README.md:${STEP_LINE[$i]}: $first is an executable file" \
					"no $top_srcdir/${first#./}"
			fi
			;;
		*) ok "README.md:${STEP_LINE[$i]}: $(short "${STEP_CMD[$i]}") parses (block skipped)" ;;
		esac
	done
done

# ---- 3. curl: the API through nginx and the responder ----

PORT=
subst_curl() { local s=$1; printf '%s' "${s//127.0.0.1:7700/127.0.0.1:$PORT}"; }
hook_curl() {
	local url path idx
	url=$(subst_curl "$1")
	url=${url#*http://}
	path=/${url#*/}
	path=${path%%[[:space:]]*}
	idx=$(printf '%s' "$path" | sed -n 's|^/indexes/\([^/]*\)/.*|\1|p')
	case $path in
	*/tasks)
		json_check "curl: GET $path answers the list envelope" "$RB_OUT" \
			"keys(d) == ['results','total','limit','from','next'] and d['total'] >= 1 and
			 all(t['indexUid'] == '$idx' for t in d['results'] if '$idx')"
		;;
	*/tasks/+([0-9]))
		json_check "curl: GET $path answers task ${path##*/}" "$RB_OUT" \
			"d['uid'] == ${path##*/} and ('$idx' == '' or d['indexUid'] == '$idx')"
		;;
	*)
		json_check "curl: GET $path answers JSON that is no error" "$RB_OUT" \
			"isinstance(d, dict) and 'code' not in d"
		;;
	esac
}

serve_start() {
	http_serve_start "$top_srcdir" "$T/serve.out" || return 1
	lmt_on_exit "serve_stop"
	http_serve_ready "$T/serve.out" "${LMTASKS_README_SERVE_TIMEOUT:-600}"
}
serve_stop() { http_serve_stop 10; }

if [ -n "${BLOCK_OF[curl]:-}" ]; then
	if [ "${LMTASKS_README_SERVE:-}" = 1 ]; then
		section "curl, against scripts/serve.sh (LMTASKS_README_SERVE=1)"
		if serve_start; then
			ok "scripts/serve.sh says it is ready on 127.0.0.1:$PORT"
			new_sandbox curl
			rb_start
			run_block curl subst_curl hook_curl
			rb_end
			serve_stop
			if http_port_free "$PORT"; then
				ok "scripts/serve.sh stops on SIGTERM; nothing is left on the port"
			else
				fail "scripts/serve.sh stops on SIGTERM; nothing is left on the port" \
					"$(ss -Htlnp "( sport = :$PORT )")"
			fi
		else
			fail "scripts/serve.sh says it is ready" "its output:" "$(tail -n 15 "$T/serve.out")"
			serve_stop
		fi
	elif [ -z "$HAVE_NGINX" ]; then
		section "curl"
		lmt_missing "curl: the README's GETs" nginx "no nginx, $PARAMS, curl or ss"
	else
		section "curl, through nginx/lmtasks.conf and lmtasks-fcgi"
		new_sandbox curl
		S=$SB/var/lib/lmtasks
		if { L() { "$LMTASKS" --db "$S" "$@"; }
			L init && L enqueue movies documentAddition --details '{"receivedDocuments":10}' &&
			L claim --index movies && L succeed 0 --details '{"indexedDocuments":10}' &&
			L enqueue books indexCreation; } >"$T/curl-setup.log" 2>&1 &&
			fcgi_start "$SB/run/lmtasks/fcgi.sock" "$S" 2 &&
			http_nginx_start curl "$(sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$SB/run/lmtasks/fcgi.sock|" \
				-e 's|127\.0\.0\.1:7700|127.0.0.1:@PORT@|' "$top_srcdir/nginx/lmtasks.conf")" -; then
			PORT=$HTTP_PORT
			ok "nginx (nginx/lmtasks.conf) and lmtasks-fcgi serve a store with movies and task 0"
			rb_start
			run_block curl subst_curl hook_curl
			rb_end
		else
			fail "nginx (nginx/lmtasks.conf) and lmtasks-fcgi serve a store with movies and task 0" \
				"$(cat "$T/curl-setup.log")"
		fi
		[ -n "$HTTP_NGINX_PID" ] && http_stop "$HTTP_NGINX_PID" QUIT
		[ -n "$FCGI_PID" ] && http_stop "$FCGI_PID"
		HTTP_NGINX_PID='' FCGI_PID=''
	fi
fi

# ---- 4. cli: the CLI tour ----

CLI_DETAILS=
subst_cli() { subst_paths "$1"; }
hook_cli() {
	local S=$SB/var/lib/lmtasks
	[ "$RB_RC" = 0 ] || return 0
	case $1 in
	export\ LMTASKS_DB=*)
		rb_run 'printf %s "$LMTASKS_DB"'
		assert_eq "cli: LMTASKS_DB is exported" "$S" "$RB_STDOUT"
		;;
	"lmtasks init"*)
		if [ -f "$S/data.mdb" ] && [ -f "$S/lock.mdb" ]; then
			ok "cli: init made the store: data.mdb and lock.mdb in \$LMTASKS_DB"
		else
			fail "cli: init made the store: data.mdb and lock.mdb in \$LMTASKS_DB" "$(ls -la "$S" 2>&1)"
		fi
		;;
	"lmtasks enqueue movies"*)
		CLI_DETAILS=$(opt_of "$1" details)
		json_check "cli: enqueue prints {uid,indexUid,status,type,enqueuedAt}: task 0, enqueued" "$RB_OUT" \
			"keys(d) == ['uid','indexUid','status','type','enqueuedAt'] and d['uid'] == 0 and
			 d['status'] == 'enqueued' and d['indexUid'] == 'movies'"
		;;
	"lmtasks claim"*)
		json_check "cli: claim takes the oldest enqueued task, now processing" "$RB_OUT" \
			"d['uid'] == 0 and d['status'] == 'processing' and d['startedAt']"
		;;
	"lmtasks succeed"*)
		local more
		more=$(opt_of "$1" details)
		: "${more:={\}}" "${CLI_DETAILS:={\}}"
		json_check "cli: succeed: succeeded, the details merged key by key" "$RB_OUT" \
			"d['status'] == 'succeeded' and
			 d['details'] == dict(json.loads('$CLI_DETAILS'), **json.loads('$more'))"
		;;
	"lmtasks get 0"*)
		local got=$RB_STDOUT
		json_check "cli: get 0 prints the succeeded task" "$RB_OUT" "d['uid'] == 0 and d['status'] == 'succeeded'"
		CGI_DB=$S cgi GET /tasks/0
		CGI_DB=
		assert_eq "cli: get 0 prints byte for byte what GET /tasks/0 serves" "$CGI_BODY" "$got"
		;;
	"lmtasks list"*)
		local limit
		limit=$(opt_of "$1" limit)
		json_check "cli: list --limit ${limit:-20}: the list envelope, task 0" "$RB_OUT" \
			"keys(d) == ['results','total','limit','from','next'] and d['limit'] == ${limit:-20} and
			 [t['uid'] for t in d['results']] == [0]"
		;;
	esac
}
if [ -n "${BLOCK_OF[cli]:-}" ]; then
	section "cli"
	new_sandbox cli
	rb_start
	rb_run 'command -v lmtasks lmtasks-fcgi'
	assert_eq "cli: PATH finds the binaries under test first" "$BIN/lmtasks"$'\n'"$BIN/lmtasks-fcgi" "$RB_STDOUT"
	run_block cli subst_cli hook_cli
	rb_end
fi

# ---- 5. worker: the loop, on tasks enqueued before it runs ----

subst_worker() {
	local s
	s=$(subst_paths "$1")
	s=${s//--wait 30/--wait 1}
	s=${s//sleep 20/sleep 0.2}
	printf '%s' "$s"
}
hook_worker() { :; }
if [ -n "${BLOCK_OF[worker]:-}" ]; then
	section "worker"
	text=${B_TEXT[${BLOCK_OF[worker]}]}
	if [[ $text == *"--wait 30"* && $text == *"sleep 20"* && $text == *do_the_work* ]]; then
		ok "worker: the loop has --wait 30, sleep 20 and do_the_work (substituted)"
		new_sandbox worker
		S=$SB/var/lib/lmtasks
		L() { "$LMTASKS" --db "$S" "$@"; }
		# 0 and 3 succeed, 1 and 4 fail (do_the_work exits 7), 2 is another index's.
		if { L init && L enqueue movies documentAddition --details '{"receivedDocuments":10}' &&
			L enqueue movies documentAddition --details '{"receivedDocuments":3,"fail":true}' &&
			L enqueue books documentAddition --details '{"receivedDocuments":1}' &&
			L enqueue movies settingsUpdate --details '{"rankingRules":["words"]}' &&
			L enqueue movies documentDeletion --details '{"fail":true}'; } >"$T/worker-setup.log" 2>&1
		then
			rb_start
			# The job lasts until its heartbeat has run (it prints the task, processing, on
			# the loop's standard output, which is the block bash's while the loop runs),
			# not a time: the heartbeat check below then holds however slow the machine is.
			# 30 s is a hang guard.
			rb_run "$(cat <<'FN'
do_the_work() {
	local u=${1#\{\"uid\":} out n
	u=${u%%,*}
	out=$(readlink "/proc/$$/fd/1")
	for ((n = 0; n < 600; n++)); do
		grep -q "^{\"uid\":$u,\"indexUid\":\"movies\",\"status\":\"processing\"" "$out" && break
		sleep 0.05
	done
	case $1 in *'"fail":true'*) return 7 ;; esac
	return 0
}
FN
)"
			t0=$(now)
			run_block worker subst_worker hook_worker
			took=$(elapsed "$t0")
			# Its end is the claim's --wait 1 with nothing left; the step's own bound (60 s)
			# is the hang guard, not a measure of speed.
			assert_eq "worker: the loop ends once the queue is empty (took ${took} s)" 0 "$RB_RC"
			rb_end
			L list --reverse --limit 10 >"$T/worker.json" 2>&1
			# What the loop passes to succeed and fail, from its text.
			w_details=$(printf '%s\n' "$text" | sed -n "s/.*lmtasks succeed .*--details '\\([^']*\\)'.*/\\1/p")
			: "${w_details:={\}}"
			w_code=$(printf '%s\n' "$text" | sed -n 's/.*--code \([a-z_]*\).*/\1/p')
			json_check "worker: tasks 0 and 3 succeeded, with the details the loop adds" "$T/worker.json" \
				"[(t['uid'], t['status'], all(t['details'].get(k) == v for k, v in json.loads('$w_details').items()))
				  for t in d['results'] if t['uid'] in (0, 3)] == [(0, 'succeeded', True), (3, 'succeeded', True)]"
			json_check "worker: tasks 1 and 4 failed: ${w_code:-?}, do_the_work exited 7" "$T/worker.json" \
				"[(t['uid'], t['status'], t['error']['code'], t['error']['message'], t['error']['type'])
				  for t in d['results'] if t['uid'] in (1, 4)]
				 == [(u, 'failed', '$w_code', 'do_the_work exited 7', 'internal') for u in (1, 4)]"
			json_check "worker: task 2 (books) is still enqueued" "$T/worker.json" \
				"[t['status'] for t in d['results'] if t['uid'] == 2] == ['enqueued']"
			# The heartbeats print the task (processing) on the loop's standard output.
			hb=$(grep -o '^{"uid":[0-9]*,"indexUid":"movies","status":"processing"' "$RB_OUT" |
				sed 's/^{"uid":\([0-9]*\).*/\1/' | sort -un | tr '\n' ' ')
			assert_eq "worker: every task got a heartbeat while do_the_work ran" "0 1 3 4 " "$hb"
			check "worker: lmtasks check passes on the store after the loop" "$LMTASKS" --db "$S" check
		else
			fail "worker: the tasks are enqueued before the loop" "$(cat "$T/worker-setup.log")"
		fi
	else
		fail "worker: the loop has --wait 30, sleep 20 and do_the_work (substituted)" \
			"the substitutions no longer apply: update tests/e2e/readme.sh with the README"
	fi
fi

# ---- 6. fcgi-usage: the synopsis is the program's own ----

if [ -n "${BLOCK_OF[fcgi-usage]:-}" ]; then
	section "fcgi-usage"
	b=${BLOCK_OF[fcgi-usage]}
	run "$LMTASKS_FCGI" --help
	if [ "$LMT_RC" = 0 ]; then
		usage=$(printf '%s\n' "$LMT_STDOUT" | sed -n '/^usage: /,/^$/p' | sed 's/^usage: //' | tr -s ' \n\t' ' ')
		usage=${usage% }
		want=$(printf '%s' "${B_TEXT[$b]}" | tr -s ' \n\t' ' ')
		want=${want% }
		assert_eq "fcgi-usage: README.md:$(( B_LINE[b] + 1 )) is lmtasks-fcgi --help's usage" "$usage" "$want"
	else
		fail "fcgi-usage: lmtasks-fcgi --help exits 0" "exit status $LMT_RC" "$LMT_STDERR"
	fi
fi

# ---- 6b. writer-usage: the writer's synopsis is its own ----

if [ -n "${BLOCK_OF[writer-usage]:-}" ]; then
	section "writer-usage"
	b=${BLOCK_OF[writer-usage]}
	run "${LMTASKS_WRITER:-${top_builddir:-.}/lmtasks-writer}" --help
	if [ "$LMT_RC" = 0 ]; then
		usage=$(printf '%s\n' "$LMT_STDOUT" | sed -n '/^usage: /,/^$/p' | sed 's/^usage: //' | tr -s ' \n\t' ' ')
		usage=${usage% }
		want=$(printf '%s' "${B_TEXT[$b]}" | tr -s ' \n\t' ' ')
		want=${want% }
		assert_eq "writer-usage: README.md:$(( B_LINE[b] + 1 )) is lmtasks-writer --help's usage" "$usage" "$want"
	else
		fail "writer-usage: lmtasks-writer --help exits 0" "exit status $LMT_RC" "$LMT_STDERR"
	fi
fi

# ---- 7. permissions: init --group www-data ----

subst_perm() { subst_paths "$1"; }
hook_perm() {
	local S=$SB/var/lib/lmtasks got
	[ "$RB_RC" = 0 ] || return 0
	case $1 in
	*"init --group www-data"*)
		got=$(stat -c '%n %a %G' "$S/data.mdb" "$S/lock.mdb" "$S" | sed "s|^$S/||; s|^$S |dir |")
		assert_eq "permissions: data.mdb 0640, lock.mdb 0660, directory setgid, all www-data's" \
			$'data.mdb 640 www-data\nlock.mdb 660 www-data\ndir 2750 www-data' "$got"
		"$LMTASKS" --db "$S" enqueue movies documentAddition >/dev/null 2>&1
		got=$(stat -c '%n %a %G' "$S/data.mdb" "$S/lock.mdb" | sed "s|^$S/||")
		assert_eq "permissions: a later write keeps the group and the modes" \
			$'data.mdb 640 www-data\nlock.mdb 660 www-data' "$got"
		# www-data reads the store through the responder (as CGI); the sandbox's parents
		# are opened for traversal only.  The responder runs from a copy that www-data may
		# execute: a checkout under /root (0700) is closed to it.
		local fcgi=$LMTASKS_FCGI pub
		if [ "$(id -u)" = 0 ] && pub=$(mktemp -d /tmp/lmtasks-readme.XXXXXX); then
			chmod 755 "$pub" && cp "$LMTASKS_FCGI" "$pub/lmtasks-fcgi" && fcgi=$pub/lmtasks-fcgi
			lmt_on_exit "rm -rf '$pub'"
		fi
		if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null &&
			runuser -u www-data -- test -x "$fcgi" 2>/dev/null &&
			runuser -u www-data -- test -x "$(dirname "$T")" 2>/dev/null; then
			local d=$SB/var/lib
			while [ "$d" != "$T" ] && [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done
			chmod o+x "$T"
			got=$(runuser -u www-data -- env -i REQUEST_METHOD=GET REQUEST_URI=/tasks/0 \
				GATEWAY_INTERFACE=CGI/1.1 "$fcgi" --db "$S" 2>&1 | head -n 1 | tr -d '\r')
			assert_eq "permissions: www-data reads the store through lmtasks-fcgi" "Status: 200 OK" "$got"
			got=$(runuser -u nobody -- env -i REQUEST_METHOD=GET REQUEST_URI=/tasks/0 \
				GATEWAY_INTERFACE=CGI/1.1 "$fcgi" --db "$S" 2>/dev/null | head -n 1 | tr -d '\r')
			assert_match "permissions: a user outside www-data cannot (503)" '^Status: 503' "$got"
			chmod o-x "$T"
		else
			skip "permissions: www-data reads the store through lmtasks-fcgi" \
				"not root, or www-data cannot run $fcgi"
		fi
		;;
	esac
}
if [ -n "${BLOCK_OF[permissions]:-}" ]; then
	section "permissions"
	if ! getent group www-data >/dev/null; then
		skip "permissions: the README's init --group www-data" "no group www-data here"
	elif [ "$(id -u)" != 0 ] && ! id -Gn | tr ' ' '\n' | grep -qx www-data; then
		skip "permissions: the README's init --group www-data" "not root nor in www-data"
	else
		new_sandbox permissions
		rb_start
		run_block permissions subst_perm hook_perm
		rb_end
	fi
fi

# ---- 8. master-key: the key file, the responder with it ----

subst_mk() { subst_paths "$1"; }
hook_mk() {
	local kf=$SB/etc/lmtasks/master.key key
	case $1 in
	head\ *master.key*)
		[ "$RB_RC" = 0 ] || return 0
		key=$(head -n 1 "$kf")
		assert_lt "master-key: the key file's first line has 16 bytes at least (${#key})" 15 "${#key}"
		;;
	lmtasks-fcgi\ *)
		local sock=$SB/run/lmtasks/fcgi.sock pid=${BG_PIDS[${#BG_PIDS[@]} - 1]:-}
		[ -n "$pid" ] || return 0
		if wait_for 30 http_sock_ready "$sock"; then
			ok "master-key: the responder listens on /run/lmtasks/fcgi.sock"
		else
			fail "master-key: the responder listens on /run/lmtasks/fcgi.sock" \
				"its stderr: $(cat "$RB_ERR")"
		fi
		key=$(head -n 1 "$kf")
		if [ -z "$HAVE_NGINX" ]; then
			lmt_missing "master-key: nginx in front of it" nginx "no nginx, $PARAMS, curl or ss"
		elif http_nginx_start master-key "$(sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$sock|" \
			-e 's|127\.0\.0\.1:7700|127.0.0.1:@PORT@|' "$top_srcdir/nginx/lmtasks.conf")" -; then
			http GET /tasks/0
			json_check "master-key: without a key: 401 missing_authorization_header" "$HTTP_BODY_FILE" \
				"$HTTP_STATUS == 401 and d['code'] == 'missing_authorization_header'"
			http GET /tasks/0 -H "Authorization: Bearer not-the-master-key-at-all"
			json_check "master-key: with another key: 403 invalid_api_key" "$HTTP_BODY_FILE" \
				"$HTTP_STATUS == 403 and d['code'] == 'invalid_api_key'"
			http GET /tasks/0 -H "Authorization: Bearer $key"
			json_check "master-key: with the key from the file: 200, task 0" "$HTTP_BODY_FILE" \
				"$HTTP_STATUS == 200 and d['uid'] == 0"
			http GET /health
			assert_eq "master-key: /health needs no key" "200 {\"status\":\"available\"}" "$HTTP_STATUS $HTTP_BODY"
			http_stop "$HTTP_NGINX_PID" QUIT
			HTTP_NGINX_PID=
		else
			fail "master-key: nginx (nginx/lmtasks.conf) starts in front of it"
		fi
		rb_stop_bg "$pid"
		assert_eq "master-key: the responder exits 0 on SIGTERM" 0 "$RB_RC"
		# The comment's other way: the file named by LMTASKS_MASTER_KEY_FILE (here in CGI).
		CGI_DB=$SB/var/lib/lmtasks cgi GET /tasks/0 LMTASKS_MASTER_KEY_FILE="$kf"
		assert_eq "master-key: LMTASKS_MASTER_KEY_FILE instead: 401 without the key" 401 "$CGI_CODE"
		CGI_DB=
		# Not with cgi(): a base64 key ends with "=", which cgi() reads as "unset NAME".
		local got
		got=$(env -i GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REQUEST_URI=/tasks/0 \
			LMTASKS_MASTER_KEY_FILE="$kf" HTTP_AUTHORIZATION="Bearer $key" \
			"$LMTASKS_FCGI" --db "$SB/var/lib/lmtasks" </dev/null 2>&1 | head -n 1 | tr -d '\r')
		assert_eq "master-key: LMTASKS_MASTER_KEY_FILE instead: 200 with it" "Status: 200 OK" "$got"
		;;
	esac
}
if [ -n "${BLOCK_OF[master-key]:-}" ]; then
	section "master-key"
	new_sandbox master-key
	BG_PIDS=()
	if [ ${#SB} -gt 80 ]; then
		fail "master-key: the sandbox's socket path fits a unix socket" "$SB is too long (TMPDIR)"
	elif { "$LMTASKS" --db "$SB/var/lib/lmtasks" init &&
		"$LMTASKS" --db "$SB/var/lib/lmtasks" enqueue movies documentAddition; } >"$T/mk-setup.log" 2>&1; then
		rb_start
		run_block master-key subst_mk hook_mk
		rb_end
	else
		fail "master-key: a store with task 0 in /var/lib/lmtasks" "$(cat "$T/mk-setup.log")"
	fi
fi

# ---- 9. keys: create, list, delete ----

KEY_UID='' KEY_SECRET='' KEYS_MK=''
subst_keys() {
	local s
	s=$(subst_paths "$1")
	[ -n "$KEY_UID" ] && s=${s//KEY_OR_UID/$KEY_UID}
	printf '%s' "$s"
}
# keys_get URI KEY: the responder (CGI, with a master key) answers URI for KEY; CGI_CODE.
keys_get() {
	# shellcheck disable=SC2034	# read by cgi()
	local CGI_DB=$SB/var/lib/lmtasks CGI_ARGS
	# shellcheck disable=SC2034
	CGI_ARGS=(--master-key-file "$KEYS_MK")
	cgi GET "$1" HTTP_AUTHORIZATION="Bearer $2"
}
hook_keys() {
	[ "$RB_RC" = 0 ] || return 0
	case $1 in
	"lmtasks key create"*)
		local idx desc exp
		idx=$(opt_of "$1" indexes) desc=$(opt_of "$1" description) exp=$(opt_of "$1" expires-at)
		json_check "keys: create prints the key once, its uid, the indexes, description, expiry" "$RB_OUT" \
			"re.fullmatch('[0-9a-f]{32,}', d['key']) and d['uid'] and d['indexes'] == '$idx'.split(',')
			 and d['description'] == '$desc' and d['expiresAt'].startswith('$exp')"
		KEY_UID=$(json_get "$RB_OUT" 'd["uid"]' 2>/dev/null)
		KEY_SECRET=$(json_get "$RB_OUT" 'd["key"]' 2>/dev/null)
		keys_get /indexes/movies/tasks "$KEY_SECRET"
		assert_eq "keys: the new key reads /indexes/movies/tasks (200)" 200 "$CGI_CODE"
		keys_get /indexes/other/tasks "$KEY_SECRET"
		assert_eq "keys: the new key is refused another index's routes (403)" 403 "$CGI_CODE"
		;;
	"lmtasks key list"*)
		[ -n "$KEY_UID" ] || return 0
		json_check "keys: list shows the key without its secret" "$RB_OUT" \
			"[k['uid'] for k in d['results']] == ['$KEY_UID'] and all('key' not in k for k in d['results'])
			 and '$KEY_SECRET' not in json.dumps(d)"
		;;
	"lmtasks key delete"*)
		[ -n "$KEY_UID" ] || return 0
		keys_get /indexes/movies/tasks "$KEY_SECRET"
		assert_eq "keys: a deleted key is invalid at once (403)" 403 "$CGI_CODE"
		run "$LMTASKS" --db "$SB/var/lib/lmtasks" key list
		assert_eq "keys: key list is empty after the delete" '{"results":[]}' "$LMT_STDOUT"
		;;
	esac
}
if [ -n "${BLOCK_OF[keys]:-}" ]; then
	section "keys"
	new_sandbox keys
	KEYS_MK=$SB/etc/lmtasks/master.key
	head -c 32 /dev/urandom | base64 >"$KEYS_MK"
	if { "$LMTASKS" --db "$SB/var/lib/lmtasks" init && "$LMTASKS" --db "$SB/var/lib/lmtasks" \
		enqueue movies documentAddition && "$LMTASKS" --db "$SB/var/lib/lmtasks" \
		enqueue other documentAddition; } >"$T/keys-setup.log" 2>&1; then
		rb_start
		run_block keys subst_keys hook_keys
		rb_end
	else
		fail "keys: a store in /var/lib/lmtasks" "$(cat "$T/keys-setup.log")"
	fi
fi

# ---- 9. watch: waiting without polling ----

hook_watch() {
	[ "$RB_RC" = 0 ] || return 0
	case $1 in
	"tail -n 1 events.ndjson"*)
		json_check "watch: the last line is task 0 succeeded, under its latest change" "$RB_OUT" \
			"keys(d) == ['seq','task'] and d['seq'] == 3 and d['task']['uid'] == 0 and
			 d['task']['status'] == 'succeeded'"
		run "$LMTASKS" --db "$SB/var/lib/lmtasks" get 0
		assert_eq "watch: its task is byte for byte what get prints" "$LMT_STDOUT" \
			"$("$LMT_PYTHON" -c 'import sys; l = sys.stdin.read(); print(l[l.index(",\"task\":") + 8:-2])' <"$RB_OUT")"
		;;
	esac
}
if [ -n "${BLOCK_OF[watch]:-}" ]; then
	section "watch"
	new_sandbox watch
	if "$LMTASKS" --db "$SB/var/lib/lmtasks" init >"$T/watch-setup.log" 2>&1; then
		rb_start
		run_block watch subst_paths hook_watch
		rb_end
	else
		fail "watch: a store in /var/lib/lmtasks" "$(cat "$T/watch-setup.log")"
	fi
fi

# ---- 10. webhooks: add, a finish delivered by notify --once, list, delete ----

WH_PORT=''
subst_webhooks() {
	local s
	s=$(subst_paths "$1")
	printf '%s' "${s//127.0.0.1:8000/127.0.0.1:$WH_PORT}"
}
# wh_posts EXPR: EXPR over p, the POSTs the receiver logged.
wh_posts() {
	"$LMT_PYTHON" -S -c 'import json, sys
p = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps(eval(sys.argv[2])))' "$T/wh.log" "$1" 2>&1
}
hook_webhooks() {
	[ "$RB_RC" = 0 ] || return 0
	case $1 in
	"lmtasks webhook add"*)
		json_check "webhooks: add prints the webhook: its id, filters, the Authorization hidden" "$RB_OUT" \
			"d['id'] == 1 and d['filters'] == 'indexUids=movies&statuses=succeeded,failed'
			 and d['headers'] == {'Authorization': 'Bearer XXX...'} and d['pending'] == 0"
		;;
	"lmtasks notify --once"*)
		assert_eq "webhooks: notify --once POSTed the finished task 0, once, answered 200" \
			'[[200, [0]]]' "$(wh_posts '[[x["status"], x["uids"]] for x in p]')"
		assert_eq "webhooks: gzip NDJSON with the block's Authorization header" \
			'[[], "Bearer RECEIVER_SECRET"]' "$(wh_posts '[p[0]["problems"], p[0]["headers"]["authorization"]]')"
		assert_eq "webhooks: the line is the task as lmtasks get prints it" \
			"$("$LMTASKS" --db "$SB/var/lib/lmtasks" get 0 | "$LMT_PYTHON" -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')" \
			"$(wh_posts 'p[0]["tasks"][0]')"
		;;
	"lmtasks webhook list"*)
		json_check "webhooks: list shows the cursor caught up, 1 task delivered, no error" "$RB_OUT" \
			"d['results'][0]['pending'] == 0 and d['results'][0]['delivered'] == 1
			 and d['results'][0]['lastError'] is None"
		;;
	"lmtasks webhook delete"*)
		run "$LMTASKS" --db "$SB/var/lib/lmtasks" webhook list
		assert_eq "webhooks: the list is empty after the delete" '{"results":[]}' "$LMT_STDOUT"
		;;
	esac
}
if [ -n "${BLOCK_OF[webhooks]:-}" ]; then
	section "webhooks"
	new_sandbox webhooks
	"$LMT_PYTHON" "$top_srcdir/tests/lib/webhook-receiver.py" "$T/wh.port" "$T/wh.log" 2>"$T/wh.err" &
	WH_PID=$!
	lmt_bg_track "$WH_PID"
	if wait_for 30 test -s "$T/wh.port" &&
		"$LMTASKS" --db "$SB/var/lib/lmtasks" init >"$T/wh-setup.log" 2>&1; then
		WH_PORT=$(cat "$T/wh.port")
		rb_start
		run_block webhooks subst_webhooks hook_webhooks
		rb_end
	else
		fail "webhooks: a receiver on 127.0.0.1 and a store" "$(cat "$T/wh.err" "$T/wh-setup.log" 2>/dev/null)"
	fi
	kill "$WH_PID" 2>/dev/null
	wait "$WH_PID" 2>/dev/null
fi

echo "# $NCMD command blocks in README.md; $(elapsed "$START") s"
summary
