/* The CLI's shared parts: messages, exit codes for library results, opening the store,
 * printing, argument checks. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cli.h"
#include "cli_input.h"
#include "lmtasks/clock.h"
#include "lmtasks/compat.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/event.h"
#include "lmtasks/ops.h"
#include "lmtasks/progress.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/report.h"
#include "lmtasks/task.h"
#include "lmtasks/watch.h"

const char *cli_db;
int cli_v1;

const char *const cli_filter_names[] = {
	"limit", "from", "reverse", "uids", "statuses", "types", "indexUids", "canceledBy",
	"beforeEnqueuedAt", "afterEnqueuedAt", "beforeStartedAt", "afterStartedAt",
	"beforeFinishedAt", "afterFinishedAt", "batchUids",
};

/* Every message of the CLI starts with "lmtasks: ". */
static void
vwarn(const char *fmt, va_list ap)
{
	fputs("lmtasks: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* A message that is no failure (a note about what was done). */
void
cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

/* Messages and exit codes are given together, so neither is forgotten. */
int
cli_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	return code;
}

/* Usage errors point at the command's own --help. */
int
cli_usage(const char *cmd, const char *what)
{
	return cli_fail(EXIT_USAGE, "%s: %s; see `lmtasks %s --help`", cmd, what, cmd);
}

/* Limits are said from their constants, never as copies of their numbers. */
int
cli_usagef(const char *cmd, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return cli_usage(cmd, what);
}

/* Returns 1 when the file system holding path has less than a few pages free. */
static int
disk_full(const char *path)
{
	struct statvfs vfs;

	return statvfs(path, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < 64 * 4096;
}

/* "N bytes free on PATH's file system", in a static buffer, for messages. */
static const char *
disk_free(const char *path)
{
	static char buf[64];
	struct statvfs vfs;

	if (statvfs(path, &vfs) != 0)
		return "its free space unknown";
	snprintf(buf, sizeof(buf), "%llu bytes free",
	    (unsigned long long)vfs.f_bavail * vfs.f_frsize);
	return buf;
}

/* Library results become messages that name the store and the way out. */
int
cli_store_failure(int rc, const char *doing)
{
	struct stat st;

	switch (rc) {
	case LMT_ENOSTORE:
		if (stat(cli_db, &st) == 0 && !S_ISDIR(st.st_mode))
			return cli_fail(EXIT_STORE, "%s is a file, not a store: a store is a directory; "
			    "point --db or LMTASKS_DB at one, or create one elsewhere with `lmtasks --db "
			    "DIR init`", cli_db);
		return cli_fail(EXIT_STORE, "no lmtasks store at %s: create one with "
		    "`lmtasks --db %s init`, or point --db or LMTASKS_DB at an existing one",
		    cli_db, cli_db);
	case LMT_ESCHEMA:
		return cli_fail(EXIT_STORE, "the store at %s was written by another version of "
		    "lmtasks, whose format this one does not read; use that version, or move the "
		    "store aside and `init` a new one", cli_db);
	case EACCES:
	case EPERM:
	case EROFS:
		return cli_fail(EXIT_STORE, "%s %s: %s (readers and writers need write access to "
		    "%s/lock.mdb; writers to data.mdb too)", doing, cli_db, lmt_strerror(rc), cli_db);
	case LMT_EDAMAGED:
		return cli_fail(EXIT_STORE, "%s %s: the store is damaged: %s; nothing was read or "
		    "written. Restore it from a backup", doing, cli_db, store_damage_text());
	case LMT_EREPLACED:
		return cli_fail(EXIT_STORE, "%s %s: its data file was replaced while the store was "
		    "open (copied over it?): %s; nothing was read or written. Restore backups with "
		    "`lmtasks restore DIR`, never by copying data.mdb; to use the copied file as it "
		    "is, first stop every process that has the store open (lmtasks-fcgi, "
		    "lmtasks-writer, lmtasks watch, wait or notify)", doing, cli_db,
		    store_check_replaced_text());
	case EIO:
		/* LMDB reports a short write on a full disk as EIO. */
		if (!disk_full(cli_db))
			break;
		/* fall through */
	case ENOSPC:
	case EDQUOT:
		return cli_fail(EXIT_STORE, "%s %s: the disk is full (%s). Free space on that "
		    "disk (deleting finished tasks, `lmtasks delete --statuses "
		    "succeeded,failed,canceled`, needs less than most writes), then run the command "
		    "again", doing, cli_db, disk_free(cli_db));
	default:
		break;
	}
	return cli_fail(EXIT_STORE, "%s %s: %s", doing, cli_db, lmt_strerror(rc));
}

/* Every command opens the store the same way, with the same messages. */
int
cli_open(unsigned flags, store **s)
{
	enum compat_level level = COMPAT_V025;
	MDB_txn *txn;
	int rc = store_open(cli_db, flags, 0, s);

	if (rc)
		return cli_store_failure(rc, "cannot open the store at");
	/* Tasks print as the store's responder serves them. */
	if ((rc = store_txn_begin(*s, MDB_RDONLY, &txn)) == 0) {
		rc = compat_read(*s, txn, &level);
		mdb_txn_abort(txn);
	}
	if (rc) {
		store_close(*s);
		*s = NULL;
		return cli_store_failure(rc, "reading the store at");
	}
	cli_v1 = level == COMPAT_V1;
	return 0;
}

/* The commands that print what they read open the store and their buffer alike. */
int
cli_open_reader(store **s, struct printbuf **pb)
{
	int ret = cli_open(STORE_RDONLY, s);

	if (ret == 0 && (*pb = printbuf_new()) == NULL) {
		store_close(*s);
		*s = NULL;
		ret = cli_fail(EXIT_STORE, "out of memory");
	}
	return ret;
}

/* What every printing read starts with, so that each says only what it reads. */
int
cli_reader_open(struct cli_reader *r, const char *doing)
{
	int rc, ret = cli_open_reader(&r->s, &r->pb);

	if (ret) {
		*r = (struct cli_reader){ NULL, NULL, NULL };
		return ret;
	}
	if ((rc = store_txn_begin(r->s, MDB_RDONLY, &r->txn)) != 0) {
		r->txn = NULL;
		cli_reader_close(r);
		return cli_store_failure(rc, doing);
	}
	return 0;
}

/* In reverse order of cli_reader_open(). */
void
cli_reader_close(struct cli_reader *r)
{
	if (r->txn)
		mdb_txn_abort(r->txn);
	printbuf_free(r->pb);
	store_close(r->s);
	*r = (struct cli_reader){ NULL, NULL, NULL };
}

/* The list commands differ only in what they walk. */
int
cli_print_list(int (*walk)(store *s, MDB_txn *txn, struct printbuf *pb, void *ctx),
    void *ctx, const char *doing)
{
	struct cli_reader r;
	int rc, ret;

	if ((ret = cli_reader_open(&r, doing)) != 0)
		return ret;
	if ((rc = render_list_open(r.pb)) == 0 && (rc = walk(r.s, r.txn, r.pb, ctx)) == 0)
		rc = report_results_end(r.pb);
	ret = rc ? cli_store_failure(rc, doing) : cli_emit(r.pb);
	cli_reader_close(&r);
	return ret;
}

/* Output is checked: a full pipe or disk is an error, not silence. */
int
cli_emit(struct printbuf *pb)
{
	if (fwrite(pb->buf, 1, (size_t)pb->bpos, stdout) != (size_t)pb->bpos ||
	    fputc('\n', stdout) == EOF)
		return cli_fail(EXIT_STORE, "writing the output: %s", strerror(errno));
	return EXIT_DONE;
}

/* Render, then print: the JSON comes from the renderer only. */
int
cli_print(int (*fn)(struct printbuf *pb, const void *ctx), const void *ctx)
{
	struct printbuf *pb = printbuf_new();
	int ret = pb && fn(pb, ctx) == 0 ? cli_emit(pb) : cli_fail(EXIT_STORE, "out of memory");

	printbuf_free(pb);
	return ret;
}

/* The write commands print the task their operation left alike. */
int
cli_render_task(struct printbuf *pb, const void *ctx)
{
	return render_task_as(pb, &((const struct ops_task *)ctx)->t, cli_v1);
}

/* The delete commands answer alike. */
int
cli_render_deleted(struct printbuf *pb, const void *ctx)
{
	(void)ctx;
	return report_deleted(pb);
}

/* Uids as the HTTP API reads them: decimal, u64, never TASK_NO_UID. */
int
cli_parse_uid(const char *s, uint64_t *uid)
{
	char *end;

	if (*s < '0' || *s > '9' || strlen(s) > 20)
		goto bad;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || errno == ERANGE || v == TASK_NO_UID)
		goto bad;
	*uid = v;
	return 0;
bad:
	return cli_fail(EXIT_USAGE, "`%s` is not a task uid: it should be a whole number like 42", s);
}

/* Fractions allowed: a number of seconds into microseconds. */
int
cli_parse_seconds(const char *opt, const char *s, int64_t *us)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end || errno || !(v >= 0) || v > 1e9)
		return cli_fail(EXIT_USAGE, "%s `%s` is not a number of seconds (like 30 or 0.5)",
		    opt, s);
	*us = (int64_t)(v * 1e6);
	return 0;
}

