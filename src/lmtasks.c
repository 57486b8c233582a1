/* lmtasks: the companion CLI and the only writer of the task store (SPEC §3). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "lmtasks/auth.h"
#include "lmtasks/batch.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/store.h"
#include "lmtasks/task.h"
#include "lmtasks/timefmt.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

enum exit_code {
	EXIT_DONE = 0,
	EXIT_NOTFOUND = 1,
	EXIT_USAGE = 2,
	EXIT_REFUSED = 3,
	EXIT_STORE = 4,
	EXIT_TIMEOUT = 124,
};

static const char *db_path;

static const char usage_text[] =
"usage: lmtasks [--db PATH] COMMAND [ARGS...]\n"
"\n"
"The companion CLI of the lmtasks store: the only program that writes it.\n"
"The store is --db PATH, else $LMTASKS_DB, else " LMTASKS_DEFAULT_DB ".\n"
"\n"
"Commands:\n"
"  init [--group GROUP] [--mode MODE]  create the store; --group lets GROUP's members\n"
"                                      (the web server's user) read it; MODE is the\n"
"                                      data file's octal mode (0640 with a group, else\n"
"                                      0600); lock.mdb gets group write with group read\n"
"  enqueue INDEX TYPE [--details JSON|@FILE|-]\n"
"                                      add a task; prints its summary\n"
"  enqueue --batch [FILE|-]            add one task per NDJSON line\n"
"                                      ({\"indexUid\",\"type\",\"details\"}), all or none\n"
"  start UID [--lease SECONDS [--requeue]]\n"
"                                      mark an enqueued task processing\n"
"  claim [--index I] [--type T] [--wait SECONDS] [--lease SECONDS [--requeue]]\n"
"                                      take the oldest enqueued task that matches;\n"
"                                      with a lease, it fails (or with --requeue goes\n"
"                                      back to the queue) unless heartbeats extend it\n"
"  heartbeat UID [--lease SECONDS] [--started-at TIME]\n"
"                                      extend a processing task's lease\n"
"  succeed UID [--details JSON|@FILE|-] [--started-at TIME]\n"
"                                      finish a processing task; details are merged\n"
"  fail UID --code CODE --message TEXT [--type invalid_request|internal|auth]\n"
"       [--started-at TIME]            fail a processing task (type defaults to internal);\n"
"                                      --started-at refuses if the task was claimed again\n"
"  reap                                end the leases that expired (any write does too)\n"
"  cancel UID...                       cancel enqueued or processing tasks\n"
"  get UID                             print a task as the HTTP API serves it\n"
"  list [--limit N] [--from UID] [--reverse] [FILTERS]\n"
"                                      a page of tasks, newest first; FILTERS are\n"
"                                      --uids, --statuses, --types, --indexUids,\n"
"                                      --canceledBy (comma lists, * for any) and\n"
"                                      --beforeEnqueuedAt, --afterEnqueuedAt,\n"
"                                      --beforeStartedAt, --afterStartedAt,\n"
"                                      --beforeFinishedAt, --afterFinishedAt (RFC 3339\n"
"                                      or YYYY-MM-DD), as the HTTP API's parameters\n"
"  wait UID [--timeout SECONDS]        block until the task is finished; print it\n"
"  delete UID... | --before DATE | --keep N | [FILTERS]\n"
"                                      remove finished tasks (never enqueued or\n"
"                                      processing ones) and record a taskDeletion task\n"
"  index list                          the indexes\n"
"  index delete NAME                   remove an index; its tasks stay under /tasks\n"
"  key create [--indexes a,b*] [--description TEXT] [--expires-at DATE]\n"
"                                      make an API key; prints it, the only time\n"
"  key list                            the keys, without their secrets\n"
"  key delete KEY|UID                  revoke a key\n"
"  stats                               counts and sizes\n"
"  check                               verify every record and index entry\n"
"\n"
"Every command takes --help.  Exit status: 0 done; 1 no such task (or nothing to\n"
"claim); 2 usage; 3 transition refused; 4 store error; 124 wait timed out.\n";

__attribute__((format(printf, 1, 2)))
static void
warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("lmtasks: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Says what is wrong and returns the exit code it deserves. */
__attribute__((format(printf, 2, 3)))
static int
fail_with(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("lmtasks: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* Maps a library result to an exit status, with a message that names the store. */
static int
store_failure(int rc, const char *doing)
{
	struct stat st;

	switch (rc) {
	case LMT_ENOSTORE:
		if (stat(db_path, &st) == 0 && !S_ISDIR(st.st_mode))
			return fail_with(EXIT_STORE, "%s is a file, not a store: a store is a directory; "
			    "point --db or LMTASKS_DB at one, or create one elsewhere with `lmtasks --db "
			    "DIR init`", db_path);
		return fail_with(EXIT_STORE, "no lmtasks store at %s: create one with "
		    "`lmtasks --db %s init`, or point --db or LMTASKS_DB at an existing one",
		    db_path, db_path);
	case LMT_ESCHEMA:
		return fail_with(EXIT_STORE, "the store at %s was written by another version of "
		    "lmtasks, whose format this one does not read; use that version, or move the "
		    "store aside and `init` a new one", db_path);
	case EACCES:
	case EPERM:
	case EROFS:
		return fail_with(EXIT_STORE, "%s %s: %s (readers and writers need write access to "
		    "%s/lock.mdb; writers to data.mdb too)", doing, db_path, lmt_strerror(rc), db_path);
	case ENOSPC:
		return fail_with(EXIT_STORE, "%s %s: the disk is full; nothing was written. Free "
		    "space and run the command again", doing, db_path);
	default:
		return fail_with(EXIT_STORE, "%s %s: %s", doing, db_path, lmt_strerror(rc));
	}
}

static int
open_store(unsigned flags, store **s)
{
	int rc = store_open(db_path, flags, 0, s);

	return rc ? store_failure(rc, "cannot open the store at") : 0;
}

/* Prints pb and a newline to stdout. */
static int
emit(struct printbuf *pb)
{
	if (fwrite(pb->buf, 1, (size_t)pb->bpos, stdout) != (size_t)pb->bpos ||
	    fputc('\n', stdout) == EOF)
		return fail_with(EXIT_STORE, "writing the output: %s", strerror(errno));
	return EXIT_DONE;
}

static int
parse_uid(const char *s, uint64_t *uid)
{
	char *end;

	if (*s < '0' || *s > '9' || strlen(s) > 20)
		return fail_with(EXIT_USAGE, "`%s` is not a task uid: it should be a whole number "
		    "like 42", s);
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || errno == ERANGE || v == TASK_NO_UID)
		return fail_with(EXIT_USAGE, "`%s` is not a task uid: it should be a whole number "
		    "like 42", s);
	*uid = v;
	return 0;
}

/* Parses a number of seconds (fractions allowed) into microseconds. */
static int
parse_seconds(const char *opt, const char *s, int64_t *us)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end || errno || !(v >= 0) || v > 1e9)
		return fail_with(EXIT_USAGE, "%s `%s` is not a number of seconds (like 30 or 0.5)",
		    opt, s);
	*us = (int64_t)(v * 1e6);
	return 0;
}

static int
check_index(const char *s)
{
	if (!task_index_uid_valid(s, strlen(s)))
		return fail_with(EXIT_USAGE, "`%s` is not a valid index uid: use 1 to 400 characters "
		    "among A-Z a-z 0-9 - and _", s);
	return 0;
}

static int
check_type(const char *s)
{
	if (!task_type_valid(s, strlen(s)))
		return fail_with(EXIT_USAGE, "`%s` is not a valid task type: use a camelCase word "
		    "of up to 64 letters and digits, like documentAddition", s);
	return 0;
}

