/* The commands on many tasks or on the store: init, delete, index, key, stats, check,
 * config. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/progress.h"
#include "lmtasks/render.h"
#include "lmtasks/report.h"
#include "lmtasks/compat.h"
#include "lmtasks/settings.h"
#include "lmtasks/timefmt.h"

/* ---- init ---- */

/* The handler of its table entry below. */
static int
run_init(const struct cli_args *a)
{
	unsigned mode = 0;
	gid_t gid = (gid_t)-1;
	uint64_t level = UINT64_MAX;
	int rc, shared;

	for (size_t i = 0; i < a->nopts; i++) {
		const char *v = a->opts[i].value;
		if (a->opts[i].id == 'c') {
			if (compat_parse(v, &level) != 0)
				return cli_usage(a->cmd, "--compat wants v0.25 (the default) or v1");
		} else if (a->opts[i].id == 'm') {
			char *end;
			unsigned long m = strtoul(v, &end, 8);
			if (*v == '\0' || *end || m > 0777 || (m & 0600) != 0600)
				return cli_usage(a->cmd, "--mode wants an octal file mode such as 0640 "
				    "that lets the owner read and write");
			mode = (unsigned)m;
		} else {
			struct group *gr = getgrnam(v);
			if (gr == NULL)
				return cli_usage(a->cmd, "--group names no group of this system");
			gid = gr->gr_gid;
		}
	}
	if (a->argc)
		return cli_usage(a->cmd, "it takes no arguments");
	size_t map;
	if (store_map_size_env(&map) != 0)
		return cli_usage(a->cmd, "LMTASKS_MAPSIZE wants a size in bytes, digits only, "
		    "from 65536 to 1099511627776");
	if ((rc = ops_init(cli_db, gid, mode, &shared)) != 0)
		return cli_store_failure(rc, "cannot create the store at");
	if (level != UINT64_MAX) {
		struct settings set;
		store *s;
		int ret = cli_open(0, &s);
		if (ret)
			return ret;
		rc = ops_config_set(s, SETTING_COMPAT, level, &set);
		store_close(s);
		if (rc)
			return cli_store_failure(rc, "setting compat in");
	}
	if (shared)
		return cli_fail(EXIT_STORE, "the store at %s is made, but setting its group or mode "
		    "failed: %s (only the owner, or root, can give it to a group it belongs to)",
		    cli_db, strerror(shared));
	cli_warn("store ready at %s", cli_db);
	return EXIT_DONE;
}

static const struct option init_options[] = {
	{ "mode", required_argument, NULL, 'm' },
	{ "group", required_argument, NULL, 'g' },
	{ "compat", required_argument, NULL, 'c' },
	{ 0 }
};
const struct cli_command cli_cmd_init = { "init", init_options,
	"  init [--group GROUP] [--mode MODE] [--compat v0.25|v1]\n"
	"                                      create the store; --group lets GROUP's members\n"
	"                                      (the web server's user) read it; MODE is the\n"
	"                                      data file's octal mode (0640 with a group, else\n"
	"                                      0600); lock.mdb gets group write with group read;\n"
	"                                      --compat v1 answers as Meilisearch v1 (see config)\n",
	run_init };

/* ---- delete ---- */

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