/* Index uids checked before the store is opened. */
int
cli_check_index(const char *s)
{
	if (!task_index_uid_valid(s, strlen(s)))
		return cli_fail(EXIT_USAGE, "`%s` is not a valid index uid: use 1 to %d characters "
		    "among A-Z a-z 0-9 - and _", s, TASK_INDEX_MAX);
	return 0;
}

/* Types checked before the store is opened. */
int
cli_check_type(const char *s)
{
	if (!task_type_valid(s, strlen(s)))
		return cli_fail(EXIT_USAGE, "`%s` is not a valid task type: use a camelCase word "
		    "of up to %d letters and digits, like documentAddition", s, TASK_TYPE_MAX);
	return 0;
}

/* A filter flag means what the URL parameter of its name means, with its message. */
static int
filter_set(const char *cmd, struct query *q, int id, const char *value, const char **name)
{
	struct query_error err;
	const char *n = cli_filter_names[id - CLI_FILTER];
	const char *v = value ? value : "true";	/* a bare --reverse */

	if (name)
		*name = n;
	if (query_set(q, n, v, strlen(v), &err) != 0)
		return cli_fail(EXIT_USAGE, "%s: %s", cmd, err.message);
	return 0;
}

/* The commands that select tasks by filters (watch, webhook add) take no paging. */
int
cli_filter_set(const char *cmd, struct query *q, int id, const char *value, const char **name)
{
	if (id < CLI_FILTER + CLI_FILTER_PAGING)
		return cli_usage(cmd, "it takes the filters of list but no paging "
		    "(--limit, --from, --reverse)");
	return filter_set(cmd, q, id, value, name);
}

