/* lmtasks work: the worker for shell users, its options checked here and its run in the
 * work module (work.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/work.h"

#define LEASE_DEFAULT_US (INT64_C(60) * 1000000)
#define LEASE_MAX_US (INT64_C(30) * 86400 * 1000000)
#define FDS_PER_COMMAND 4	/* its three pipes and its pidfd, held while it runs */
#define FDS_BASE 32		/* stdio, the store, the watch, the signals, a start's pipes */

/* The worker's log lines, as every message: "lmtasks: work: ...". */
static void
log_line(const char *line)
{
	cli_warn("work: %s", line);
}

/* A whole number from 1 to max, or the usage error naming opt. */
static int
parse_count(const char *cmd, const char *opt, const char *v, size_t max, size_t *out)
{
	char *end;
	unsigned long long n = *v >= '0' && *v <= '9' && strlen(v) < 8 ? strtoull(v, &end, 10) : 0;

	if (n == 0 || *end || n > max)
		return cli_usagef(cmd, "%s wants a number from 1 to %zu", opt, max);
	*out = (size_t)n;
	return 0;
}

/* Finds the command as execvp() would: a path with a slash, else the first executable
 * file of that name in PATH, into buf; 0 when there is none. */
static int
resolve(const char *cmd, char *buf, size_t size)
{
	const char *path = getenv("PATH");

	if (strchr(cmd, '/'))
		return access(cmd, X_OK) == 0 && snprintf(buf, size, "%s", cmd) < (int)size;
	for (const char *p = path ? path : "/usr/bin:/bin"; ; p++) {
		const char *colon = strchrnul(p, ':');
		int n = snprintf(buf, size, "%.*s/%s", (int)(colon - p), colon == p ? "." : p, cmd);
		if (n > 0 && (size_t)n < size && access(buf, X_OK) == 0)
			return 1;
		if (*colon == '\0')
			return 0;
		p = colon;
	}
}

/* The options into o; an exit status. */
static int
parse(const struct cli_args *a, struct work_options *o, char *path, size_t size)
{
	int ret = 0, batch = 0;

	for (size_t i = 0; i < a->nopts && ret == 0; i++) {
		const char *v = a->opts[i].value;
		switch (a->opts[i].id) {
		case 'i':
			o->index = (struct task_str){ v, strlen(v) };
			ret = cli_check_index(v);
			break;
		case 't':
			o->type = (struct task_str){ v, strlen(v) };
			ret = cli_check_type(v);
			break;
		case 'b':
			ret = parse_count(a->cmd, "--batch", v, OPS_CLAIM_MAX, &o->batch);
			batch = 1;
			break;
		case 'c':
			ret = parse_count(a->cmd, "--concurrency", v, WORK_CONCURRENCY_MAX,
			    &o->concurrency);
			break;
		case 'l':
			/* At least a second: it is renewed every third of it. */
			if ((ret = cli_parse_seconds("--lease", v, &o->lease)) == 0 &&
			    (o->lease < 1000000 || o->lease > LEASE_MAX_US))
				ret = cli_usagef(a->cmd, "--lease is from 1 to %" PRId64 " seconds",
				    LEASE_MAX_US / 1000000);
			break;
		default:
			o->exit_when_empty = 1;
		}
	}
	if (ret)
		return ret;
	if (!batch)
		o->batch = o->concurrency;
	if (a->argc == 0)
		return cli_usage(a->cmd, "it wants the command to run after --, like "
		    "`lmtasks work -- ./job.sh`");
	o->argv = a->argv;
	o->path = path;	/* looked up once, not at every start */
	if (!resolve(a->argv[0], path, size))
		return cli_fail(EXIT_NOPROGRAM, "work: `%s`: no such command (or it is not "
		    "executable)", a->argv[0]);
	return 0;
}

/* The soft limit on descriptors raised to the hard one; a usage error when K commands at
 * once would not fit in it. */
