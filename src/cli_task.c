/* The commands that add tasks and move them: enqueue, start, claim, heartbeat, succeed,
 * fail, reap, retry, cancel.  Each parses its arguments, calls one write operation, renders. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lmtasks/batch.h"
#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/progress.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/report.h"
#include "lmtasks/retry.h"
#include "lmtasks/settings.h"
#include "lmtasks/timefmt.h"

#define LEASE_MAX_DAYS 30
#define LEASE_MAX_US ((int64_t)LEASE_MAX_DAYS * 86400 * 1000000)

/* --lease SECONDS: up to 30 days, at least a millisecond. */
static int
parse_lease(const char *cmd, const char *arg, int64_t *us)
{
	int ret = cli_parse_seconds("--lease", arg, us);

	if (ret == 0 && (*us < 1000 || *us > LEASE_MAX_US))
		return cli_usagef(cmd, "--lease is from 0.001 to %" PRId64 " seconds (%d days)",
		    LEASE_MAX_US / 1000000, LEASE_MAX_DAYS);
	return ret;
}

/* --started-at TIME: the startedAt the worker's claim printed. */
static int
parse_started_at(const char *cmd, const char *arg, int64_t *us)
{
	int date_only;

	if (timefmt_parse(arg, strlen(arg), us, &date_only) != 0 || date_only)
		return cli_usage(cmd, "--started-at wants the task's startedAt, like "
		    "2026-01-02T03:04:05.123456Z");
	return 0;
}

/* What the caller hears when a write failed: the store's trouble, or a refusal. */
static int
change_failed(int rc, const struct ops_change *ch, const struct ops_change_result *r)
{
	static const char *const verbs[] = {
		[OPS_START] = "started", [OPS_CLAIM] = "started", [OPS_SUCCEED] = "succeeded",
		[OPS_FAIL] = "failed",
	};
	const char *hint = r->was == TASK_ENQUEUED ? "; start or claim it first" :
	    task_status_terminal(r->was) ? "; a finished task is final" : "";

	switch (rc) {
	case MDB_NOTFOUND:
		return ch->kind == OPS_CLAIM ? EXIT_NOTFOUND
		    : cli_fail(EXIT_NOTFOUND, "task %" PRIu64 " not found", r->uid);
	case LMT_ECLAIMED:
		return cli_fail(EXIT_REFUSED, "task %" PRIu64 " was claimed again since the claim "
		    "given by --started-at (its lease expired); leave it to its new worker; nothing "
		    "was changed", r->uid);
	case LMT_ELEASE:
		if (r->was == TASK_ENQUEUED)
			return cli_fail(EXIT_REFUSED, "task %" PRIu64 "'s lease expired, so it went "
			    "back to the queue and must be claimed again; nothing was changed", r->uid);
		return cli_fail(EXIT_REFUSED, "task %" PRIu64 "'s lease expired, so it was failed "
		    "with task_lease_expired; send heartbeats more often than the lease; nothing "
		    "was changed", r->uid);
	case LMT_ETRANSITION:
		if (ch->kind == OPS_HEARTBEAT)
			return cli_fail(EXIT_REFUSED, "task %" PRIu64 " is %s: only a processing task "
			    "takes heartbeats; nothing was changed", r->uid, task_status_name(r->was));
		return cli_fail(EXIT_REFUSED, "task %" PRIu64 " is %s, so it cannot be %s%s; "
		    "nothing was changed", r->uid, task_status_name(r->was), verbs[ch->kind], hint);
	case LMT_EINVAL:
		if (ch->kind == OPS_HEARTBEAT)
			return cli_fail(EXIT_USAGE, "task %" PRIu64 ": the progress is not one a "
			    "worker may report; nothing was changed", r->uid);
		return cli_store_failure(rc, "nothing was changed; writing");
	case LMT_ENOLEASE:
		return cli_fail(EXIT_USAGE, "task %" PRIu64 " was started without a lease: give "
		    "heartbeat --lease SECONDS", r->uid);
	case LMT_ECORRUPT:
		return cli_fail(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt; "
		    "run `lmtasks check`; nothing was changed", r->uid);
	default:
		return cli_store_failure(rc, "nothing was changed; writing");
	}
}

/* Runs one change on an open store and prints the task it left. */
static int
change_run(store *s, const struct ops_change *ch)
{
	struct ops_change_result r;
	int rc = ops_change(s, ch, &r), ret;

	if (rc)
		return change_failed(rc, ch, &r);
	if (ch->kind == OPS_FAIL && r.out.t.status == TASK_ENQUEUED) {
		char when[TIMEFMT_BUFSZ];
		timefmt_rfc3339(r.out.t.not_before, when);
		cli_warn("task %" PRIu64 ": attempt %u of %u failed; it goes back to the queue and "
		    "is tried again from %s (fail --final ends it now)", r.uid, r.out.t.attempts,
		    r.out.t.max_attempts, when);
	}
	ret = cli_print(cli_render_task, &r.out);
	ops_task_free(&r.out);
	return ret;
}