/* Reads all of a stream into a NUL-terminated malloc'd buffer. */
static int
slurp(FILE *f, char **out, size_t *outlen)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *nbuf;

	if (buf == NULL)
		return ENOMEM;
	for (;;) {
		if (cap - len < 2) {
			if ((nbuf = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return ENOMEM;
			}
			buf = nbuf;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno ? errno : EIO;
		free(buf);
		return e;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* Reads the whole input named by arg: "-" for stdin, else a file path. */
static int
read_input(const char *arg, char **text, size_t *len)
{
	FILE *f = strcmp(arg, "-") == 0 ? stdin : fopen(arg, "rb");
	int rc;

	if (f == NULL)
		return fail_with(EXIT_USAGE, "cannot read %s: %s", arg, strerror(errno));
	rc = slurp(f, text, len);
	if (f != stdin)
		fclose(f);
	if (rc)
		return fail_with(EXIT_USAGE, "cannot read %s: %s", arg, strerror(rc));
	return 0;
}

/* --details JSON | @FILE | - : returns the normalised object text. */
static int
details_arg(const char *arg, char **out, size_t *outlen)
{
	char *text = NULL;
	size_t len;
	const char *why;
	int rc;

	if (strcmp(arg, "-") == 0 || arg[0] == '@') {
		if ((rc = read_input(arg[0] == '@' ? arg + 1 : arg, &text, &len)) != 0)
			return rc;
	}
	rc = details_normalize(text ? text : arg, text ? len : strlen(arg), out, outlen, &why);
	free(text);
	if (rc == LMT_EINVAL)
		return fail_with(EXIT_USAGE, "--details must be a JSON object, like "
		    "'{\"receivedDocuments\":10}': %s", why);
	if (rc)
		return fail_with(EXIT_STORE, "--details: %s", lmt_strerror(rc));
	return 0;
}

/* getopt_long over a command's arguments; -h/--help prints the command's usage. */
static int
help_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

static int
print_command_help(const char *cmd)
{
	/* Each command's line in the main usage is its help. */
	const char *p = strstr(usage_text, "Commands:\n");
	char needle[64];

	snprintf(needle, sizeof(needle), "\n  %s", cmd);
	printf("usage: lmtasks [--db PATH] %s\n\n", cmd);
	for (p = strstr(p, needle); p; p = strstr(p + 1, needle)) {
		const char *end = p + 1;
		/* The entry runs until the next line that starts a command. */
		while ((end = strchr(end, '\n')) && strncmp(end + 1, "    ", 4) == 0)
			end++;
		fwrite(p + 1, 1, (size_t)((end ? end : p + strlen(p)) - p), stdout);
	}
	printf("\nSee `lmtasks --help` for the store, the exit status and the other commands.\n");
	return EXIT_DONE;
}

/* The option getopt last refused, for the message. */
static const char *bad_option;
static int bad_option_missing;

static int
bad_usage(const char *cmd, const char *what)
{
	if (strcmp(what, "unknown option") == 0 && bad_option)
		return fail_with(EXIT_USAGE, "%s: %s `%s`; see `lmtasks %s --help`", cmd,
		    bad_option_missing ? "a value is missing after" : "unknown option", bad_option, cmd);
	return fail_with(EXIT_USAGE, "%s: %s; see `lmtasks %s --help`", cmd, what, cmd);
}

/* Runs getopt_long over argv, options anywhere among the arguments; returns the option,
 * -1 at the end, or '?' (already reported). */
static int
next_opt_index(int argc, char **argv, const struct option *opts, int *idx)
{
	int c = getopt_long(argc, argv, ":", opts, idx);

	if (c == '?' || c == ':') {
		bad_option = argv[optind - 1];
		bad_option_missing = c == ':';
		return '?';
	}
	return c;
}

static int
next_opt(int argc, char **argv, const struct option *opts)
{
	return next_opt_index(argc, argv, opts, NULL);
}

/* ---- init ---- */

/*
 * Gives the store to a group of readers: the files and the directory belong to
 * group, data.mdb gets mode, lock.mdb the same plus group write (LMDB readers write
 * their slot in it), the directory setgid so that a recreated lock file keeps the group.
 */
static int
share_store(gid_t gid, unsigned mode)
{
	char data[PATH_MAX], lock[PATH_MAX];
	unsigned lock_mode = mode | (mode & 0040 ? 0020 : 0);
	mode_t dir = 0700 | (mode & 0040 ? 0050 : 0) | (mode & 0004 ? 0005 : 0) |
	    (gid != (gid_t)-1 ? S_ISGID : 0);

	snprintf(data, sizeof(data), "%s/data.mdb", db_path);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", db_path);
	if (gid != (gid_t)-1 &&
	    (chown(db_path, (uid_t)-1, gid) != 0 || chown(data, (uid_t)-1, gid) != 0 ||
	     chown(lock, (uid_t)-1, gid) != 0))
		return errno;
	if (chmod(db_path, dir) != 0 || chmod(data, mode) != 0 || chmod(lock, lock_mode) != 0)
		return errno;
	return 0;
}

static int
cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "group", required_argument, NULL, 'g' },
		{ 0 }
	};
	unsigned mode = 0;
	gid_t gid = (gid_t)-1;
	store *s;
	int c, rc;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c == 'm') {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);
			if (*optarg == '\0' || *end || m > 0777 || (m & 0600) != 0600)
				return bad_usage("init", "--mode wants an octal file mode such as 0640 "
				    "that lets the owner read and write");
			mode = (unsigned)m;
		} else if (c == 'g') {
			struct group *gr = getgrnam(optarg);
			if (gr == NULL)
				return bad_usage("init", "--group names no group of this system");
			gid = gr->gr_gid;
		} else {
			return bad_usage("init", "unknown option");
		}
	}
	if (optind != argc)
		return bad_usage("init", "it takes no arguments");
	char data[PATH_MAX];
	struct stat st;
	snprintf(data, sizeof(data), "%s/data.mdb", db_path);
	/* An existing store keeps its access unless --group or --mode asks otherwise. */
	int fresh = stat(data, &st) != 0, asked = gid != (gid_t)-1 || mode != 0;
	if (mode == 0)
		mode = gid != (gid_t)-1 ? 0640 : 0600;
	if ((rc = store_open(db_path, STORE_CREATE, mode, &s)) != 0)
		return store_failure(rc, "cannot create the store at");
	store_close(s);
	if ((fresh || asked) && (rc = share_store(gid, mode)) != 0)
		return fail_with(EXIT_STORE, "the store at %s is made, but setting its group or mode "
		    "failed: %s (only the owner, or root, can give it to a group it belongs to)",
		    db_path, strerror(rc));
	fprintf(stderr, "lmtasks: store ready at %s\n", db_path);
	return EXIT_DONE;
}

/* ---- enqueue ---- */

struct add_ctx {
	struct task *tasks;
	size_t n;
	int64_t now;
};

static int
add_all(store *s, MDB_txn *txn, void *ctx)
{
	struct add_ctx *a = ctx;

	for (size_t i = 0; i < a->n; i++)
		a->tasks[i].enqueued_at = a->now;
	return store_add_many(s, txn, a->tasks, a->n);
}

static int
print_batch(const struct add_ctx *a)
{
	if (a->n == 0)
		printf("{\"enqueued\":0,\"firstUid\":null,\"lastUid\":null}\n");
	else
		printf("{\"enqueued\":%zu,\"firstUid\":%" PRIu64 ",\"lastUid\":%" PRIu64 "}\n", a->n,
		    a->tasks[0].uid, a->tasks[a->n - 1].uid);
	return EXIT_DONE;
}

static int
enqueue_batch(const char *input)
{
	struct add_ctx a = { NULL, 0, 0 };
	struct batch *b = NULL;
	char *text = NULL, why[256];
	size_t len, line = 0;
	store *s = NULL;
	int rc, ret;

	if ((ret = read_input(input, &text, &len)) != 0)
		return ret;
	rc = batch_parse(text, len, &b, &line, why, sizeof(why));
	free(text);
	if (rc == LMT_EINVAL)
		return fail_with(EXIT_USAGE, "line %zu: %s; nothing was enqueued", line, why);
	if (rc)
		return fail_with(EXIT_STORE, "line %zu: %s; nothing was enqueued", line, lmt_strerror(rc));
	a.tasks = batch_tasks(b);
	a.n = batch_count(b);
	if ((ret = open_store(0, &s)) != 0)
		goto out;
	a.now = timefmt_now();
	if ((rc = store_write(s, add_all, &a)) != 0) {
		ret = store_failure(rc, "nothing was enqueued; writing");
		goto out;
	}
	ret = print_batch(&a);
out:
	store_close(s);
	batch_free(b);
	return ret;
}

static int
cmd_enqueue(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "details", required_argument, NULL, 'd' },
		{ "batch", no_argument, NULL, 'b' },
		{ 0 }
	};
	const char *details = NULL;
	int batch = 0, c, rc, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c == 'd')
			details = optarg;
		else if (c == 'b')
			batch = 1;
		else
			return bad_usage("enqueue", "unknown option");
	}
	if (batch) {
		if (details || argc - optind > 1)
			return bad_usage("enqueue", "--batch takes one FILE (or - for standard input) "
			    "and no --details");
		return enqueue_batch(optind < argc ? argv[optind] : "-");
	}
	if (argc - optind != 2)
		return bad_usage("enqueue", "it wants INDEX and TYPE");
	const char *index = argv[optind], *type = argv[optind + 1];
	if ((ret = check_index(index)) || (ret = check_type(type)))
		return ret;

	char *dtext = NULL;
	size_t dlen = 2;
	if (details && (ret = details_arg(details, &dtext, &dlen)) != 0)
		return ret;
	struct task t;
	task_init(&t, index, strlen(index), type, strlen(type), dtext ? dtext : "{}", dlen);
	struct add_ctx a = { &t, 1, timefmt_now() };
	store *s;
	if ((ret = open_store(0, &s)) != 0)
		goto out;
	if ((rc = store_write(s, add_all, &a)) != 0) {
		ret = store_failure(rc, "nothing was enqueued; writing");
	} else {
		struct printbuf *pb = printbuf_new();
		ret = pb && render_task_summary(pb, &t) == 0 ? emit(pb) : fail_with(EXIT_STORE, "out of memory");
		printbuf_free(pb);
	}
	store_close(s);
