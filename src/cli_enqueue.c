/* The enqueue command: one task from INDEX TYPE and its options (details, custom metadata,
 * priority, delay or not-before, retry policy), or one task per NDJSON line with --batch.
 * It parses them, calls one write operation, renders the summary. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lmtasks/batch.h"
#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/progress.h"
#include "lmtasks/render.h"
#include "lmtasks/report.h"
#include "lmtasks/retry.h"
#include "lmtasks/settings.h"
#include "lmtasks/timefmt.h"

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