/* start, heartbeat, succeed, fail: the one UID argument, then the change on it. */
static int
change_uid(const struct cli_args *a, struct ops_change *ch)
{
	store *s;
	int ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants one UID");
	if ((ret = cli_parse_uid(a->argv[0], &ch->uid)) != 0 || (ret = cli_open(0, &s)) != 0)
		return ret;
	ret = change_run(s, ch);
	store_close(s);
	return ret;
}

/* ---- enqueue ---- */

static int
render_summary(struct printbuf *pb, const void *ctx)
{
	return render_task_summary(pb, ctx);
}

struct batch_out {
	const struct task *tasks;
	size_t n;
};

static int
render_batch(struct printbuf *pb, const void *ctx)
{
	const struct batch_out *b = ctx;

	return report_batch(pb, b->n, b->n ? b->tasks[0].uid : 0, b->n ? b->tasks[b->n - 1].uid : 0);
}

/* Why new tasks were refused, and the way out. */
static int
enqueue_refused(int rc, const struct ops_enqueue_result *r)
{
	if (rc == LMT_EFULL)
		return cli_fail(EXIT_STORE, "the store at %s is full for new tasks: its data would "
		    "take %" PRIu64 " bytes, past %" PRIu64 " (%d%% of its maxBytes, %" PRIu64 "); the "
		    "rest is kept so that tasks can still finish, be canceled and be deleted. Delete "
		    "finished tasks (`lmtasks delete --statuses succeeded,failed,canceled`) or raise "
		    "the limit (`lmtasks config maxBytes SIZE`); the change log counts too "
		    "(`lmtasks config feedRetention N` keeps less); nothing was enqueued", cli_db,
		    r->live_bytes, r->limit_bytes, SETTINGS_ENQUEUE_PERCENT, r->max_bytes);
	if (rc == LMT_EDISKFULL)
		return cli_fail(EXIT_STORE, "the disk holding %s is full: new tasks are refused "
		    "while it cannot keep %" PRIu64 " bytes free for the store, the room that "
		    "finishing, canceling and deleting tasks need. Free space on that disk, or "
		    "delete finished tasks (`lmtasks delete --statuses succeeded,failed,canceled`), "
		    "or keep less of the change log (`lmtasks config feedRetention N`); nothing "
		    "was enqueued", cli_db, r->reserve_bytes);
	return cli_store_failure(rc, "nothing was enqueued; writing");
}

/* Enqueues n tasks, telling p (may be NULL), and prints what print renders from them. */
static int
enqueue_run(struct task *tasks, size_t n, int (*print)(struct printbuf *, const void *),
    const void *ctx, const struct progress *p)
{
	struct ops_enqueue_result r;
	store *s;
	int rc, ret;

	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	store_set_progress(s, p);
	if ((rc = ops_enqueue(s, tasks, n, &r)) != 0) {
		ret = enqueue_refused(rc, &r);
	} else {
		if (r.trimmed)
			cli_warn("the store held more than maxTasks: the %" PRIu64 " oldest finished "
			    "tasks were deleted (taskDeletion %" PRIu64 ")", r.trimmed, r.deletion.t.uid);
		ret = cli_print(print, ctx);
	}
	ops_task_free(&r.deletion);
	store_close(s);
	return ret;
}

static int
enqueue_batch(const char *input)
{
	struct batch *b = NULL;
	char *text = NULL, why[256];
	size_t len, line = 0;
	struct progress_meter meter;
	struct progress prog;
	int rc, ret;

	progress_meter_open(&meter, &prog, STDERR_FILENO, "bytes", 4096);
	ret = cli_read_input(input, &text, &len, &prog);
	progress_meter_close(&meter);
	if (ret != 0)
		return ret;
	rc = batch_parse(text, len, &b, &line, why, sizeof(why));
	free(text);
	if (rc == LMT_EINVAL)
		return cli_fail(EXIT_USAGE, "line %zu: %s; nothing was enqueued", line, why);
	if (rc)
		return cli_fail(EXIT_STORE, "line %zu: %s; nothing was enqueued", line, lmt_strerror(rc));
	struct batch_out out = { batch_tasks(b), batch_count(b) };
	progress_meter_unit(&meter, "tasks");
	ret = enqueue_run(batch_tasks(b), out.n, render_batch, &out, &prog);
	progress_meter_close(&meter);
	batch_free(b);
	return ret;
}

/* --max-attempts N: 1 to TASK_ATTEMPTS_MAX. */
static int
parse_attempts(const char *cmd, const char *arg, uint16_t *n)
{
	char *end;
	unsigned long v = *arg >= '0' && *arg <= '9' && strlen(arg) < 6 ? strtoul(arg, &end, 10) : 0;

	if (v == 0 || *end || v > TASK_ATTEMPTS_MAX)
		return cli_usagef(cmd, "--max-attempts wants a number of attempts from 1 to %d",
		    TASK_ATTEMPTS_MAX);
	*n = (uint16_t)v;
	return 0;
}