/* list and batch list: every option is a filter. */
int
cli_filters(const struct cli_args *a, struct query *q)
{
	int ret;

	for (size_t i = 0; i < a->nopts; i++) {
		if ((ret = filter_set(a->cmd, q, a->opts[i].id, a->opts[i].value, NULL)) != 0)
			return ret;
	}
	return 0;
}

/* Files and standard input read alike, whole, before anything is written. */
int
cli_read_input(const char *arg, char **text, size_t *len, const struct progress *p)
{
	FILE *f = strcmp(arg, "-") == 0 ? stdin : fopen(arg, "rb");
	int rc;

	if (f == NULL)
		return cli_fail(EXIT_USAGE, "cannot read %s: %s", arg, strerror(errno));
	rc = cli_input_read(f, text, len, p);
	if (f != stdin)
		fclose(f);
	if (rc)
		return cli_fail(EXIT_USAGE, "cannot read %s: %s", arg, strerror(rc));
	return 0;
}

/* --details in its three forms, normalised once on the write side. */
int
cli_details(const char *arg, char **out, size_t *outlen)
{
	char *text = NULL;
	size_t len;
	const char *why;
	int rc, ret;

	if (strcmp(arg, "-") == 0 || arg[0] == '@') {
		if ((ret = cli_read_input(arg[0] == '@' ? arg + 1 : arg, &text, &len, NULL)) != 0)
			return ret;
	}
	rc = details_normalize(text ? text : arg, text ? len : strlen(arg), out, outlen, &why);
	free(text);
	if (rc == LMT_EINVAL)
		return cli_fail(EXIT_USAGE, "--details must be a JSON object, like "
		    "'{\"receivedDocuments\":10}': %s", why);
	if (rc)
		return cli_fail(EXIT_STORE, "--details: %s", lmt_strerror(rc));
	return 0;
}

