/* webhook add|list|delete, and notify's entry: lmtasks checks notify's options and execs
 * lmtasks-notify, the deliverer (cli_notify.c), so that only that program links libcurl. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/ops.h"
#include "lmtasks/render.h"
#include "lmtasks/report.h"

#define HEADERS_MAX 64

enum { OPT_HEADER = 1 };

const struct cli_command cli_cmd_webhook = { "webhook", NULL,
	"it is `webhook add URL [--header 'Name: value']... [FILTERS]`, `webhook list` or "
	"`webhook delete ID`", NULL };

/* ---- add ---- */

/* Appends &name=value to *f, the value percent-encoded where a query string needs it. */
static int
filter_add(char **f, size_t *len, const char *name, const char *value)
{
	char *nf = realloc(*f, *len + strlen(name) + 3 * strlen(value) + 3);

	if (nf == NULL)
		return ENOMEM;
	*f = nf;
	*len += (size_t)sprintf(nf + *len, "%s%s=", *len ? "&" : "", name);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-_.~,:*", *p))
			nf[(*len)++] = (char)*p;
		else
			*len += (size_t)sprintf(nf + *len, "%%%02X", *p);
	}
	nf[*len] = '\0';
	return 0;
}

/* --header 'Name: value' into obj; an exit status. */
static int
add_header(const char *cmd, json_object *obj, const char *arg)
{
	const char *colon = strchr(arg, ':'), *v;

	if (colon == NULL || !webhook_header_name_valid(arg, (size_t)(colon - arg)))
		return cli_usage(cmd, "--header is 'Name: value' with an HTTP header name "
		    "other than Content-Type, Content-Encoding, Content-Length, Host and "
		    "Transfer-Encoding");
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	if (!webhook_header_value_valid(v, strlen(v)) || !task_utf8_valid(v, strlen(v)))
		return cli_usage(cmd, "a --header value is UTF-8 text of at most 4096 bytes "
		    "without control characters");
	char name[257];
	memcpy(name, arg, (size_t)(colon - arg));
	name[colon - arg] = '\0';
	json_object_object_foreach(obj, k, val) {
		(void)val;
		if (strcasecmp(k, name) == 0)
			return cli_usage(cmd, "a header is given twice");
	}
	if (json_object_object_length(obj) >= HEADERS_MAX)
		return cli_usage(cmd, "at most 64 headers");
	json_object *s = json_object_new_string(v);
	if (s == NULL || json_object_object_add(obj, name, s) != 0) {
		json_object_put(s);
		return cli_fail(EXIT_STORE, "out of memory");
	}
	return 0;
}

#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%"

/*
 * Returns 1 when url is an http or https URL (scheme in any case) with "//" and a host,
 * at most WEBHOOK_URL_MAX bytes of UTF-8 with no space, control byte or DEL.  Our own
 * check, not libcurl's parser: lmtasks links no libcurl, whose libraries were most of
 * its start-up; lmtasks-notify parses the URL with libcurl again when it sends.
 */
static int
url_valid(const char *url)
{
	size_t len = strlen(url), n;
	const char *host, *end, *at;

	if (len > WEBHOOK_URL_MAX || !task_utf8_valid(url, len))
		return 0;
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p < 0x21 || *p == 0x7f)
			return 0;
	if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return 0;
	end = host + strcspn(host, "/?#");
	/* The authority is [userinfo@]host[:port]. */
	if ((at = memrchr(host, '@', (size_t)(end - host))) != NULL)
		host = at + 1;
	if (*host == '[') {	/* an IPv6 address */
		n = strspn(host + 1, "0123456789abcdefABCDEF:.");
		if (n == 0 || host[1 + n] != ']')
			return 0;
		host += n + 2;
	} else {
		n = 0;
		while (host + n < end && host[n] != ':' &&
		    (strchr(HOST_CHARS, host[n]) || (unsigned char)host[n] >= 0x80))
			n++;
		if (n == 0)
			return 0;
		host += n;
	}
	if (host < end && *host == ':') {	/* a port: 1 to 65535 */
		unsigned long port = 0;
		for (host++, n = 0; host < end && *host >= '0' && *host <= '9' && n < 5; host++, n++)
			port = port * 10 + (unsigned long)(*host - '0');
		if (n == 0 || port == 0 || port > 65535)
			return 0;
	}
	return host == end;
}