/* --backoff DURATION: the first retry's delay. */
static int
parse_backoff(const char *cmd, const char *arg, uint32_t *ms)
{
	if (retry_parse_duration(arg, ms) != 0)
		return cli_usagef(cmd, "--backoff wants a duration from 1ms to %us: a number with "
		    "ms, s, m, h or d (seconds when none), like 30s or 1.5m",
		    RETRY_BACKOFF_MAX_MS / 1000);
	return 0;
}

/* --priority N: a whole number from TASK_PRIORITY_MIN to TASK_PRIORITY_MAX. */
static int
parse_priority(const char *cmd, const char *arg, int32_t *priority)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (*arg == '\0' || *end || errno || v < TASK_PRIORITY_MIN || v > TASK_PRIORITY_MAX)
		return cli_usagef(cmd, "--priority wants a whole number from %d to %d (higher is "
		    "claimed first; 0 the default)", TASK_PRIORITY_MIN, TASK_PRIORITY_MAX);
	*priority = (int32_t)v;
	return 0;
}

/* --delay DURATION (from now) or --not-before TIME: the task's not_before. */
static int
parse_when(const char *cmd, int id, const char *arg, int64_t *not_before)
{
	int64_t us;
	int date_only;

	if (id == 'D') {
		if (timefmt_parse_delay(arg, strlen(arg), TASK_DELAY_MAX, &us) != 0)
			return cli_usagef(cmd, "--delay wants a duration like 90 (seconds), 30s, 5m, "
			    "2h or 1d, up to %d days", TASK_DELAY_MAX_DAYS);
		*not_before = us ? clock_now() + us : 0;
		return 0;
	}
	if (timefmt_parse(arg, strlen(arg), &us, &date_only) != 0 || us <= 0 ||
	    us > TASK_TIME_MAX)
		return cli_usage(cmd, "--not-before wants a time like 2026-01-02T03:04:05Z "
		    "(RFC 3339, as tasks print theirs) or a date (midnight UTC), after 1970");
	*not_before = us;
	return 0;
}

/* The handler of its table entry below. */
static int
run_enqueue(const struct cli_args *a)
{
	const char *details = NULL, *meta = NULL;
	int32_t priority = 0;
	int64_t not_before = 0;
	uint16_t max_attempts = 0;
	uint32_t backoff = 0;
	int batch = 0, sched = 0, when = 0, ret;

	for (size_t i = 0; i < a->nopts; i++) {
		int id = a->opts[i].id;
		const char *v = a->opts[i].value;
		if (id == 'd') {
			details = v;
		} else if (id == 'm') {
			meta = v;
		} else if (id == 'p') {
			if ((ret = parse_priority(a->cmd, v, &priority)) != 0)
				return ret;
			sched = 1;
		} else if (id == 'D' || id == 'n') {
			if (when && when != id)
				return cli_usage(a->cmd, "--delay and --not-before do not go together");
			if ((ret = parse_when(a->cmd, id, v, &not_before)) != 0)
				return ret;
			sched = when = id;
		} else if (id == 'a') {
			if ((ret = parse_attempts(a->cmd, v, &max_attempts)) != 0)
				return ret;
			sched = 1;
		} else if (id == 'B') {
			if ((ret = parse_backoff(a->cmd, v, &backoff)) != 0)
				return ret;
			sched = 1;
		} else {
			batch = 1;
		}
	}
	if (batch) {
		if (details || meta || sched || a->argc > 1)
			return cli_usage(a->cmd, "--batch takes one FILE (or - for standard input) "
			    "and no --details, --custom-metadata, --priority, --delay, --not-before, "
			    "--max-attempts or --backoff (its lines carry them)");
		return enqueue_batch(a->argc ? a->argv[0] : "-");
	}
	if (backoff && !max_attempts)
		cli_warn("--backoff without --max-attempts is a retry policy only where the store "
		    "has a maxAttempts setting");
	if (meta && (strlen(meta) > TASK_METADATA_MAX || !task_utf8_valid(meta, strlen(meta))))
		return cli_usagef(a->cmd, "--custom-metadata wants UTF-8 text of up to %u bytes",
		    TASK_METADATA_MAX);
	if (a->argc != 2)
		return cli_usage(a->cmd, "it wants INDEX and TYPE");
	const char *index = a->argv[0], *type = a->argv[1];
	if ((ret = cli_check_index(index)) || (ret = cli_check_type(type)))
		return ret;
	char *dtext = NULL;
	size_t dlen = 2;
	if (details && (ret = cli_details(details, &dtext, &dlen)) != 0)
		return ret;
	struct task t;
	task_init(&t, index, strlen(index), type, strlen(type), dtext ? dtext : "{}", dlen);
	if (meta)
		t.custom_metadata = (struct task_str){ meta, strlen(meta) };
	t.priority = priority;
	t.not_before = not_before;
	t.max_attempts = max_attempts;
	t.backoff_ms = backoff;
	ret = enqueue_run(&t, 1, render_summary, &t, NULL);
	free(dtext);
	return ret;
}