/* What cli_wait_for() runs on its loop. */
struct waiting {
	int (*check)(void *ctx);
	int (*timed)(void *ctx, int64_t *wake);	/* instead of check: cli_wait_for_timed() */
	void *ctx;
	int ret;
	int over;	/* the time ran out */
	uint64_t timer;	/* the wake the last look asked for ... */
	int armed;	/* ... while set */
};

static int64_t wake_up(event_loop *el, void *ctx);

static void
look(event_loop *el, void *ctx)
{
	struct waiting *w = ctx;
	int64_t wake = 0;

	w->ret = w->timed ? w->timed(w->ctx, &wake) : w->check(w->ctx);
	if (w->ret != CLI_AGAIN) {
		event_stop(el);
		return;
	}
	if (wake <= 0)
		return;
	int64_t after = wake - clock_now();
	if (after < 1)
		after = 1;
	if (w->armed && event_timer_move(el, w->timer, after) == 0)
		return;
	w->armed = event_timer_add(el, after, wake_up, w, &w->timer) == 0;
}

/* The time a look asked to be woken at. */
static int64_t
wake_up(event_loop *el, void *ctx)
{
	struct waiting *w = ctx;

	w->armed = 0;
	look(el, w);
	return EVENT_NOMORE;
}

/* The time is up: one last look, whatever it finds. */
static int64_t
last_look(event_loop *el, void *ctx)
{
	struct waiting *w = ctx;
	int64_t wake;

	w->ret = w->timed ? w->timed(w->ctx, &wake) : w->check(w->ctx);
	w->over = 1;
	event_stop(el);
	return EVENT_NOMORE;
}

/* wait, claim --wait and watch sleep on the store's watch, between commits at no cost. */
static int
wait_run(struct waiting *w, int64_t timeout_us)
{
	event_loop *el;
	int64_t wake;
	int rc;

	if (timeout_us == 0)
		return w->timed ? w->timed(w->ctx, &wake) : w->check(w->ctx);
	if ((rc = event_new(&el)) != 0)
		return cli_fail(EXIT_STORE, "out of memory");
	/* Watched before the first look, so that no commit falls between the two. */
	if ((rc = event_watch(el, cli_db, WATCH_POLL_MS * INT64_C(1000), look, w)) != 0 ||
	    (timeout_us > 0 && (rc = event_timer_add(el, timeout_us, last_look, w, NULL)) != 0)) {
		event_free(el);
		return cli_fail(EXIT_STORE, "out of memory");
	}
	look(el, w);
	while (w->ret == CLI_AGAIN && !w->over && ((rc = event_run(el)) == 0 || rc == EINTR))
		;
	event_free(el);
	if (rc != 0 && rc != EINTR)
		return cli_fail(EXIT_STORE, "waiting for the store to change: %s", strerror(rc));
	return w->ret;
}

int
cli_wait_for(int (*check)(void *ctx), void *ctx, int64_t timeout_us)
{
	struct waiting w = { check, NULL, ctx, CLI_AGAIN, 0, 0, 0 };

	return wait_run(&w, timeout_us);
}

int
cli_wait_for_timed(int (*check)(void *ctx, int64_t *wake), void *ctx, int64_t timeout_us)
{
	struct waiting w = { NULL, check, ctx, CLI_AGAIN, 0, 0, 0 };

	return wait_run(&w, timeout_us);
}