out:
	free(dtext);
	return ret;
}

/* ---- transitions: start, claim, succeed, fail ---- */

struct change {
	uint64_t uid;
	enum task_status to;
	const char *details;		/* succeed: to merge */
	size_t details_len;
	const char *code, *message;	/* fail */
	enum task_error_type etype;
	struct task_str claim_index, claim_type;
	int claim;
	int heartbeat;			/* extend the lease; the status stays */
	int64_t lease;			/* µs; 0: no lease */
	int requeue;
	int64_t started_at;		/* --started-at: the claim being finished; 0: any */
	/* results */
	enum task_status was;
	int expired;			/* refused because the task's lease had expired */
	int reclaimed;			/* refused: claimed again since --started-at */
	int no_lease;			/* heartbeat of a task with no lease and no --lease */
	char *rendered;
	size_t rendered_len;
};

/* Keeps the rendered task: the transaction's pages go away with the commit. */
static int
keep_render(struct change *ch, const struct task *t)
{
	struct printbuf *pb = printbuf_new();
	int rc = pb ? render_task(pb, t) : ENOMEM;

	if (rc == 0) {
		free(ch->rendered);
		ch->rendered = strndup(pb->buf, (size_t)pb->bpos);
		ch->rendered_len = (size_t)pb->bpos;
		rc = ch->rendered ? 0 : ENOMEM;
	}
	printbuf_free(pb);
	return rc;
}

static int
apply_change(store *s, MDB_txn *txn, void *ctx)
{
	struct change *ch = ctx;
	struct task old, next;
	const char *why;
	char *merged = NULL;
	int64_t now = timefmt_now();
	int rc;

	if (ch->claim) {
		rc = store_find_enqueued(s, txn, ch->claim_index, ch->claim_type, &ch->uid);
		if (rc)
			return rc;
	}
	if ((rc = store_get(s, txn, ch->uid, &old)) != 0)
		return rc;
	ch->was = old.status;
	ch->expired = (old.status == TASK_ENQUEUED && old.lease_expired) ||
	    (old.status == TASK_FAILED && old.error_code.len == 18 &&
	     memcmp(old.error_code.ptr, "task_lease_expired", 18) == 0);
	if (ch->heartbeat ? old.status != TASK_PROCESSING : !task_transition_allowed(old.status, ch->to))
		return LMT_ETRANSITION;
	if (ch->started_at && old.started_at != ch->started_at) {
		ch->reclaimed = 1;
		return LMT_ETRANSITION;
	}
	next = old;
	if (ch->heartbeat) {
		int64_t lease = ch->lease ? ch->lease : (int64_t)old.lease_ms * 1000;
		if (lease == 0) {
			ch->no_lease = 1;
			return LMT_EINVAL;
		}
		next.lease_until = now + lease;
		next.lease_ms = (uint32_t)(lease / 1000);
		if ((rc = store_replace(s, txn, &old, &next)) == 0)
			rc = keep_render(ch, &next);
		return rc;
	}
	next.status = ch->to;
	/* A finished task holds no lease. */
	next.lease_until = 0;
	switch (ch->to) {
	case TASK_PROCESSING:
		next.started_at = now;
		next.lease_expired = 0;
		next.requeue = (unsigned)ch->requeue;
		next.lease_until = ch->lease ? now + ch->lease : 0;
		next.lease_ms = (uint32_t)(ch->lease / 1000);
		break;
	case TASK_SUCCEEDED:
		next.finished_at = now;
		if (ch->details) {
			size_t len;
			if ((rc = details_merge(old.details.ptr, old.details.len, ch->details,
			    ch->details_len, &merged, &len, &why)) != 0)
				/* The new details were checked already: the stored ones are bad. */
				return rc == LMT_EINVAL ? LMT_ECORRUPT : rc;
			next.details.ptr = merged;
			next.details.len = len;
		}
		break;
	case TASK_FAILED:
		next.finished_at = now;
		next.error_code.ptr = ch->code;
		next.error_code.len = strlen(ch->code);
		next.error_message.ptr = ch->message;
		next.error_message.len = strlen(ch->message);
		next.error_type = ch->etype;
		break;
	default:
		return LMT_EINVAL;
	}
	if ((rc = store_replace(s, txn, &old, &next)) == 0)
		rc = keep_render(ch, &next);
	free(merged);
	return rc;
}

static int
refused(const struct change *ch)
{
	static const char *const verbs[TASK_NSTATUS] = {
		[TASK_PROCESSING] = "started", [TASK_SUCCEEDED] = "succeeded",
		[TASK_FAILED] = "failed", [TASK_CANCELED] = "canceled",
	};
	const char *hint = ch->was == TASK_ENQUEUED ? "; start or claim it first" :
	    task_status_terminal(ch->was) ? "; a finished task is final" : "";

	if (ch->reclaimed)
		return fail_with(EXIT_REFUSED, "task %" PRIu64 " was claimed again since the claim "
		    "given by --started-at (its lease expired); leave it to its new worker; nothing "
		    "was changed", ch->uid);
	if (ch->expired && ch->was == TASK_ENQUEUED)
		return fail_with(EXIT_REFUSED, "task %" PRIu64 "'s lease expired, so it went back "
		    "to the queue and must be claimed again; nothing was changed", ch->uid);
	if (ch->expired)
		return fail_with(EXIT_REFUSED, "task %" PRIu64 "'s lease expired, so it was failed "
		    "with task_lease_expired; send heartbeats more often than the lease; nothing "
		    "was changed", ch->uid);
	if (ch->heartbeat)
		return fail_with(EXIT_REFUSED, "task %" PRIu64 " is %s: only a processing task "
		    "takes heartbeats; nothing was changed", ch->uid, task_status_name(ch->was));
	return fail_with(EXIT_REFUSED, "task %" PRIu64 " is %s, so it cannot be %s%s; nothing "
	    "was changed", ch->uid, task_status_name(ch->was), verbs[ch->to], hint);
}

static int
run_change(store *s, struct change *ch)
{
	int rc = store_write(s, apply_change, ch);

	if (rc == MDB_NOTFOUND)
		return ch->claim ? EXIT_NOTFOUND
		    : fail_with(EXIT_NOTFOUND, "task %" PRIu64 " not found", ch->uid);
	if (rc == LMT_ETRANSITION)
		return refused(ch);
	if (rc == LMT_EINVAL && ch->no_lease)
		return fail_with(EXIT_USAGE, "task %" PRIu64 " was started without a lease: give "
		    "heartbeat --lease SECONDS", ch->uid);
	if (rc == LMT_ECORRUPT)
		return fail_with(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt; "
		    "run `lmtasks check`; nothing was changed", ch->uid);
	if (rc)
		return store_failure(rc, "nothing was changed; writing");
	if (fwrite(ch->rendered, 1, ch->rendered_len, stdout) != ch->rendered_len ||
	    fputc('\n', stdout) == EOF)
		return fail_with(EXIT_STORE, "writing the output: %s", strerror(errno));
	return EXIT_DONE;
}

static int
change_one(struct change *ch)
{
	store *s;
	int ret;

	if ((ret = open_store(0, &s)) != 0)
		return ret;
	ret = run_change(s, ch);
	store_close(s);
	free(ch->rendered);
	return ret;
}

#define LEASE_MAX_US (INT64_C(30) * 86400 * 1000000)

/* --lease SECONDS: up to 30 days, at least a millisecond. */
static int
parse_lease(const char *cmd, const char *arg, int64_t *us)
{
	int ret = parse_seconds("--lease", arg, us);

	if (ret == 0 && (*us < 1000 || *us > LEASE_MAX_US))
		return bad_usage(cmd, "--lease is from 0.001 to 2592000 seconds (30 days)");
	return ret;
}

/* --started-at TIME: the startedAt the worker's claim printed. */
static int
parse_started_at(const char *cmd, const char *arg, int64_t *us)
{
	int date_only;

	if (timefmt_parse(arg, strlen(arg), us, &date_only) != 0 || date_only)
		return bad_usage(cmd, "--started-at wants the task's startedAt, like "
		    "2026-01-02T03:04:05.123456Z");
	return 0;
}

static int
cmd_start(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lease", required_argument, NULL, 'l' },
		{ "requeue", no_argument, NULL, 'r' },
		{ 0 }
	};
	struct change ch = { .to = TASK_PROCESSING };
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c == 'l' && (ret = parse_lease("start", optarg, &ch.lease)) != 0)
			return ret;
		else if (c == 'r')
			ch.requeue = 1;
		else if (c != 'l')
			return bad_usage("start", "unknown option");
	}
	if (ch.requeue && !ch.lease)
		return bad_usage("start", "--requeue goes with --lease");
	if (argc - optind != 1)
		return bad_usage("start", "it wants one UID");
	if ((ret = parse_uid(argv[optind], &ch.uid)) != 0)
		return ret;
	return change_one(&ch);
}