static const struct option enqueue_options[] = {
	{ "details", required_argument, NULL, 'd' },
	{ "batch", no_argument, NULL, 'b' },
	{ "custom-metadata", required_argument, NULL, 'm' },
	{ "max-attempts", required_argument, NULL, 'a' },
	{ "backoff", required_argument, NULL, 'B' },
	{ "priority", required_argument, NULL, 'p' },
	{ "delay", required_argument, NULL, 'D' },
	{ "not-before", required_argument, NULL, 'n' },
	{ 0 }
};
const struct cli_command cli_cmd_enqueue = { "enqueue", enqueue_options,
	"  enqueue INDEX TYPE [--details JSON|@FILE|-] [--custom-metadata TEXT]\n"
	"          [--priority N] [--delay DURATION | --not-before TIME]\n"
	"          [--max-attempts M [--backoff DURATION]]\n"
	"                                      add a task; prints its summary; TEXT is shown\n"
	"                                      as its customMetadata (compat v1); N from\n"
	"                                      -1000000 to 1000000, higher claimed first (0);\n"
	"                                      DURATION like 90, 30s, 5m, 2h, 1d; TIME in\n"
	"                                      RFC 3339: enqueued, not claimable before then;\n"
	"                                      a failure before attempt M (1 to 1000) puts it\n"
	"                                      back in the queue after the backoff (10s by\n"
	"                                      default), doubled each time up to 1h, ±20%\n"
	"  enqueue --batch [FILE|-]            add one task per NDJSON line\n"
	"                                      ({\"indexUid\",\"type\",\"details\",\n"
	"                                      \"customMetadata\",\"priority\",\"delay\",\n"
	"                                      \"notBefore\",\"maxAttempts\",\"backoff\"}),\n"
	"                                      all or none\n",
	run_enqueue };

/* ---- start ---- */

/* The handler of its table entry below. */
static int
run_start(const struct cli_args *a)
{
	struct ops_change ch = { .kind = OPS_START };
	int ret;

	for (size_t i = 0; i < a->nopts; i++) {
		if (a->opts[i].id == 'r')
			ch.requeue = 1;
		else if ((ret = parse_lease(a->cmd, a->opts[i].value, &ch.lease)) != 0)
			return ret;
	}
	if (ch.requeue && !ch.lease)
		return cli_usage(a->cmd, "--requeue goes with --lease");
	return change_uid(a, &ch);
}

static const struct option start_options[] = {
	{ "lease", required_argument, NULL, 'l' },
	{ "requeue", no_argument, NULL, 'r' },
	{ 0 }
};
const struct cli_command cli_cmd_start = { "start", start_options,
	"  start UID [--lease SECONDS [--requeue]]\n"
	"                                      mark an enqueued task processing\n",
	run_start };

/* ---- claim ---- */