/* Turns delete's flags and UIDs into q, *keep and the originalFilter; an exit status. */
static int
delete_parse(const struct cli_args *a, struct query *q, uint64_t *keep, char **filter)
{
	struct query_error err;
	char *uids = NULL;
	size_t flen = 0, ulen = 0;
	int ret = 0;

	for (size_t i = 0; i < a->nopts && ret == 0; i++) {
		const char *name, *v = a->opts[i].value;
		int id = a->opts[i].id;
		if (id == 'k') {
			if ((ret = cli_parse_uid(v, keep)) == 0 && filter_add(filter, &flen, "keep", v))
				goto oom;
			continue;
		}
		if (id >= CLI_FILTER && id < CLI_FILTER + CLI_FILTER_PAGING)
			return cli_usage(a->cmd, "--limit, --from and --reverse are for list");
		/* --before is --beforeFinishedAt. */
		if ((ret = cli_filter_set(a->cmd, q, id == 'b' ? CLI_FILTER + 12 : id, v, &name)) != 0)
			return ret;
		if (filter_add(filter, &flen, name, v) != 0)
			goto oom;
	}
	if (ret)
		return ret;
	/* UIDs given as arguments are the uids filter. */
	for (int i = 0; i < a->argc; i++) {
		uint64_t u;
		if ((ret = cli_parse_uid(a->argv[i], &u)) != 0)
			goto out;
		char *nu = realloc(uids, ulen + strlen(a->argv[i]) + 2);
		if (nu == NULL)
			goto oom;
		uids = nu;
		ulen += (size_t)sprintf(uids + ulen, "%s%s", ulen ? "," : "", a->argv[i]);
	}
	if (uids && query_set(q, "uids", uids, ulen, &err) != 0)
		ret = cli_fail(EXIT_USAGE, "%s: %s", a->cmd, err.message);
	else if (uids && filter_add(filter, &flen, "uids", uids) != 0)
		goto oom;
	else if (*filter == NULL)
		ret = cli_usage(a->cmd, "say which tasks: UID..., --before DATE, --keep N, or "
		    "filters such as --statuses succeeded");
	goto out;
oom:
	ret = cli_fail(EXIT_STORE, "out of memory");
out:
	free(uids);
	return ret;
}

/* The handler of its table entry below. */
static int
run_delete(const struct cli_args *a)
{
	struct query *q = malloc(sizeof(*q));
	struct ops_record_result r;
	uint64_t keep = 0;
	char *filter = NULL;
	store *s;
	int rc, ret;

	if (q == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	query_init(q);
	if ((ret = delete_parse(a, q, &keep, &filter)) != 0 || (ret = cli_open(0, &s)) != 0)
		goto out;
	struct progress_meter meter;
	struct progress prog;
	progress_meter_open(&meter, &prog, STDERR_FILENO, "tasks", 4096);
	store_set_progress(s, &prog);
	rc = ops_delete(s, q, keep, filter, &r);
	progress_meter_close(&meter);
	store_close(s);
	if (rc == LMT_ECORRUPT)
		ret = cli_fail(EXIT_STORE, "task %" PRIu64 ": the stored record is corrupt; run "
		    "`lmtasks check`; nothing was deleted", r.bad);
	else if (rc == LMT_EFULL || rc == LMT_EDISKFULL)
		ret = cli_fail(EXIT_STORE, "no finished task matches, and a delete that deletes "
		    "nothing would still record a taskDeletion task: it is refused, as new tasks "
		    "are, while %s. Widen the filter, or %s; nothing was written", rc == LMT_EFULL ?
		    "the store is full for new tasks (past 40% of its maxBytes)" :
		    "the disk holding the store is full", rc == LMT_EFULL ?
		    "raise the limit (`lmtasks config maxBytes SIZE`)" : "free space on that disk");
	else if (rc)
		ret = cli_store_failure(rc, "nothing was deleted; writing");
	else
		ret = cli_print(cli_render_task, &r.out);
	ops_task_free(&r.out);
out:
	free(q);
	free(filter);
	return ret;
}

static const struct option delete_options[] = {
	CLI_FILTER_OPTIONS,
	{ "before", required_argument, NULL, 'b' },
	{ "keep", required_argument, NULL, 'k' },
	{ 0 }
};
const struct cli_command cli_cmd_delete = { "delete", delete_options,
	"  delete UID... | --before DATE | --keep N | [FILTERS]\n"
	"                                      remove finished tasks (never enqueued or\n"
	"                                      processing ones) and record a taskDeletion task\n",
	run_delete };

/* ---- index list, index delete ---- */

const struct cli_command cli_cmd_index = { "index", NULL,
	"it is `index list` or `index delete NAME`", NULL };

struct index_list {
	struct printbuf *pb;
	uint64_t n;
};

static int
list_index(void *ctx, struct task_str index, int64_t created_at)
{
	struct index_list *il = ctx;

	if (il->n++ > 0 && render_comma(il->pb) != 0)
		return ENOMEM;
	return report_index(il->pb, index, created_at);
}

/* The handler of its table entry below. */
static int
run_index_list(const struct cli_args *a)
{
	struct index_list il = { NULL, 0 };
	struct cli_reader r;
	int rc, ret;

	if (a->argc)
		return cli_usage(a->cmd, a->hint);
	if ((ret = cli_reader_open(&r, "reading")) != 0)
		return ret;
	il.pb = r.pb;
	if ((rc = render_list_open(r.pb)) == 0 && (rc = store_index_walk(r.s, r.txn, list_index,
	    &il)) == 0)
		rc = report_list_end(r.pb, il.n);
	ret = rc ? cli_store_failure(rc, "reading") : cli_emit(r.pb);
	cli_reader_close(&r);
	return ret;
}

const struct cli_command cli_cmd_index_list = { "index list", NULL,
	"  index list                          the indexes\n",
	run_index_list };

static int
render_index_deleted(struct printbuf *pb, const void *ctx)
{
	return report_index_deleted(pb, *(const struct task_str *)ctx);
}

/* The handler of its table entry below. */
static int
run_index_delete(const struct cli_args *a)
{
	struct task_str name;
	store *s;
	int rc, ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, a->hint);
	name = (struct task_str){ a->argv[0], strlen(a->argv[0]) };
	if ((ret = cli_check_index(name.ptr)) != 0 || (ret = cli_open(0, &s)) != 0)
		return ret;
	rc = ops_index_delete(s, name);
	store_close(s);
	if (rc == MDB_NOTFOUND)
		return cli_fail(EXIT_NOTFOUND, "index `%s` not found", name.ptr);
	if (rc)
		return cli_store_failure(rc, "nothing was deleted; writing");
	return cli_print(render_index_deleted, &name);
}