/* The URL, checked: exit 2 with what it must be. */
static int
check_url(const char *cmd, const char *url)
{
	return url_valid(url) ? 0 : cli_usage(cmd, "the URL must be an http:// or https:// URL "
	    "with a host, of at most 2048 bytes without spaces or control characters");
}

/* Options into the headers object, the query (checked) and its text; an exit status. */
static int
add_parse(const struct cli_args *a, json_object *headers, struct query *q, char **filter)
{
	size_t flen = 0;
	int ret;

	for (size_t i = 0; i < a->nopts; i++) {
		const char *v = a->opts[i].value;
		int id = a->opts[i].id;
		if (id == OPT_HEADER) {
			if ((ret = add_header(a->cmd, headers, v)) != 0)
				return ret;
			continue;
		}
		const char *name;
		if ((ret = cli_filter_set(a->cmd, q, id, v, &name)) != 0)
			return ret;
		if (filter_add(filter, &flen, name, v) != 0)
			return cli_fail(EXIT_STORE, "out of memory");
	}
	if (q->statuses & ((1u << TASK_ENQUEUED) | (1u << TASK_PROCESSING)))
		return cli_usage(a->cmd, "a webhook gets finished tasks only: --statuses takes "
		    "succeeded, failed and canceled");
	if (flen > WEBHOOK_FILTER_MAX)
		return cli_usage(a->cmd, "the filters are too long (4096 bytes at most)");
	if (*filter == NULL && (*filter = strdup("")) == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	return 0;
}

/* The log's bounds for report_webhook(). */
static int
log_bounds(store *s, uint64_t *first, uint64_t *last)
{
	MDB_txn *txn;
	int rc = store_txn_begin(s, MDB_RDONLY, &txn);

	if (rc == 0) {
		rc = feed_bounds(s, txn, first, last);
		mdb_txn_abort(txn);
	}
	return rc;
}

struct webhook_out {
	const struct webhook *w;
	uint64_t first, last;
};

static int
render_webhook(struct printbuf *pb, const void *ctx)
{
	const struct webhook_out *o = ctx;

	return report_webhook(pb, o->w, o->first, o->last);
}

/* The handler of its table entry below. */
static int
run_webhook_add(const struct cli_args *a)
{
	json_object *headers = json_object_new_object();
	struct query *q = malloc(sizeof(*q));
	struct webhook w = { 0 };
	struct webhook_out o = { &w, 1, 0 };
	char *filter = NULL;
	store *s = NULL;
	int rc, ret;

	if (headers == NULL || q == NULL) {
		ret = cli_fail(EXIT_STORE, "out of memory");
		goto out;
	}
	query_init(q);
	if (a->argc != 1) {
		ret = cli_usage(a->cmd, "it takes one URL, then --header and the filters of list");
		goto out;
	}
	if ((ret = check_url(a->cmd, a->argv[0])) != 0 ||
	    (ret = add_parse(a, headers, q, &filter)) != 0)
		goto out;
	const char *h = json_object_to_json_string_ext(headers, JSON_C_TO_STRING_PLAIN);
	if (strlen(h) > WEBHOOK_HEADERS_MAX) {
		ret = cli_usage(a->cmd, "the headers are too long (8192 bytes at most)");
		goto out;
	}
	w.url = (struct task_str){ a->argv[0], strlen(a->argv[0]) };
	w.headers = (struct task_str){ h, strlen(h) };
	w.filter = (struct task_str){ filter, strlen(filter) };
	if ((ret = cli_open(0, &s)) != 0)
		goto out;
	if ((rc = ops_webhook_add(s, &w)) != 0 || (rc = log_bounds(s, &o.first, &o.last)) != 0)
		ret = cli_store_failure(rc, "no webhook was added; writing");
	else
		ret = cli_print(render_webhook, &o);
out:
	store_close(s);
	json_object_put(headers);
	free(filter);
	free(q);
	return ret;
}

static const struct option webhook_add_options[] = {
	CLI_FILTER_OPTIONS,
	{ "header", required_argument, NULL, OPT_HEADER },
	{ 0 }
};
const struct cli_command cli_cmd_webhook_add = { "webhook add", webhook_add_options,
	"  webhook add URL [--header 'Name: value']... [FILTERS]\n"
	"                                      POST the tasks that finish from now on and\n"
	"                                      match FILTERS (as for list) to URL, through\n"
	"                                      `lmtasks notify`; prints the webhook\n",
	run_webhook_add };

/* ---- list, delete ---- */

struct list_ctx {
	struct printbuf *pb;
	uint64_t first, last;
	int n;
};

static int
list_one(void *ctx, const struct webhook *w)
{
	struct list_ctx *lc = ctx;

	if (lc->n++ && render_comma(lc->pb) != 0)
		return ENOMEM;
	return report_webhook(lc->pb, w, lc->first, lc->last);
}

/* Each webhook with the log's bounds, which its report compares its cursor to. */
static int
walk_webhooks(store *s, MDB_txn *txn, struct printbuf *pb, void *ctx)
{
	struct list_ctx *lc = ctx;
	int rc;

	lc->pb = pb;
	if ((rc = feed_bounds(s, txn, &lc->first, &lc->last)) != 0)
		return rc;
	return webhook_walk(s, txn, list_one, lc);
}

/* The handler of its table entry below. */
static int
run_webhook_list(const struct cli_args *a)
{
	struct list_ctx lc = { NULL, 1, 0, 0 };

	if (a->argc)
		return cli_usage(a->cmd, a->hint);
	return cli_print_list(walk_webhooks, &lc, "reading the webhooks of");
}

const struct cli_command cli_cmd_webhook_list = { "webhook list", NULL,
	"  webhook list                        the webhooks, their cursors and last errors\n",
	run_webhook_list };

/* The handler of its table entry below. */
static int
run_webhook_delete(const struct cli_args *a)
{
	uint64_t id;
	store *s;
	int rc, ret;

	if (a->argc != 1)
		return cli_usage(a->cmd, a->hint);
	if ((ret = cli_parse_uid(a->argv[0], &id)) != 0)
		return ret;
	if ((ret = cli_open(0, &s)) != 0)
		return ret;
	rc = ops_webhook_delete(s, id);
	store_close(s);
	if (rc == MDB_NOTFOUND)
		return cli_fail(EXIT_NOTFOUND, "no webhook %" PRIu64 " (see `lmtasks webhook list`)",
		    id);
	if (rc)
		return cli_store_failure(rc, "no webhook was deleted; writing");
	return cli_print(cli_render_deleted, NULL);
}

const struct cli_command cli_cmd_webhook_delete = { "webhook delete", NULL,
	"  webhook delete ID                   remove a webhook\n",
	run_webhook_delete };

/* ---- notify ---- */

#ifndef LMTASKS_NOTIFY_PATH
#define LMTASKS_NOTIFY_PATH "lmtasks-notify"
#endif

/*
 * notify's handler in lmtasks: becomes lmtasks-notify with this process's arguments as
 * given (--db among them; the environment, LMTASKS_DB too, goes along), so the process
 * that a script or a service manager signals is the deliverer itself.  LMTASKS_NOTIFY
 * names another program (the tests point it at the build tree's).
 */
static int
run_notify(const struct cli_args *a)
{
	const char *path = getenv("LMTASKS_NOTIFY");
	int err;

	(void)a;	/* lmtasks-notify checks them again, with their values */
	if (path == NULL || *path == '\0')
		path = LMTASKS_NOTIFY_PATH;
	fflush(NULL);
	cli_argv[0] = (char *)path;
	execv(path, cli_argv);
	err = errno;
	return cli_fail(err == ENOENT ? EXIT_NOPROGRAM : EXIT_NOEXEC, "notify: cannot run %s: %s; webhook delivery "
	    "is that program, installed with lmtasks (or set LMTASKS_NOTIFY to its path)",
	    path, strerror(err));
}

static const struct option notify_options[] = {
	{ "once", no_argument, NULL, CLI_NOTIFY_ONCE },
	{ "interval", required_argument, NULL, CLI_NOTIFY_INTERVAL },
	{ "batch-size", required_argument, NULL, CLI_NOTIFY_BATCH },
	{ 0 }
};
const struct cli_command cli_cmd_notify = { "notify", notify_options,
	"  notify [--once] [--interval SECONDS] [--batch-size N]\n"
	"                                      deliver the webhooks: POST each one's\n"
	"                                      finished tasks as gzip NDJSON, retrying\n"
	"                                      until a 2xx; --once delivers what is\n"
	"                                      pending and exits (5: a receiver failed)\n",
	run_notify };