/* Watches the store's data file so that waiting costs nothing between commits. */
static int
watch_open(void)
{
	char path[PATH_MAX];
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/data.mdb", db_path);
	if (inotify_add_watch(fd, path, IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sleeps until the store may have changed, or us pass.  The data file's change comes
 * a moment before LMDB publishes the transaction in lock.mdb (written through a map,
 * unseen by inotify), so after an event the next few waits are short re-checks.  A
 * lost event costs at most 250 ms.
 */
static void
watch_wait(int fd, int64_t us, int *recheck)
{
	int64_t cap = *recheck > 0 ? 10 : fd < 0 ? 50 : 250, m = us / 1000 + 1;
	int ms = (int)(m < cap ? m : cap);
	char buf[4096];

	if (*recheck > 0)
		--*recheck;
	if (fd < 0) {
		poll(NULL, 0, ms);
		return;
	}
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, ms) > 0) {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		*recheck = 20;	/* 200 ms of short waits: the commit may still be syncing */
	}
}

static int
cmd_claim(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "index", required_argument, NULL, 'i' },
		{ "type", required_argument, NULL, 't' },
		{ "wait", required_argument, NULL, 'w' },
		{ "lease", required_argument, NULL, 'l' },
		{ "requeue", no_argument, NULL, 'r' },
		{ 0 }
	};
	struct change ch = { .to = TASK_PROCESSING, .claim = 1 };
	int64_t wait = 0;
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'i':
			if ((ret = check_index(optarg)) != 0)
				return ret;
			ch.claim_index = (struct task_str){ optarg, strlen(optarg) };
			break;
		case 't':
			if ((ret = check_type(optarg)) != 0)
				return ret;
			ch.claim_type = (struct task_str){ optarg, strlen(optarg) };
			break;
		case 'w':
			if ((ret = parse_seconds("--wait", optarg, &wait)) != 0)
				return ret;
			break;
		case 'l':
			if ((ret = parse_lease("claim", optarg, &ch.lease)) != 0)
				return ret;
			break;
		case 'r':
			ch.requeue = 1;
			break;
		default:
			return bad_usage("claim", "unknown option");
		}
	}
	if (ch.requeue && !ch.lease)
		return bad_usage("claim", "--requeue goes with --lease");
	if (optind != argc)
		return bad_usage("claim", "it takes no arguments, only --index, --type and --wait");

	store *s;
	if ((ret = open_store(0, &s)) != 0)
		return ret;
	int fd = wait > 0 ? watch_open() : -1, recheck = 0;
	int64_t deadline = timefmt_now() + wait;
	for (;;) {
		ret = run_change(s, &ch);
		int64_t left = deadline - timefmt_now();
		/* A task claimed by another worker between find and commit cannot happen:
		 * the find runs inside the same write transaction. */
		if (ret != EXIT_NOTFOUND || left <= 0)
			break;
		watch_wait(fd, left, &recheck);
	}
	if (ret == EXIT_NOTFOUND)
		warnx("no enqueued task to claim%s", wait > 0 ? " before the wait ran out" : "");
	if (fd >= 0)
		close(fd);
	store_close(s);
	free(ch.rendered);
	return ret;
}

static int
cmd_succeed(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "details", required_argument, NULL, 'd' },
		{ "started-at", required_argument, NULL, 's' },
		{ 0 }
	};
	struct change ch = { .to = TASK_SUCCEEDED };
	char *details = NULL;
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c == 's') {
			if ((ret = parse_started_at("succeed", optarg, &ch.started_at)) != 0)
				goto out;
			continue;
		}
		if (c != 'd') {
			ret = bad_usage("succeed", "unknown option");
			goto out;
		}
		free(details);
		details = NULL;
		if ((ret = details_arg(optarg, &details, &ch.details_len)) != 0)
			goto out;
	}
	ch.details = details;
	if (argc - optind != 1)
		ret = bad_usage("succeed", "it wants one UID");
	else if ((ret = parse_uid(argv[optind], &ch.uid)) == 0)
		ret = change_one(&ch);
out:
	free(details);
	return ret;
}

static int
cmd_fail(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "code", required_argument, NULL, 'c' },
		{ "message", required_argument, NULL, 'm' },
		{ "type", required_argument, NULL, 't' },
		{ "started-at", required_argument, NULL, 's' },
		{ 0 }
	};
	struct change ch = { .to = TASK_FAILED, .etype = TASK_ERR_INTERNAL };
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'c':
			ch.code = optarg;
			break;
		case 'm':
			ch.message = optarg;
			break;
		case 't':
			if (task_error_type_parse(optarg, &ch.etype) != 0)
				return bad_usage("fail", "--type is one of invalid_request, internal, auth");
			break;
		case 's':
			if ((ret = parse_started_at("fail", optarg, &ch.started_at)) != 0)
				return ret;
			break;
		default:
			return bad_usage("fail", "unknown option");
		}
	}
	if (argc - optind != 1 || !ch.code || !ch.message)
		return bad_usage("fail", "it wants UID, --code CODE and --message TEXT");
	if (!task_error_code_valid(ch.code, strlen(ch.code)))
		return bad_usage("fail", "--code is 1 to 255 characters among a-z 0-9 and _, "
		    "like index_creation_failed");
	if (strlen(ch.message) > TASK_MESSAGE_MAX || !task_utf8_valid(ch.message, strlen(ch.message)))
		return bad_usage("fail", "--message must be UTF-8 text of at most 64 KiB");
	if ((ret = parse_uid(argv[optind], &ch.uid)) != 0)
		return ret;
	return change_one(&ch);
}

static int
cmd_heartbeat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lease", required_argument, NULL, 'l' },
		{ "started-at", required_argument, NULL, 's' },
		{ 0 }
	};
	struct change ch = { .to = TASK_PROCESSING, .heartbeat = 1 };
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c == 'l' && (ret = parse_lease("heartbeat", optarg, &ch.lease)) != 0)
			return ret;
		else if (c == 's' && (ret = parse_started_at("heartbeat", optarg, &ch.started_at)) != 0)
			return ret;
		else if (c != 'l' && c != 's')
			return bad_usage("heartbeat", "unknown option");
	}
	if (argc - optind != 1)
		return bad_usage("heartbeat", "it wants one UID");
	if ((ret = parse_uid(argv[optind], &ch.uid)) != 0)
		return ret;
	return change_one(&ch);
}

static int
nothing_more(store *s, MDB_txn *txn, void *ctx)
{
	(void)s;
	(void)txn;
	(void)ctx;
	return 0;
}

static int
cmd_reap(int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	store *s;
	int rc, ret;

	if (next_opt(argc, argv, opts) != -1 || optind != argc)
		return bad_usage("reap", "it takes no arguments");
	if ((ret = open_store(0, &s)) != 0)
		return ret;
	/* Every write reaps first; this one does nothing else. */
	rc = store_write(s, nothing_more, NULL);
	uint64_t reaped = store_reaped(s);
	store_close(s);
	if (rc)
		return store_failure(rc, "reaping");
	printf("{\"reaped\":%" PRIu64 "}\n", reaped);
	return EXIT_DONE;
}

/* ---- cancel ---- */

struct cancel_ctx {
	uint64_t *uids;
	size_t n;
	uint64_t missing;	/* first unknown uid */
	size_t canceled;
	char *filter;
	char *rendered;
	size_t rendered_len;
};