const struct cli_command cli_cmd_index_delete = { "index delete", NULL,
	"  index delete NAME                   remove an index; its tasks stay under /tasks\n",
	run_index_delete };

/* ---- keys ---- */

const struct cli_command cli_cmd_key = { "key", NULL,
	"it is `key create [--indexes a,b] [--actions LIST] [--description TEXT] "
	"[--expires-at DATE]`, "
	"`key list` or `key delete KEY|UID`", NULL };

/* --indexes a,b*: the patterns a key may see, `*` for all. */
static int
key_indexes(const char *cmd, char *list, struct auth_key *k)
{
	k->all = 0;
	for (char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		if (!auth_pattern_valid(p, n) || k->nindexes == AUTH_INDEXES_MAX)
			return cli_usagef(cmd, "--indexes is a comma list of at most %d index "
			    "uids, `prefix*` patterns, or `*`", AUTH_INDEXES_MAX);
		if (n == 1 && *p == '*')
			k->all = 1;
		else
			k->indexes[k->nindexes++] = (struct task_str){ p, n };
		p += n + (p[n] == ',');
	}
	if (k->all)
		k->nindexes = 0;
	return 0;
}

/* The longest description a key may carry, in bytes. */
#define KEY_DESCRIPTION_MAX 1000

struct key_out {
	const struct auth_key *k;
	const char *secret;
};

static int
render_key(struct printbuf *pb, const void *ctx)
{
	const struct key_out *ko = ctx;

	return report_key(pb, ko->k, ko->secret);
}

/* The handler of its table entry below. */
static int
run_key_create(const struct cli_args *a)
{
	struct auth_key k = { .all = 1, .actions = AUTH_ACTIONS_DEFAULT };
	char secret[AUTH_KEY_CHARS + 1], *list = NULL;
	store *s;
	int rc, ret, date_only;

	for (size_t i = 0; i < a->nopts; i++) {
		char *v = (char *)a->opts[i].value;
		switch (a->opts[i].id) {
		case 'i':
			list = v;
			break;
		case 'a':
			if (auth_actions_parse(v, &k.actions) != 0)
				return cli_usage(a->cmd, "--actions is a comma list of `tasks.get`, "
				    "`tasks.cancel`, `tasks.delete`, `tasks.*`, `metrics.get`, `metrics.*`, "
				    "`*`");
			break;
		case 'd':
			if (strlen(v) > KEY_DESCRIPTION_MAX || !task_utf8_valid(v, strlen(v)))
				return cli_usagef(a->cmd, "--description is UTF-8 text of at most %d "
				    "bytes", KEY_DESCRIPTION_MAX);
			k.description = (struct task_str){ v, strlen(v) };
			break;
		default:
			if (timefmt_parse(v, strlen(v), &k.expires_at, &date_only) != 0)
				return cli_usage(a->cmd, "--expires-at is RFC 3339 or YYYY-MM-DD");
			if (k.expires_at <= clock_now())
				return cli_usage(a->cmd, "--expires-at is in the past");
		}
	}
	if (a->argc)
		return cli_usage(a->cmd, "`key create` takes only --indexes, --actions, "
		    "--description and --expires-at");
	if (list && (ret = key_indexes(a->cmd, list, &k)) != 0)
		return ret;
	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	rc = ops_key_create(s, &k, secret);
	store_close(s);
	if (rc == LMT_EINVAL)
		ret = cli_fail(EXIT_STORE, "cannot initialise libsodium");
	else if (rc)
		ret = cli_store_failure(rc, "no key was made; writing");
	else
		ret = cli_print(render_key, &(struct key_out){ &k, secret });
	sodium_memzero(secret, sizeof(secret));
	return ret;
}