static int
check_nofile(const char *cmd, size_t concurrency)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)concurrency * FDS_PER_COMMAND + FDS_BASE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;	/* unknown: a start that fails says so */
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		return cli_usagef(cmd, "--concurrency %zu wants about %ju open files, and the "
		    "limit is %ju (ulimit -n): a lower --concurrency, or a higher limit", concurrency,
		    (uintmax_t)want, (uintmax_t)rl.rlim_cur);
	return 0;
}

/* The handler of its table entry below. */
static int
run_work(const struct cli_args *a)
{
	struct work_options o = { .concurrency = 1, .lease = LEASE_DEFAULT_US, .log = log_line };
	struct work_stats st;
	char line[160], path[PATH_MAX];
	store *s;
	int rc, ret;

	if ((ret = parse(a, &o, path, sizeof(path))) != 0 ||
	    (ret = check_nofile(a->cmd, o.concurrency)) != 0 || (ret = cli_open(0, &s)) != 0)
		return ret;
	o.db = cli_db;
	o.v1 = cli_v1;
	rc = work_run(s, &o, &st);
	store_close(s);
	if (rc == ENOENT || rc == EACCES || rc == ENOEXEC)
		return cli_fail(rc == ENOENT ? EXIT_NOPROGRAM : EXIT_NOEXEC, "work: `%s` could not "
		    "be run: %s; its task went back to the queue", a->argv[0], strerror(rc));
	if (rc == EMFILE || rc == ENFILE || rc == EAGAIN)
		return cli_fail(EXIT_STORE, "work: a command could not be started: %s; its task "
		    "went back to the queue", strerror(rc));
	if (rc)
		return cli_store_failure(rc, "the tasks held come back when their leases end; "
		    "working");
	/* retried only when a retry policy made some: the line is as before without one. */
	int n = snprintf(line, sizeof(line), "{\"succeeded\":%" PRIu64 ",\"failed\":%" PRIu64
	    ",\"released\":%" PRIu64 ",\"lost\":%" PRIu64, st.succeeded, st.failed,
	    st.released, st.lost);
	if (st.retried)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"retried\":%" PRIu64, st.retried);
	snprintf(line + n, sizeof(line) - (size_t)n, "}\n");
	if (fputs(line, stdout) < 0 || fflush(stdout) != 0)
		return cli_fail(EXIT_STORE, "writing the summary: %s", strerror(errno));
	return EXIT_DONE;
}

static const struct option work_options[] = {
	{ "index", required_argument, NULL, 'i' },
	{ "type", required_argument, NULL, 't' },
	{ "batch", required_argument, NULL, 'b' },
	{ "concurrency", required_argument, NULL, 'c' },
	{ "lease", required_argument, NULL, 'l' },
	{ "exit-when-empty", no_argument, NULL, 'e' },
	{ 0 }
};
const struct cli_command cli_cmd_work = { "work", work_options,
	"  work [--index I] [--type T] [--batch N] [--lease SECONDS] [--concurrency K]\n"
	"       [--exit-when-empty] -- COMMAND [ARGS...]\n"
	"                                      claim tasks and run COMMAND once per task, K at\n"
	"                                      once: the task's JSON on its stdin, its uid,\n"
	"                                      index, type and claim in LMTASKS_TASK_UID,\n"
	"                                      _INDEX, _TYPE, _STARTED_AT (lmtasks heartbeat\n"
	"                                      \"$LMTASKS_TASK_UID\" --progress 1/4 reports\n"
	"                                      on it); exit 0 succeeds the task (stdout, when\n"
	"                                      a JSON object, as details), else it fails with\n"
	"                                      work_command_failed and stderr's last lines;\n"
	"                                      leases (default 60 s) renewed while it runs;\n"
	"                                      N tasks claimed at once (default K; above K,\n"
	"                                      the next N as the last one starts), results\n"
	"                                      committed together; SIGTERM or SIGINT: the\n"
	"                                      commands get SIGTERM, a task ends if its command\n"
	"                                      exits 0, else goes back to the queue\n",
	run_work };