static int
apply_cancel(store *s, MDB_txn *txn, void *ctx)
{
	struct cancel_ctx *cc = ctx;
	struct task t, old, next, cancel;
	int64_t now = timefmt_now();
	uint64_t cancel_uid;
	int rc;

	cc->canceled = 0;
	for (size_t i = 0; i < cc->n; i++) {
		if ((rc = store_get(s, txn, cc->uids[i], &t)) == MDB_NOTFOUND) {
			cc->missing = cc->uids[i];
			return rc;
		}
		if (rc)
			return rc;
		if (!task_status_terminal(t.status))
			cc->canceled++;
	}
	if (cc->canceled == 0)
		return LMT_ETRANSITION;

	if ((rc = store_next_uid(s, txn, &cancel_uid)) != 0)
		return rc;
	for (size_t i = 0; i < cc->n; i++) {
		if ((rc = store_get(s, txn, cc->uids[i], &old)) != 0)
			return rc;
		if (task_status_terminal(old.status))
			continue;
		next = old;
		next.status = TASK_CANCELED;
		next.canceled_by = cancel_uid;
		next.lease_until = 0;	/* a finished task holds no lease */
		if (next.started_at == 0)
			next.started_at = now;
		next.finished_at = now;
		if ((rc = store_replace(s, txn, &old, &next)) != 0)
			return rc;
	}

	char details[512 + 24 * 2];
	int dl = snprintf(details, sizeof(details),
	    "{\"matchedTasks\":%zu,\"canceledTasks\":%zu,\"originalFilter\":", cc->n, cc->canceled);
	struct printbuf *pb = printbuf_new();
	if (pb == NULL)
		return ENOMEM;
	printbuf_memappend(pb, details, dl);
	render_string(pb, cc->filter, strlen(cc->filter));
	printbuf_memappend(pb, "}", 1);
	task_init(&cancel, NULL, 0, "taskCancelation", 15, pb->buf, (size_t)pb->bpos);
	cancel.status = TASK_SUCCEEDED;
	cancel.enqueued_at = cancel.started_at = cancel.finished_at = now;
	rc = store_add(s, txn, &cancel);
	if (rc == 0 && cancel.uid != cancel_uid)
		rc = LMT_ECORRUPT;
	if (rc == 0) {
		/* cancel's details live in pb: render into a second buffer. */
		struct printbuf *out = printbuf_new();
		rc = out ? render_task(out, &cancel) : ENOMEM;
		if (rc == 0) {
			free(cc->rendered);
			cc->rendered_len = (size_t)out->bpos;
			cc->rendered = strndup(out->buf, cc->rendered_len);
			rc = cc->rendered ? 0 : ENOMEM;
		}
		printbuf_free(out);
	}
	printbuf_free(pb);
	return rc;
}

static int
cmd_cancel(int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	struct cancel_ctx cc = { 0 };
	size_t flen = 8;
	store *s;
	int rc, ret = EXIT_DONE;

	if (next_opt(argc, argv, opts) != -1)
		return bad_usage("cancel", "unknown option");
	if (optind == argc)
		return bad_usage("cancel", "it wants one UID or more");
	cc.n = (size_t)(argc - optind);
	if (cc.n > 10000)
		return bad_usage("cancel", "at most 10000 uids at once");
	if ((cc.uids = calloc(cc.n, sizeof(*cc.uids))) == NULL)
		return fail_with(EXIT_STORE, "out of memory");
	for (size_t i = 0; i < cc.n; i++) {
		if ((ret = parse_uid(argv[optind + (int)i], &cc.uids[i])) != 0)
			goto out;
		flen += 21;
	}
	if ((cc.filter = malloc(flen)) == NULL) {
		ret = fail_with(EXIT_STORE, "out of memory");
		goto out;
	}
	size_t fl = (size_t)sprintf(cc.filter, "?uids=");
	for (size_t i = 0; i < cc.n; i++)
		fl += (size_t)sprintf(cc.filter + fl, "%s%" PRIu64, i ? "," : "", cc.uids[i]);
	if ((ret = open_store(0, &s)) != 0)
		goto out;
	rc = store_write(s, apply_cancel, &cc);
	store_close(s);
	if (rc == MDB_NOTFOUND)
		ret = fail_with(EXIT_NOTFOUND, "task %" PRIu64 " not found; nothing was canceled",
		    cc.missing);
	else if (rc == LMT_ETRANSITION)
		ret = fail_with(EXIT_REFUSED, "%s already finished; only enqueued or processing "
		    "tasks can be canceled; nothing was changed",
		    cc.n == 1 ? "the task has" : "every task given has");
	else if (rc)
		ret = store_failure(rc, "nothing was canceled; writing");
	else {
		if (cc.canceled < cc.n)
			warnx("%zu of %zu tasks had already finished and were left as they are",
			    cc.n - cc.canceled, cc.n);
		if (fwrite(cc.rendered, 1, cc.rendered_len, stdout) != cc.rendered_len ||
		    fputc('\n', stdout) == EOF)
			ret = fail_with(EXIT_STORE, "writing the output: %s", strerror(errno));
	}
out:
	free(cc.uids);
	free(cc.filter);
	free(cc.rendered);
	return ret;
}

/* The list filters as flags: each named like its URL parameter, or in kebab-case. */
static const struct option filter_opts[] = {
	{ "limit", required_argument, NULL, 0 },
	{ "from", required_argument, NULL, 0 },
	{ "reverse", optional_argument, NULL, 0 },
	{ "uids", required_argument, NULL, 0 },
	{ "statuses", required_argument, NULL, 0 },
	{ "types", required_argument, NULL, 0 },
	{ "indexUids", required_argument, NULL, 0 },
	{ "canceledBy", required_argument, NULL, 0 },
	{ "beforeEnqueuedAt", required_argument, NULL, 0 },
	{ "afterEnqueuedAt", required_argument, NULL, 0 },
	{ "beforeStartedAt", required_argument, NULL, 0 },
	{ "afterStartedAt", required_argument, NULL, 0 },
	{ "beforeFinishedAt", required_argument, NULL, 0 },
	{ "afterFinishedAt", required_argument, NULL, 0 },
	{ "index-uids", required_argument, NULL, 0 },
	{ "canceled-by", required_argument, NULL, 0 },
	{ "before-enqueued-at", required_argument, NULL, 0 },
	{ "after-enqueued-at", required_argument, NULL, 0 },
	{ "before-started-at", required_argument, NULL, 0 },
	{ "after-started-at", required_argument, NULL, 0 },
	{ "before-finished-at", required_argument, NULL, 0 },
	{ "after-finished-at", required_argument, NULL, 0 },
	{ 0 }
};
#define FILTER_CAMEL 14	/* the first 14 are the URL names; the rest alias 6 .. 13 */

/* Parses the filter flags of argv into q with the HTTP API's own checks; returns an exit
 * status.  allow_paging 0 refuses limit, from and reverse (delete). */
static int
parse_filters(const char *cmd, int argc, char **argv, struct query *q, int allow_paging)
{
	struct api_error err;
	int c, idx;

	while ((c = next_opt_index(argc, argv, filter_opts, &idx)) != -1) {
		if (c != 0)
			return bad_usage(cmd, "unknown option");
		if (idx >= FILTER_CAMEL)
			idx = idx - FILTER_CAMEL + 6;
		if (!allow_paging && idx < 3)
			return bad_usage(cmd, "--limit, --from and --reverse are for list");
		const char *v = optarg ? optarg : "true";
		if (query_set(q, filter_opts[idx].name, v, strlen(v), &err) != 0)
			return fail_with(EXIT_USAGE, "%s: %s", cmd, err.message);
	}
	if (optind != argc)
		return bad_usage(cmd, "it takes no arguments, only filters");
	return 0;
}

/* ---- delete ---- */

struct delete_ctx {
	struct query *q;
	uint64_t keep;		/* finished matches kept, newest first */
	const char *filter;	/* originalFilter */
	uint64_t *uids;		/* the finished matches, newest first */
	size_t n, cap;
	uint64_t matched, deleted;
	char *rendered;
	size_t rendered_len;
	uint64_t bad;
};

static int
collect(void *ctx, const struct task *t)
{
	struct delete_ctx *d = ctx;

	d->matched++;
	if (!task_status_terminal(t->status))
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 1024;
		uint64_t *u = realloc(d->uids, cap * sizeof(*u));
		if (u == NULL)
			return ENOMEM;
		d->uids = u;
		d->cap = cap;
	}
	d->uids[d->n++] = t->uid;
	return 0;
}

static int
apply_delete(store *s, MDB_txn *txn, void *ctx)
{
	struct delete_ctx *d = ctx;
	store_iter *it;
	struct task t, del;
	int64_t now = timefmt_now();
	int rc;

	d->n = 0;
	d->matched = d->deleted = 0;
	if ((rc = store_iter_open(s, txn, &it)) != 0)
		return rc;
	/* Collect first, remove after: the walk must not see the store change under it. */
	rc = query_walk(s, txn, it, d->q, collect, d, &d->bad);
	store_iter_close(it);
	if (rc)
		return rc;
	for (size_t i = d->keep < d->n ? (size_t)d->keep : d->n; i < d->n; i++) {
		if ((rc = store_get(s, txn, d->uids[i], &t)) != 0 || (rc = store_remove(s, txn, &t)) != 0)
			return rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
		d->deleted++;
	}

	struct printbuf *pb = printbuf_new(), *out = printbuf_new();
	if (pb == NULL || out == NULL) {
		rc = ENOMEM;
		goto done;
	}
	char head[96];
	int hl = snprintf(head, sizeof(head), "{\"matchedTasks\":%" PRIu64 ",\"deletedTasks\":%"
	    PRIu64 ",\"originalFilter\":", d->matched, d->deleted);
	if (printbuf_memappend(pb, head, hl) < 0 ||
	    render_string(pb, d->filter, strlen(d->filter)) != 0 || printbuf_memappend(pb, "}", 1) < 0) {
		rc = ENOMEM;
		goto done;
	}
	task_init(&del, NULL, 0, "taskDeletion", 12, pb->buf, (size_t)pb->bpos);
	del.status = TASK_SUCCEEDED;
	del.enqueued_at = del.started_at = del.finished_at = now;
	if ((rc = store_add(s, txn, &del)) != 0 || (rc = render_task(out, &del)) != 0)
		goto done;
	free(d->rendered);
	d->rendered_len = (size_t)out->bpos;
	rc = (d->rendered = strndup(out->buf, d->rendered_len)) ? 0 : ENOMEM;
done:
	printbuf_free(pb);
	printbuf_free(out);
	return rc;
}