static const struct option key_create_options[] = {
	{ "indexes", required_argument, NULL, 'i' },
	{ "actions", required_argument, NULL, 'a' },
	{ "description", required_argument, NULL, 'd' },
	{ "expires-at", required_argument, NULL, 'e' },
	{ 0 }
};
const struct cli_command cli_cmd_key_create = { "key create", key_create_options,
	"  key create [--indexes a,b*] [--actions LIST] [--description TEXT]\n"
	"             [--expires-at DATE]      make an API key; prints it, the only time;\n"
	"                                      LIST: tasks.get (the default: read),\n"
	"                                      tasks.cancel, tasks.delete (for lmtasks-writer),\n"
	"                                      tasks.*, *\n",
	run_key_create };

static int
list_key(void *ctx, const unsigned char *hash, const void *rec, size_t len)
{
	struct printbuf *pb = ctx;
	struct auth_key k;

	(void)hash;
	if (auth_key_decode(rec, len, &k) != 0)
		return LMT_ECORRUPT;
	if (pb->bpos > 12 && render_comma(pb) != 0)
		return ENOMEM;
	return report_key(pb, &k, NULL);
}

static int
walk_keys(store *s, MDB_txn *txn, struct printbuf *pb, void *ctx)
{
	(void)ctx;
	return store_key_walk(s, txn, list_key, pb);
}

/* The handler of its table entry below. */
static int
run_key_list(const struct cli_args *a)
{
	if (a->argc)
		return cli_usage(a->cmd, a->hint);
	return cli_print_list(walk_keys, NULL, "reading the keys of");
}

const struct cli_command cli_cmd_key_list = { "key list", NULL,
	"  key list                            the keys, without their secrets\n",
	run_key_list };

/* The handler of its table entry below. */
static int
run_key_delete(const struct cli_args *a)
{
	store *s;
	int rc, ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, a->hint);
	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	rc = ops_key_delete(s, a->argv[0]);
	store_close(s);
	if (rc == MDB_NOTFOUND)
		return cli_fail(EXIT_NOTFOUND, "no such key: give the key itself or its uid "
		    "(see `lmtasks key list`)");
	if (rc)
		return cli_store_failure(rc, "no key was deleted; writing");
	return cli_print(cli_render_deleted, NULL);
}

const struct cli_command cli_cmd_key_delete = { "key delete", NULL,
	"  key delete KEY|UID                  revoke a key\n",
	run_key_delete };

/* ---- stats, check ---- */

struct stats_out {
	struct store_stats st;
	struct settings set;
	uint64_t live;
};

static int
render_stats(struct printbuf *pb, const void *ctx)
{
	const struct stats_out *o = ctx;

	return report_stats(pb, &o->st, o->live, &o->set);
}

/* The handler of its table entry below. */
static int
run_stats(const struct cli_args *a)
{
	struct stats_out o;
	MDB_txn *txn;
	store *s;
	int rc, ret;

	if (a->argc)
		return cli_usage(a->cmd, "it takes no arguments");
	if ((ret = cli_open(STORE_RDONLY, &s)) != 0)
		return ret;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) == 0) {
		if ((rc = store_stats(s, txn, &o.st)) == 0 && (rc = settings_read(s, txn, &o.set)) == 0)
			rc = store_live_bytes(s, txn, &o.live);
		mdb_txn_abort(txn);
	}
	store_close(s);
	return rc ? cli_store_failure(rc, "reading") : cli_print(render_stats, &o);
}