/* claim --batch N: up to N tasks in one batch, printed one a line. */
static int
claim_batch_run(store *s, const struct ops_change *ch, size_t max)
{
	struct ops_task *out = calloc(max, sizeof(*out));
	struct ops_change_result r;
	size_t n = 0;
	int rc, ret = EXIT_DONE;

	if (out == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	if ((rc = ops_claim_batch(s, ch, max, out, &n)) != 0) {
		memset(&r, 0, sizeof(r));
		free(out);
		return change_failed(rc, ch, &r);
	}
	for (size_t i = 0; i < n; i++) {
		if (ret == EXIT_DONE)
			ret = cli_print(cli_render_task, &out[i]);
		ops_task_free(&out[i]);
	}
	free(out);
	return ret;
}

/* What claim tries each time the store may have changed. */
struct claim_ctx {
	store *s;
	const struct ops_change *ch;
	size_t batch;		/* --batch N; 0: one task */
};

/* One claim: its exit status, or CLI_AGAIN when there was nothing to claim, with *wake the
 * time the first delayed task comes due (the claim's write made those due so far
 * claimable), for a wait to look again then. */
static int
claim_look(void *ctx, int64_t *wake)
{
	struct claim_ctx *cc = ctx;
	/* The find runs inside the write transaction that claims: two workers never get the
	 * same task. */
	int ret = cc->batch ? claim_batch_run(cc->s, cc->ch, cc->batch) : change_run(cc->s, cc->ch);
	MDB_txn *txn;
	uint64_t uid;

	if (ret != EXIT_NOTFOUND)
		return ret;
	if (store_read_follow(cc->s, &txn) == 0) {
		if (store_delayed_first(cc->s, txn, wake, &uid) != 0)
			*wake = 0;
		mdb_txn_abort(txn);
	}
	return CLI_AGAIN;
}

/* The handler of its table entry below. */
static int
run_claim(const struct cli_args *a)
{
	struct ops_change ch = { .kind = OPS_CLAIM };
	int64_t wait = 0;
	uint64_t batch = 0;
	int ret = 0;

	for (size_t i = 0; i < a->nopts && ret == 0; i++) {
		const char *v = a->opts[i].value;
		switch (a->opts[i].id) {
		case 'i':
			ch.claim_index = (struct task_str){ v, strlen(v) };
			ret = cli_check_index(v);
			break;
		case 't':
			ch.claim_type = (struct task_str){ v, strlen(v) };
			ret = cli_check_type(v);
			break;
		case 'w':
			ret = cli_parse_seconds("--wait", v, &wait);
			break;
		case 'l':
			ret = parse_lease(a->cmd, v, &ch.lease);
			break;
		case 'b': {
			char *end;
			batch = *v >= '0' && *v <= '9' && strlen(v) < 7 ? strtoull(v, &end, 10) : 0;
			if (batch == 0 || *end || batch > OPS_CLAIM_MAX)
				ret = cli_usagef(a->cmd, "--batch wants a number of tasks from 1 to %d",
				    OPS_CLAIM_MAX);
			break;
		}
		default:
			ch.requeue = 1;
		}
	}
	if (ret)
		return ret;
	if (ch.requeue && !ch.lease)
		return cli_usage(a->cmd, "--requeue goes with --lease");
	if (a->argc)
		return cli_usage(a->cmd, "it takes no arguments, only --index, --type and --wait");

	store *s;
	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	struct claim_ctx cc = { s, &ch, (size_t)batch };
	ret = cli_wait_for_timed(claim_look, &cc, wait);
	if (ret == CLI_AGAIN) {
		ret = EXIT_NOTFOUND;
		cli_warn("no enqueued task to claim%s", wait > 0 ? " before the wait ran out" : "");
	}
	store_close(s);
	return ret;
}

static const struct option claim_options[] = {
	{ "index", required_argument, NULL, 'i' },
	{ "type", required_argument, NULL, 't' },
	{ "wait", required_argument, NULL, 'w' },
	{ "lease", required_argument, NULL, 'l' },
	{ "requeue", no_argument, NULL, 'r' },
	{ "batch", required_argument, NULL, 'b' },
	{ 0 }
};
const struct cli_command cli_cmd_claim = { "claim", claim_options,
	"  claim [--index I] [--type T] [--wait SECONDS] [--lease SECONDS [--requeue]]\n"
	"        [--batch N]                   take the enqueued task that matches, of the\n"
	"                                      highest priority, then the oldest (a delayed\n"
	"                                      one once its time comes: --wait wakes then);\n"
	"                                      --batch N: up to N of the oldest that share its\n"
	"                                      priority, index and type, in one batch, one\n"
	"                                      JSON a line; with a lease, it fails (or with\n"
	"                                      --requeue goes back to the queue, its priority\n"
	"                                      kept) unless heartbeats extend it\n",
	run_claim };

/* ---- heartbeat ---- */

/* A decimal u32 that fills len bytes at s; 0 or -1. */
static int
parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* --progress DONE/TOTAL, or a percentage P% with at most one decimal (40%: 40 of 100,
 * 40.5%: 405 of 1000). */
static int
parse_progress(const char *cmd, const char *arg, struct ops_change *ch)
{
	size_t len = strlen(arg);
	const char *slash = strchr(arg, '/'), *dot;
	uint32_t whole, tenth;

	if (slash != NULL) {
		if (parse_u32(arg, (size_t)(slash - arg), &ch->progress_done) != 0 ||
		    parse_u32(slash + 1, strlen(slash + 1), &ch->progress_total) != 0)
			goto bad;
		if (ch->progress_total == 0)
			return cli_usagef(cmd, "--progress %s: the total must be 1 or more", arg);
		if (ch->progress_done > ch->progress_total)
			return cli_usagef(cmd, "--progress %s: done is past the total", arg);
		return 0;
	}
	if (len < 2 || arg[len - 1] != '%')
		goto bad;
	len--;
	if ((dot = memchr(arg, '.', len)) == NULL) {
		if (parse_u32(arg, len, &whole) != 0)
			goto bad;
		ch->progress_done = whole;
		ch->progress_total = 100;
	} else {
		if (parse_u32(arg, (size_t)(dot - arg), &whole) != 0 ||
		    (size_t)(dot - arg) + 2 != len || parse_u32(dot + 1, 1, &tenth) != 0 ||
		    whole > 100)
			goto bad;
		ch->progress_done = whole * 10 + tenth;
		ch->progress_total = 1000;
	}
	if (ch->progress_done > ch->progress_total)
		return cli_usagef(cmd, "--progress %s: a percentage is at most 100%%", arg);
	return 0;
bad:
	return cli_usagef(cmd, "--progress wants DONE/TOTAL (40/100) or a percentage (40%% or "
	    "40.5%%), not `%s`", arg);
}

/* --step NAME: what the task is doing, up to TASK_STEP_MAX bytes of UTF-8. */
static int
parse_step(const char *cmd, const char *arg, struct ops_change *ch)
{
	size_t len = strlen(arg);

	if (len > TASK_STEP_MAX)
		return cli_usagef(cmd, "--step is at most %d bytes, not %zu", TASK_STEP_MAX, len);
	if (!task_utf8_valid(arg, len))
		return cli_usage(cmd, "--step must be UTF-8 text");
	ch->step = arg;
	ch->step_len = len;
	return 0;
}

/*
 * Inside `lmtasks work`, a command's heartbeat of its own task (the UID in
 * LMTASKS_TASK_UID) belongs to the claim that started the command: its startedAt is
 * LMTASKS_TASK_STARTED_AT, as if given by --started-at, so that a command left running
 * after its task was claimed again cannot report on the new claim.
 */
static int
own_claim(const struct ops_change *ch, int64_t *started_at)
{
	const char *uid = getenv("LMTASKS_TASK_UID"), *at = getenv("LMTASKS_TASK_STARTED_AT");
	uint64_t mine;
	int date_only;

	if (uid == NULL || at == NULL || cli_parse_uid(uid, &mine) != 0 || mine != ch->uid)
		return 0;
	return timefmt_parse(at, strlen(at), started_at, &date_only) == 0 && !date_only ? 0 :
	    cli_fail(EXIT_USAGE, "LMTASKS_TASK_STARTED_AT is not a startedAt: `%s`", at);
}

/* The handler of its table entry below. */
static int
run_heartbeat(const struct cli_args *a)
{
	struct ops_change ch = { .kind = OPS_HEARTBEAT };
	int ret, started = 0;
	store *s;

	for (size_t i = 0; i < a->nopts; i++) {
		const char *v = a->opts[i].value;
		switch (a->opts[i].id) {
		case 'l':
			ret = parse_lease(a->cmd, v, &ch.lease);
			break;
		case 'p':
			ret = parse_progress(a->cmd, v, &ch);
			break;
		case 'n':
			ret = parse_step(a->cmd, v, &ch);
			break;
		default:
			started = 1;
			ret = parse_started_at(a->cmd, v, &ch.started_at);
			break;
		}
		if (ret != 0)
			return ret;
	}
	if (ch.step != NULL && ch.progress_total == 0)
		return cli_usage(a->cmd, "--step goes with --progress");
	if (a->argc != 1)
		return cli_usage(a->cmd, "it wants one UID");
	if ((ret = cli_parse_uid(a->argv[0], &ch.uid)) != 0 ||
	    (!started && (ret = own_claim(&ch, &ch.started_at)) != 0) ||
	    (ret = cli_open(0, &s)) != 0)
		return ret;
	ret = change_run(s, &ch);
	store_close(s);
	return ret;
}

static const struct option heartbeat_options[] = {
	{ "lease", required_argument, NULL, 'l' },
	{ "started-at", required_argument, NULL, 's' },
	{ "progress", required_argument, NULL, 'p' },
	{ "step", required_argument, NULL, 'n' },
	{ 0 }
};
const struct cli_command cli_cmd_heartbeat = { "heartbeat", heartbeat_options,
	"  heartbeat UID [--lease SECONDS] [--started-at TIME]\n"
	"            [--progress DONE/TOTAL|P% [--step NAME]]\n"
	"                                      extend a processing task's lease; report how\n"
	"                                      far its worker is (the task's details.progress,\n"
	"                                      its batch's progress), cleared when it finishes\n",
	run_heartbeat };

/* ---- succeed ---- */

/* The handler of its table entry below. */
static int
run_succeed(const struct cli_args *a)
{
	struct ops_change ch = { .kind = OPS_SUCCEED };
	char *details = NULL;
	int ret = 0;

	for (size_t i = 0; i < a->nopts && ret == 0; i++) {
		const char *v = a->opts[i].value;
		if (a->opts[i].id == 's') {
			ret = parse_started_at(a->cmd, v, &ch.started_at);
		} else {
			free(details);
			details = NULL;
			ret = cli_details(v, &details, &ch.details_len);
		}
	}
	ch.details = details;
	if (ret == 0)
		ret = change_uid(a, &ch);
	free(details);
	return ret;
}

static const struct option succeed_options[] = {
	{ "details", required_argument, NULL, 'd' },
	{ "started-at", required_argument, NULL, 's' },
	{ 0 }
};
const struct cli_command cli_cmd_succeed = { "succeed", succeed_options,
	"  succeed UID [--details JSON|@FILE|-] [--started-at TIME]\n"
	"                                      finish a processing task; details are merged\n",
	run_succeed };

/* ---- fail ---- */

/* The handler of its table entry below. */
static int
run_fail(const struct cli_args *a)
{
	struct ops_change ch = { .kind = OPS_FAIL, .etype = TASK_ERR_INTERNAL };
	int ret;

	for (size_t i = 0; i < a->nopts; i++) {
		const char *v = a->opts[i].value;
		switch (a->opts[i].id) {
		case 'c':
			ch.code = v;
			break;
		case 'm':
			ch.message = v;
			break;
		case 't':
			if (task_error_type_parse(v, &ch.etype) != 0)
				return cli_usage(a->cmd, "--type is one of invalid_request, internal, auth");
			break;
		case 'f':
			ch.final = 1;
			break;
		default:
			if ((ret = parse_started_at(a->cmd, v, &ch.started_at)) != 0)
				return ret;
		}
	}
	if (a->argc != 1 || !ch.code || !ch.message)
		return cli_usage(a->cmd, "it wants UID, --code CODE and --message TEXT");
	if (!task_error_code_valid(ch.code, strlen(ch.code)))
		return cli_usagef(a->cmd, "--code is 1 to %d characters among a-z 0-9 and _, "
		    "like index_creation_failed", TASK_CODE_MAX);
	if (strlen(ch.message) > TASK_MESSAGE_MAX || !task_utf8_valid(ch.message, strlen(ch.message)))
		return cli_usagef(a->cmd, "--message must be UTF-8 text of at most %u KiB",
		    TASK_MESSAGE_MAX >> 10);
	return change_uid(a, &ch);
}

static const struct option fail_options[] = {
	{ "code", required_argument, NULL, 'c' },
	{ "message", required_argument, NULL, 'm' },
	{ "type", required_argument, NULL, 't' },
	{ "started-at", required_argument, NULL, 's' },
	{ "final", no_argument, NULL, 'f' },
	{ 0 }
};
const struct cli_command cli_cmd_fail = { "fail", fail_options,
	"  fail UID --code CODE --message TEXT [--type invalid_request|internal|auth]\n"
	"       [--started-at TIME] [--final]  fail a processing task (type defaults to internal);\n"
	"                                      with attempts left it goes back to the queue\n"
	"                                      after its backoff, unless --final;\n"
	"                                      --started-at refuses if the task was claimed again\n",
	run_fail };

/* ---- reap ---- */

static int
render_reaped(struct printbuf *pb, const void *ctx)
{
	return report_reaped(pb, *(const uint64_t *)ctx);
}

/* The handler of its table entry below. */
static int
run_reap(const struct cli_args *a)
{
	uint64_t reaped = 0;
	store *s;
	int rc, ret;

	if (a->argc)
		return cli_usage(a->cmd, "it takes no arguments");
	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	rc = ops_reap(s, &reaped);
	store_close(s);
	return rc ? cli_store_failure(rc, "reaping") : cli_print(render_reaped, &reaped);
}

const struct cli_command cli_cmd_reap = { "reap", NULL,
	"  reap                                end the leases that expired (any write does too)\n",
	run_reap };

/* ---- retry ---- */

/* retry's flags into q (failed tasks only); *given says whether any selects.  An exit
 * status. */
static int
retry_filters(const struct cli_args *a, struct query *q, int *given)
{
	struct query_error err;
	int ret = 0;

	*given = 0;
	for (size_t i = 0; i < a->nopts && ret == 0; i++) {
		int id = a->opts[i].id;
		const char *v = a->opts[i].value;
		if (id == 'A') {
			*given = 1;
			continue;
		}
		if (id == CLI_FILTER + 4)
			return cli_usage(a->cmd, "it retries failed tasks only: no --statuses");
		/* --index and --type are claim's and work's words for indexUids and types. */
		if (id == 'i')
			id = CLI_FILTER + 6;
		else if (id == 't')
			id = CLI_FILTER + 5;
		ret = cli_filter_set(a->cmd, q, id, v, NULL);
		*given = 1;
	}
	if (ret == 0 && query_set(q, "statuses", "failed", 6, &err) != 0)
		ret = cli_fail(EXIT_USAGE, "%s: %s", a->cmd, err.message);
	return ret;
}

/* Says why each task named was left as it was; returns the exit status of the whole. */
static int
retry_report(const struct ops_retry *r)
{
	int ret = EXIT_DONE, refused = 0, missing = 0;

	for (size_t i = 0; i < r->nout; i++) {
		const struct task *t = &r->out[i].t;
		switch (r->rcs[i]) {
		case 0:
			if (ret == EXIT_DONE)
				ret = cli_print(cli_render_task, &r->out[i]);
			break;
		case MDB_NOTFOUND:
			cli_warn("task %" PRIu64 " not found", r->out_uids[i]);
			missing = 1;
			break;
		case LMT_ETOOBIG:
			cli_warn("task %" PRIu64 " has had the most attempts a task may have (%d); it "
			    "was left failed", t->uid, TASK_ATTEMPTS_MAX);
			refused = 1;
			break;
		default:
			cli_warn("task %" PRIu64 " is %s: only a failed task can be retried; it was "
			    "left as it is", t->uid, task_status_name(t->status));
			refused = 1;
		}
	}
	/* As cancel: some retried, the others said (warnings), is done. */
	if (ret != EXIT_DONE || r->retried > 0)
		return ret;
	return refused ? EXIT_REFUSED : missing ? EXIT_NOTFOUND : EXIT_DONE;
}

/* The handler of its table entry below. */
static int
run_retry(const struct cli_args *a)
{
	struct ops_retry r = { 0 };
	struct query *q = malloc(sizeof(*q));
	uint64_t *uids = NULL;
	int given, rc, ret;
	store *s;

	if (q == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	query_init(q);
	if ((ret = retry_filters(a, q, &given)) != 0)
		goto out;
	if (given == (a->argc > 0)) {
		ret = cli_usage(a->cmd, given ? "give UID... or filters, not both" : "say which "
		    "tasks: UID..., filters such as --index I or --type T, or --all");
		goto out;
	}
	if (a->argc > OPS_RETRY_MAX) {
		ret = cli_usagef(a->cmd, "at most %d uids at once", OPS_RETRY_MAX);
		goto out;
	}
	if (a->argc && (uids = calloc((size_t)a->argc, sizeof(*uids))) == NULL) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	for (int i = 0; i < a->argc && ret == 0; i++)
		ret = cli_parse_uid(a->argv[i], &uids[i]);
	if (ret || (ret = cli_open(0, &s)) != 0)
		goto out;
	r.uids = uids;
	r.n = (size_t)a->argc;
	r.q = uids ? NULL : q;
	rc = ops_retry(s, &r);
	store_close(s);
	if (rc == LMT_ECORRUPT)
		ret = cli_fail(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt; run "
		    "`lmtasks check`; nothing was retried", r.bad);
	else if (rc)
		ret = cli_store_failure(rc, "nothing was retried; writing");
	else if (!uids && r.nout == 0)
		cli_warn("no failed task matches; nothing was changed");
	else
		ret = retry_report(&r);
	ops_retry_free(&r);
out:
	free(uids);
	free(q);
	return ret;
}

static const struct option retry_options[] = {
	CLI_FILTER_OPTIONS,
	{ "index", required_argument, NULL, 'i' },
	{ "type", required_argument, NULL, 't' },
	{ "all", no_argument, NULL, 'A' },
	{ 0 }
};
const struct cli_command cli_cmd_retry = { "retry", retry_options,
	"  retry UID... | --all | [--index I] [--type T] [FILTERS]\n"
	"                                      put failed tasks back in the queue at once, one\n"
	"                                      more attempt for those that had none left; prints\n"
	"                                      them one JSON a line; other tasks are refused\n",
	run_retry };

/* ---- cancel ---- */

/* ?uids=1,2,3: the originalFilter of the taskCancelation task. */
static char *
uids_filter(const uint64_t *uids, size_t n)
{
	char *f = malloc(8 + 21 * n);
	size_t fl;

	if (f == NULL)
		return NULL;
	fl = (size_t)sprintf(f, "?uids=");
	for (size_t i = 0; i < n; i++)
		fl += (size_t)sprintf(f + fl, "%s%" PRIu64, i ? "," : "", uids[i]);
	return f;
}

/* The handler of its table entry below. */
static int
run_cancel(const struct cli_args *a)
{
	struct ops_record_result r;
	uint64_t *uids = NULL;
	char *filter = NULL;
	size_t n = (size_t)a->argc;
	store *s;
	int rc, ret = EXIT_DONE;

	if (n == 0)
		return cli_usage(a->cmd, "it wants one UID or more");
	if (n > OPS_CANCEL_MAX)
		return cli_usagef(a->cmd, "at most %d uids at once", OPS_CANCEL_MAX);
	if ((uids = calloc(n, sizeof(*uids))) == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = cli_parse_uid(a->argv[i], &uids[i]);
	if (ret)
		goto out;
	if ((filter = uids_filter(uids, n)) == NULL) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	if ((ret = cli_open(0, &s)) != 0)
		goto out;
	rc = ops_cancel(s, uids, n, filter, &r);
	store_close(s);
	if (rc == MDB_NOTFOUND) {
		ret = cli_fail(EXIT_NOTFOUND, "task %" PRIu64 " not found; nothing was canceled",
		    r.missing);
	} else if (rc == LMT_ETRANSITION) {
		ret = cli_fail(EXIT_REFUSED, "%s already finished; only enqueued or processing "
		    "tasks can be canceled; nothing was changed",
		    n == 1 ? "the task has" : "every task given has");
	} else if (rc) {
		ret = cli_store_failure(rc, "nothing was canceled; writing");
	} else {
		if (r.changed < n)
			cli_warn("%zu of %zu tasks had already finished and were left as they are",
			    n - (size_t)r.changed, n);
		ret = cli_print(cli_render_task, &r.out);
		ops_task_free(&r.out);
	}
out:
	free(uids);
	free(filter);
	return ret;
}

const struct cli_command cli_cmd_cancel = { "cancel", NULL,
	"  cancel UID...                       cancel enqueued or processing tasks\n",
	run_cancel };