/* Appends name=value to the originalFilter being built, URL-style. */
static int
filter_add(char **f, size_t *len, const char *name, const char *value)
{
	size_t need = *len + strlen(name) + strlen(value) + 3;
	char *nf = realloc(*f, need);

	if (nf == NULL)
		return ENOMEM;
	*len += (size_t)sprintf(nf + *len, "%s%s=%s", *len ? "&" : "?", name, value);
	*f = nf;
	return 0;
}

static int
cmd_delete(int argc, char **argv)
{
	static struct option opts[sizeof(filter_opts) / sizeof(filter_opts[0]) + 2];
	struct delete_ctx d = { 0 };
	struct api_error err;
	char *filter = NULL, *uids = NULL;
	size_t flen = 0, ulen = 0;
	store *s = NULL;
	int c, idx, rc, ret = EXIT_DONE, any = 0;

	/* The list filters, less paging, plus --before and --keep. */
	memcpy(opts, filter_opts, sizeof(filter_opts));
	size_t nopts = sizeof(filter_opts) / sizeof(filter_opts[0]) - 1;
	opts[nopts] = (struct option){ "before", required_argument, NULL, 'b' };
	opts[nopts + 1] = (struct option){ "keep", required_argument, NULL, 'k' };
	if ((d.q = malloc(sizeof(*d.q))) == NULL)
		return fail_with(EXIT_STORE, "out of memory");
	query_init(d.q);
	d.keep = 0;
	while ((c = next_opt_index(argc, argv, opts, &idx)) != -1) {
		const char *name;
		if (c == 'b') {
			name = "beforeFinishedAt";
		} else if (c == 'k') {
			if (parse_uid(optarg, &d.keep) != 0) {
				ret = EXIT_USAGE;
				goto out;
			}
			if (filter_add(&filter, &flen, "keep", optarg) != 0)
				goto oom;
			any = 1;
			continue;
		} else if (c == 0) {
			name = opts[idx >= FILTER_CAMEL ? idx - FILTER_CAMEL + 6 : idx].name;
			if (idx < 3) {
				ret = bad_usage("delete", "--limit, --from and --reverse are for list");
				goto out;
			}
		} else {
			ret = bad_usage("delete", "unknown option");
			goto out;
		}
		if (query_set(d.q, name, optarg, strlen(optarg), &err) != 0) {
			ret = fail_with(EXIT_USAGE, "delete: %s", err.message);
			goto out;
		}
		if (filter_add(&filter, &flen, name, optarg) != 0)
			goto oom;
		any = 1;
	}
	/* UIDs given as arguments are the uids filter. */
	for (int i = optind; i < argc; i++) {
		uint64_t u;
		if ((ret = parse_uid(argv[i], &u)) != 0)
			goto out;
		char *nu = realloc(uids, ulen + strlen(argv[i]) + 2);
		if (nu == NULL)
			goto oom;
		uids = nu;
		ulen += (size_t)sprintf(uids + ulen, "%s%s", ulen ? "," : "", argv[i]);
	}
	if (uids) {
		if (query_set(d.q, "uids", uids, ulen, &err) != 0) {
			ret = fail_with(EXIT_USAGE, "delete: %s", err.message);
			goto out;
		}
		if (filter_add(&filter, &flen, "uids", uids) != 0)
			goto oom;
		any = 1;
	}
	if (!any) {
		ret = bad_usage("delete", "say which tasks: UID..., --before DATE, --keep N, or filters "
		    "such as --statuses succeeded");
		goto out;
	}
	d.filter = filter;
	if ((ret = open_store(0, &s)) != 0)
		goto out;
	rc = store_write(s, apply_delete, &d);
	if (rc == LMT_ECORRUPT)
		ret = fail_with(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt; run "
		    "`lmtasks check`; nothing was deleted", d.bad);
	else if (rc)
		ret = store_failure(rc, "nothing was deleted; writing");
	else if (fwrite(d.rendered, 1, d.rendered_len, stdout) != d.rendered_len ||
	    fputc('\n', stdout) == EOF)
		ret = fail_with(EXIT_STORE, "writing the output: %s", strerror(errno));
	goto out;
oom:
	ret = fail_with(EXIT_STORE, "out of memory");
out:
	store_close(s);
	free(d.q);
	free(d.uids);
	free(d.rendered);
	free(filter);
	free(uids);
	return ret;
}

/* ---- index list, index delete ---- */

struct index_list {
	struct printbuf *pb;
	uint64_t n;
};

static int
print_index(void *ctx, struct task_str index, int64_t created_at)
{
	struct index_list *il = ctx;
	struct printbuf *pb = il->pb;
	char when[TIMEFMT_BUFSZ];
	size_t n = timefmt_rfc3339(created_at, when);

	if (il->n++ > 0 && printbuf_memappend(pb, ",", 1) < 0)
		return ENOMEM;
	if (printbuf_memappend(pb, "{\"uid\":", 7) < 0 || render_string(pb, index.ptr, index.len) ||
	    printbuf_memappend(pb, ",\"createdAt\":\"", 14) < 0 ||
	    printbuf_memappend(pb, when, (int)n) < 0 || printbuf_memappend(pb, "\"}", 2) < 0)
		return ENOMEM;
	return 0;
}

struct index_del {
	const char *name;
};

static int
apply_index_delete(store *s, MDB_txn *txn, void *ctx)
{
	struct index_del *x = ctx;
	struct task_str idx = { x->name, strlen(x->name) };

	return store_index_remove(s, txn, idx);
}

static int
cmd_index(int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	struct printbuf *pb = NULL;
	MDB_txn *txn;
	store *s;
	int rc, ret;

	if (next_opt(argc, argv, opts) != -1)
		return bad_usage("index", "unknown option");
	if (optind < argc && strcmp(argv[optind], "list") == 0 && argc - optind == 1) {
		if ((ret = open_store(STORE_RDONLY, &s)) != 0)
			return ret;
		if ((pb = printbuf_new()) == NULL || printbuf_memappend(pb, "{\"results\":[", 12) < 0) {
			ret = fail_with(EXIT_STORE, "out of memory");
		} else if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0) {
			ret = store_failure(rc, "reading");
		} else {
			struct index_list il = { pb, 0 };
			char tail[48];
			rc = store_index_walk(s, txn, print_index, &il);
			mdb_txn_abort(txn);
			int tl = snprintf(tail, sizeof(tail), "],\"total\":%" PRIu64 "}", il.n);
			if (rc)
				ret = store_failure(rc, "reading");
			else if (printbuf_memappend(pb, tail, tl) < 0)
				ret = fail_with(EXIT_STORE, "out of memory");
			else
				ret = emit(pb);
		}
		printbuf_free(pb);
		store_close(s);
		return ret;
	}
	if (optind < argc && strcmp(argv[optind], "delete") == 0 && argc - optind == 2) {
		struct index_del x = { argv[optind + 1] };
		if ((ret = check_index(x.name)) != 0 || (ret = open_store(0, &s)) != 0)
			return ret;
		rc = store_write(s, apply_index_delete, &x);
		store_close(s);
		if (rc == MDB_NOTFOUND)
			return fail_with(EXIT_NOTFOUND, "index `%s` not found", x.name);
		if (rc)
			return store_failure(rc, "nothing was deleted; writing");
		printf("{\"uid\":\"%s\",\"deleted\":true}\n", x.name);
		return EXIT_DONE;
	}
	return bad_usage("index", "it is `index list` or `index delete NAME`");
}

/* ---- keys ---- */