const struct cli_command cli_cmd_stats = { "stats", NULL,
	"  stats                               counts and sizes\n",
	run_stats };

static void
print_problem(void *ctx, const char *line)
{
	progress_meter_close(ctx);	/* the problem on a line of its own */
	cli_warn("check: %s", line);
}

struct check_out {
	uint64_t checked, problems;
};

static int
render_check(struct printbuf *pb, const void *ctx)
{
	const struct check_out *c = ctx;

	return report_check(pb, c->checked, c->problems);
}

/* The handler of its table entry below. */
static int
run_check(const struct cli_args *a)
{
	struct check_out c = { 0, 0 };
	MDB_txn *txn;
	store *s;
	int rc, ret;

	if (a->argc)
		return cli_usage(a->cmd, "it takes no arguments");
	if ((ret = cli_open(STORE_RDONLY, &s)) != 0)
		return ret;
	struct progress_meter meter;
	struct progress prog;
	progress_meter_open(&meter, &prog, STDERR_FILENO, "tasks", 4096);
	store_set_progress(s, &prog);
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) == 0) {
		rc = store_check(s, txn, print_problem, &meter, &c.checked, &c.problems);
		mdb_txn_abort(txn);
	}
	progress_meter_close(&meter);
	store_close(s);
	if (rc)
		return cli_store_failure(rc, "checking");
	if ((ret = cli_print(render_check, &c)) != 0)
		return ret;
	if (c.problems)
		return cli_fail(EXIT_STORE, "check found %" PRIu64 " problem%s in %s", c.problems,
		    c.problems == 1 ? "" : "s", cli_db);
	return EXIT_DONE;
}

const struct cli_command cli_cmd_check = { "check", NULL,
	"  check                               verify every record and index entry\n",
	run_check };

/* ---- config ---- */

static int
render_settings(struct printbuf *pb, const void *ctx)
{
	return report_settings(pb, ctx);
}

/* The handler of its table entry below. */
static int
run_config(const struct cli_args *a)
{
	struct settings set;
	enum setting_id id;
	const char *why;
	uint64_t v;
	MDB_txn *txn;
	store *s;
	int rc, ret;

	if (a->argc == 1 || a->argc > 2)
		return cli_usage(a->cmd, "it is `config` to print the settings, or `config KEY "
		    "VALUE` to set one");
	if (a->argc == 2) {
		if (settings_find(a->argv[0], &id) != 0)
			return cli_fail(EXIT_USAGE, "config: `%s` is no setting; the settings are %s",
			    a->argv[0], settings_names());
		if (settings_parse(id, a->argv[1], &v, &why) != 0)
			return cli_fail(EXIT_USAGE, "config: %s `%s` is not %s", a->argv[0],
			    a->argv[1], why);
	}
	if ((ret = cli_open(a->argc ? 0 : STORE_RDONLY, &s)) != 0)
		return ret;
	if (a->argc) {
		rc = ops_config_set(s, id, v, &set);
	} else if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) == 0) {
		rc = settings_read(s, txn, &set);
		mdb_txn_abort(txn);
	}
	store_close(s);
	if (rc)
		return cli_store_failure(rc, a->argc ? "nothing was changed; writing" : "reading");
	return cli_print(render_settings, &set);
}

const struct cli_command cli_cmd_config = { "config", NULL,
	"  config [KEY VALUE]                  print the store's settings, or set one: maxBytes\n"
	"                                      SIZE (new tasks are refused past 40% of it),\n"
	"                                      maxTasks N (past it the oldest finished tasks\n"
	"                                      are deleted; 0: never), feedRetention N|AGE\n"
	"                                      (the change log kept: N changes, default\n"
	"                                      100000, or an age: 7d, 12h, 30m, 90s),\n"
	"                                      compat v0.25|v1 (v1: tasks in Meilisearch v1's\n"
	"                                      layout, /batches)\n",
	run_config };