/* Renders a key's public fields: uid, description, indexes, expiresAt, createdAt. */
static int
render_key(struct printbuf *pb, const struct auth_key *k, const char *secret)
{
	char uid[37], when[TIMEFMT_BUFSZ];
	int rc = 0;

	auth_uid_format(k->uid, uid);
	rc |= printbuf_strappend(pb, "{") < 0;
	if (secret) {
		rc |= printbuf_strappend(pb, "\"key\":\"") < 0;
		rc |= printbuf_memappend(pb, secret, AUTH_KEY_CHARS) < 0;
		rc |= printbuf_strappend(pb, "\",") < 0;
	}
	rc |= printbuf_strappend(pb, "\"uid\":\"") < 0;
	rc |= printbuf_memappend(pb, uid, 36) < 0;
	rc |= printbuf_strappend(pb, "\",\"description\":") < 0;
	if (k->description.ptr)
		rc |= render_string(pb, k->description.ptr, k->description.len);
	else
		rc |= printbuf_strappend(pb, "null") < 0;
	rc |= printbuf_strappend(pb, ",\"indexes\":[") < 0;
	if (k->all)
		rc |= printbuf_strappend(pb, "\"*\"") < 0;
	for (size_t i = 0; i < k->nindexes; i++) {
		if (i)
			rc |= printbuf_strappend(pb, ",") < 0;
		rc |= render_string(pb, k->indexes[i].ptr, k->indexes[i].len);
	}
	rc |= printbuf_strappend(pb, "],\"expiresAt\":") < 0;
	if (k->expires_at) {
		size_t n = timefmt_rfc3339(k->expires_at, when);
		rc |= render_string(pb, when, n);
	} else {
		rc |= printbuf_strappend(pb, "null") < 0;
	}
	size_t n = timefmt_rfc3339(k->created_at, when);
	rc |= printbuf_strappend(pb, ",\"createdAt\":") < 0;
	rc |= render_string(pb, when, n);
	rc |= printbuf_strappend(pb, "}") < 0;
	return rc ? ENOMEM : 0;
}

struct key_new {
	unsigned char hash[AUTH_HASH_BYTES];
	unsigned char *rec;
	size_t len;
};

static int
apply_key_create(store *s, MDB_txn *txn, void *ctx)
{
	struct key_new *kn = ctx;

	return store_key_put(s, txn, kn->hash, sizeof(kn->hash), kn->rec, kn->len);
}

static int
key_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "indexes", required_argument, NULL, 'i' },
		{ "description", required_argument, NULL, 'd' },
		{ "expires-at", required_argument, NULL, 'e' },
		{ 0 }
	};
	struct auth_key k = { .all = 1 };
	struct key_new kn = { .rec = NULL };
	unsigned char raw[AUTH_KEY_CHARS / 2];
	char secret[AUTH_KEY_CHARS + 1], *list = NULL;
	struct printbuf *pb = NULL;
	store *s = NULL;
	int c, rc, ret, date_only;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'i':
			list = optarg;
			break;
		case 'd':
			if (strlen(optarg) > 1000 || !task_utf8_valid(optarg, strlen(optarg)))
				return bad_usage("key", "--description is UTF-8 text of at most 1000 bytes");
			k.description = (struct task_str){ optarg, strlen(optarg) };
			break;
		case 'e':
			if (timefmt_parse(optarg, strlen(optarg), &k.expires_at, &date_only) != 0)
				return bad_usage("key", "--expires-at is RFC 3339 or YYYY-MM-DD");
			if (k.expires_at <= timefmt_now())
				return bad_usage("key", "--expires-at is in the past");
			break;
		default:
			return bad_usage("key", "unknown option");
		}
	}
	if (optind != argc)
		return bad_usage("key", "`key create` takes only --indexes, --description and "
		    "--expires-at");
	if (list) {
		k.all = 0;
		for (char *p = list; *p;) {
			size_t n = strcspn(p, ",");
			if (!auth_pattern_valid(p, n) || k.nindexes == AUTH_INDEXES_MAX)
				return bad_usage("key", "--indexes is a comma list of at most 64 index "
				    "uids, `prefix*` patterns, or `*`");
			if (n == 1 && *p == '*')
				k.all = 1;
			else
				k.indexes[k.nindexes++] = (struct task_str){ p, n };
			p += n + (p[n] == ',');
		}
		if (k.all)
			k.nindexes = 0;
	}
	if (auth_init() != 0)
		return fail_with(EXIT_STORE, "cannot initialise libsodium");
	randombytes_buf(raw, sizeof(raw));
	randombytes_buf(k.uid, sizeof(k.uid));
	sodium_bin2hex(secret, sizeof(secret), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	k.created_at = timefmt_now();
	auth_hash(secret, AUTH_KEY_CHARS, kn.hash);
	kn.len = auth_key_encode(&k, NULL);
	if ((kn.rec = malloc(kn.len)) == NULL || (pb = printbuf_new()) == NULL) {
		ret = fail_with(EXIT_STORE, "out of memory");
		goto out;
	}
	auth_key_encode(&k, kn.rec);
	if ((ret = open_store(0, &s)) != 0)
		goto out;
	if ((rc = store_write(s, apply_key_create, &kn)) != 0)
		ret = store_failure(rc, "no key was made; writing");
	else if (render_key(pb, &k, secret) != 0)
		ret = fail_with(EXIT_STORE, "out of memory");
	else
		ret = emit(pb);
out:
	sodium_memzero(secret, sizeof(secret));
	store_close(s);
	printbuf_free(pb);
	free(kn.rec);
	return ret;
}

static int
list_one_key(void *ctx, const unsigned char *hash, const void *rec, size_t len)
{
	struct printbuf *pb = ctx;
	struct auth_key k;

	(void)hash;
	if (auth_key_decode(rec, len, &k) != 0)
		return LMT_ECORRUPT;
	if (pb->bpos > 12 && printbuf_strappend(pb, ",") < 0)
		return ENOMEM;
	return render_key(pb, &k, NULL);
}

struct key_del {
	const char *arg;
	unsigned char hash[AUTH_HASH_BYTES];
	int found;
};

static int
match_uid(void *ctx, const unsigned char *hash, const void *rec, size_t len)
{
	struct key_del *kd = ctx;
	struct auth_key k;
	char uid[37];

	if (auth_key_decode(rec, len, &k) != 0)
		return 0;
	auth_uid_format(k.uid, uid);
	if (strcmp(uid, kd->arg) == 0) {
		memcpy(kd->hash, hash, AUTH_HASH_BYTES);
		kd->found = 1;
		return 1;
	}
	return 0;
}

static int
apply_key_delete(store *s, MDB_txn *txn, void *ctx)
{
	struct key_del *kd = ctx;
	int rc;

	/* The key itself, or its uid. */
	auth_hash(kd->arg, strlen(kd->arg), kd->hash);
	kd->found = 0;
	if ((rc = store_key_delete(s, txn, kd->hash, AUTH_HASH_BYTES)) != MDB_NOTFOUND)
		return rc;
	if ((rc = store_key_walk(s, txn, match_uid, kd)) < 0)
		return rc;
	return kd->found ? store_key_delete(s, txn, kd->hash, AUTH_HASH_BYTES) : MDB_NOTFOUND;
}

static int
cmd_key(int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	const char *sub = argc > 1 ? argv[1] : "";
	store *s;
	int rc, ret;

	if (strcmp(sub, "create") == 0)
		return key_create(argc - 1, argv + 1);
	if (next_opt(argc, argv, opts) != -1)
		return bad_usage("key", "unknown option");
	if (strcmp(sub, "list") == 0 && argc == 2) {
		struct printbuf *pb = printbuf_new();
		MDB_txn *txn;
		if (pb == NULL || printbuf_strappend(pb, "{\"results\":[") < 0)
			return fail_with(EXIT_STORE, "out of memory");
		if ((ret = open_store(STORE_RDONLY, &s)) != 0) {
			printbuf_free(pb);
			return ret;
		}
		if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) == 0) {
			rc = store_key_walk(s, txn, list_one_key, pb);
			mdb_txn_abort(txn);
		}
		store_close(s);
		if (rc == 0 && printbuf_strappend(pb, "]}") < 0)
			rc = ENOMEM;
		ret = rc ? store_failure(rc, "reading the keys of") : emit(pb);
		printbuf_free(pb);
		return ret;
	}
	if (strcmp(sub, "delete") == 0 && argc == 3) {
		struct key_del kd = { argv[2], { 0 }, 0 };
		if ((ret = open_store(0, &s)) != 0)
			return ret;
		rc = store_write(s, apply_key_delete, &kd);
		store_close(s);
		sodium_memzero(kd.hash, sizeof(kd.hash));
		if (rc == MDB_NOTFOUND)
			return fail_with(EXIT_NOTFOUND, "no such key: give the key itself or its uid "
			    "(see `lmtasks key list`)");
		if (rc)
			return store_failure(rc, "no key was deleted; writing");
		printf("{\"deleted\":true}\n");
		return EXIT_DONE;
	}
	return bad_usage("key", "it is `key create [--indexes a,b] [--description TEXT] "
	    "[--expires-at DATE]`, `key list` or `key delete KEY|UID`");
}

/* ---- readers: get, list, wait, stats, check ---- */

/* Renders task uid into pb; returns an exit status, with the message for a failure. */
static int
render_uid(store *s, MDB_txn *txn, uint64_t uid, struct printbuf *pb, int *terminal)
{
	struct task t;
	int rc = store_get(s, txn, uid, &t);

	if (rc == MDB_NOTFOUND)
		return fail_with(EXIT_NOTFOUND, "task %" PRIu64 " not found", uid);
	if (rc == LMT_ECORRUPT)
		return fail_with(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt and "
		    "cannot be shown; run `lmtasks check`", uid);
	if (rc)
		return store_failure(rc, "reading");
	if (terminal)
		*terminal = task_status_terminal(t.status);
	printbuf_reset(pb);
	if (render_task(pb, &t) != 0)
		return fail_with(EXIT_STORE, "out of memory");
	return EXIT_DONE;
}

static int
cmd_get(int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	struct printbuf *pb;
	MDB_txn *txn;
	uint64_t uid;
	store *s;
	int rc, ret;

	if (next_opt(argc, argv, opts) != -1)
		return bad_usage("get", "unknown option");
	if (argc - optind != 1)
		return bad_usage("get", "it wants one UID");
	if ((ret = parse_uid(argv[optind], &uid)) != 0)
		return ret;
	if ((ret = open_store(STORE_RDONLY, &s)) != 0)
		return ret;
	if ((pb = printbuf_new()) == NULL) {
		store_close(s);
		return fail_with(EXIT_STORE, "out of memory");
	}
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0) {
		ret = store_failure(rc, "reading");
	} else {
		ret = render_uid(s, txn, uid, pb, NULL);
		mdb_txn_abort(txn);
		if (ret == EXIT_DONE)
			ret = emit(pb);
	}
	printbuf_free(pb);
	store_close(s);
	return ret;
}

static int
cmd_list(int argc, char **argv)
{
	struct query *q = malloc(sizeof(*q));
	struct printbuf *pb = NULL;
	store_iter *it = NULL;
	MDB_txn *txn = NULL;
	store *s = NULL;
	uint64_t bad = 0;
	int rc, ret;

	if (q == NULL)
		return fail_with(EXIT_STORE, "out of memory");
	query_init(q);
	if ((ret = parse_filters("list", argc, argv, q, 1)) != 0)
		goto out;
	if ((ret = open_store(STORE_RDONLY, &s)) != 0)
		goto out;
	if ((pb = printbuf_new()) == NULL) {
		ret = fail_with(EXIT_STORE, "out of memory");
		goto out;
	}
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0 ||
	    (rc = store_iter_open(s, txn, &it)) != 0) {
		ret = store_failure(rc, "reading");
		goto out;
	}
	rc = query_run(s, txn, it, q, pb, &bad);
	if (rc == LMT_ECORRUPT)
		ret = fail_with(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt and "
		    "cannot be listed; run `lmtasks check`", bad);
	else if (rc)
		ret = store_failure(rc, "reading");
	else
		ret = emit(pb);
out:
	store_iter_close(it);
	if (txn)
		mdb_txn_abort(txn);
	printbuf_free(pb);
	store_close(s);
	free(q);
	return ret;
}

static int
cmd_wait(int argc, char **argv)
{
	static const struct option opts[] = { { "timeout", required_argument, NULL, 't' }, { 0 } };
	int64_t timeout = -1;
	struct printbuf *pb;
	uint64_t uid;
	store *s;
	int c, ret, terminal = 0;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c != 't')
			return bad_usage("wait", "unknown option");
		if ((ret = parse_seconds("--timeout", optarg, &timeout)) != 0)
			return ret;
	}
	if (argc - optind != 1)
		return bad_usage("wait", "it wants one UID");
	if ((ret = parse_uid(argv[optind], &uid)) != 0)
		return ret;
	if ((ret = open_store(STORE_RDONLY, &s)) != 0)
		return ret;
	if ((pb = printbuf_new()) == NULL) {
		store_close(s);
		return fail_with(EXIT_STORE, "out of memory");
	}
	int fd = watch_open(), recheck = 0;
	int64_t deadline = timeout < 0 ? INT64_MAX : timefmt_now() + timeout;
	for (;;) {
		MDB_txn *txn;
		int rc = store_txn_begin(s, MDB_RDONLY, &txn);
		if (rc) {
			ret = store_failure(rc, "reading");
			break;
		}
		ret = render_uid(s, txn, uid, pb, &terminal);
		mdb_txn_abort(txn);
		if (ret != EXIT_DONE || terminal)
			break;
		int64_t left = deadline - timefmt_now();
		if (left <= 0) {
			ret = fail_with(EXIT_TIMEOUT, "task %" PRIu64 " is not finished yet; the wait "
			    "timed out", uid);
			break;
		}
		watch_wait(fd, left, &recheck);
	}
	if (ret == EXIT_DONE)
		ret = emit(pb);
	if (fd >= 0)
		close(fd);
	printbuf_free(pb);
	store_close(s);
	return ret;
}

static int
cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	struct store_stats st;
	MDB_txn *txn;
	store *s;
	int rc, ret;

	if (next_opt(argc, argv, opts) != -1 || optind != argc)
		return bad_usage("stats", "it takes no arguments");
	if ((ret = open_store(STORE_RDONLY, &s)) != 0)
		return ret;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) == 0) {
		rc = store_stats(s, txn, &st);
		mdb_txn_abort(txn);
	}
	store_close(s);
	if (rc)
		return store_failure(rc, "reading");
	printf("{\"tasks\":%" PRIu64 ",\"nextUid\":%" PRIu64 ",\"statuses\":{", st.tasks, st.next_uid);
	for (int i = 0; i < TASK_NSTATUS; i++)
		printf("%s\"%s\":%" PRIu64, i ? "," : "", task_status_name((enum task_status)i),
		    st.by_status[i]);
	printf("},\"indexes\":%" PRIu64 ",\"pageSize\":%u,\"usedBytes\":%" PRIu64
	    ",\"mapSize\":%" PRIu64 "}\n", st.indexes, st.page_size, st.used_bytes, st.map_size);
	return EXIT_DONE;
}

static void
print_problem(void *ctx, const char *line)
{
	(void)ctx;
	warnx("check: %s", line);
}

static int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = { { 0 } };
	uint64_t checked = 0, problems = 0;
	MDB_txn *txn;
	store *s;
	int rc, ret;

	if (next_opt(argc, argv, opts) != -1 || optind != argc)
		return bad_usage("check", "it takes no arguments");
	if ((ret = open_store(STORE_RDONLY, &s)) != 0)
		return ret;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) == 0) {
		rc = store_check(s, txn, print_problem, NULL, &checked, &problems);
		mdb_txn_abort(txn);
	}
	store_close(s);
	if (rc)
		return store_failure(rc, "checking");
	printf("{\"ok\":%s,\"tasks\":%" PRIu64 ",\"problems\":%" PRIu64 "}\n",
	    problems ? "false" : "true", checked, problems);
	if (problems)
		return fail_with(EXIT_STORE, "check found %" PRIu64 " problem%s in %s", problems,
		    problems == 1 ? "" : "s", db_path);
	return EXIT_DONE;
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "init", cmd_init },
	{ "enqueue", cmd_enqueue },
	{ "start", cmd_start },
	{ "claim", cmd_claim },
	{ "succeed", cmd_succeed },
	{ "fail", cmd_fail },
	{ "heartbeat", cmd_heartbeat },
	{ "reap", cmd_reap },
	{ "cancel", cmd_cancel },
	{ "delete", cmd_delete },
	{ "index", cmd_index },
	{ "key", cmd_key },
	{ "get", cmd_get },
	{ "list", cmd_list },
	{ "wait", cmd_wait },
	{ "stats", cmd_stats },
	{ "check", cmd_check },
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			db_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_DONE;
		case 'V':
			printf("lmtasks %s\n", PACKAGE_VERSION);
			return EXIT_DONE;
		default:
			return fail_with(EXIT_USAGE, "unknown option `%s`; see `lmtasks --help`",
			    argv[optind - 1]);
		}
	}
	if (optind == argc)
		return fail_with(EXIT_USAGE, "no command given; see `lmtasks --help`");
	if (db_path == NULL || *db_path == '\0')
		db_path = getenv("LMTASKS_DB");
	if (db_path == NULL || *db_path == '\0')
		db_path = LMTASKS_DEFAULT_DB;

	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		if (help_requested(sub_argc, sub_argv))
			return print_command_help(name);
		for (int a = 1; a < sub_argc && strcmp(sub_argv[a], "--") != 0; a++) {
			if (strcmp(sub_argv[a], "--version") == 0) {
				printf("lmtasks %s\n", PACKAGE_VERSION);
				return EXIT_DONE;
			}
		}
		optind = 0;	/* 0, not 1: GNU getopt then starts afresh */
		opterr = 0;	/* the messages are ours, with the lmtasks: prefix */
		ret = commands[i].run(sub_argc, sub_argv);
		if (fflush(stdout) != 0 || ferror(stdout))
			return fail_with(EXIT_STORE, "writing the output: %s", strerror(errno));
		return ret;
	}
	return fail_with(EXIT_USAGE, "unknown command `%s`; see `lmtasks --help`", name);
}
