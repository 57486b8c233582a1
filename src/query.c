/* Walks one sequence in uid order and renders a page with its total and next. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/route.h"

#define QUERY_VALUE_MAX 1024

static const char *const params[] = { "limit", "from", "reverse" };
#define NPARAMS (sizeof(params) / sizeof(params[0]))

void
query_init(struct query *q)
{
	q->limit = QUERY_LIMIT_DEFAULT;
	q->from = TASK_NO_UID;
	q->reverse = 0;
	q->index.ptr = NULL;
	q->index.len = 0;
}

/* Parses a decimal u64 with no sign, no spaces, no hex; returns 0 or -1. */
static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
bad_value(struct api_error *err, const char *code, const char *name, const char *v, size_t vl,
    const char *expected)
{
	char q[128];

	return api_error_set(err, 400, code, "invalid_request",
	    "Invalid value in parameter `%s`: could not parse `%s` as %s.", name,
	    route_quote(v, vl, q, sizeof(q)), expected);
}

static int
set_param(int which, const char *v, size_t vl, struct query *q, struct api_error *err)
{
	uint64_t n;

	switch (which) {
	case 0:
		if (parse_u64(v, vl, &n) != 0)
			return bad_value(err, "invalid_task_limit", "limit", v, vl, "a positive integer");
		if (n > QUERY_LIMIT_MAX)
			return api_error_set(err, 400, "invalid_task_limit", "invalid_request",
			    "Invalid value in parameter `limit`: `%.24s` is above the maximum of %d.",
			    v, QUERY_LIMIT_MAX);
		q->limit = (unsigned)n;
		return 0;
	case 1:
		if (parse_u64(v, vl, &n) != 0 || n == TASK_NO_UID)
			return bad_value(err, "invalid_task_from", "from", v, vl, "a positive integer");
		q->from = n;
		return 0;
	default:
		if (vl == 4 && memcmp(v, "true", 4) == 0)
			q->reverse = 1;
		else if (vl == 5 && memcmp(v, "false", 5) == 0)
			q->reverse = 0;
		else
			return bad_value(err, "invalid_task_reverse", "reverse", v, vl,
			    "a boolean, expected either `true` or `false`");
		return 0;
	}
}

int
query_parse(const char *qs, struct query *q, struct api_error *err)
{
	char name[QUERY_VALUE_MAX], value[QUERY_VALUE_MAX], quoted[128];
	unsigned seen = 0;

	if (qs == NULL)
		return 0;
	for (const char *p = qs; *p;) {
		size_t pl = strcspn(p, "&"), nl = strcspn(p, "=&");
		const char *v = p + nl + (nl < pl);
		size_t vl = pl - nl - (nl < pl);
		long dn, dv;

		if (pl == 0) {
			p++;
			continue;
		}
		if (nl >= sizeof(name) || vl >= sizeof(value))
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "A query parameter is longer than %d bytes.", QUERY_VALUE_MAX - 1);
		if ((dn = route_unescape(p, nl, 1, name)) < 0 || (dv = route_unescape(v, vl, 1, value)) < 0)
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "The query string has a malformed percent-escape in `%s`.",
			    route_quote(p, pl, quoted, sizeof(quoted)));
		size_t which = 0;
		while (which < NPARAMS && !(strlen(params[which]) == (size_t)dn &&
		    memcmp(params[which], name, (size_t)dn) == 0))
			which++;
		if (which == NPARAMS)
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "Unknown parameter `%s`: expected one of `limit`, `from`, `reverse`.",
			    route_quote(name, (size_t)dn, quoted, sizeof(quoted)));
		if (seen & (1u << which))
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "Parameter `%s` is given more than once.", params[which]);
		seen |= 1u << which;
		int rc = set_param((int)which, value, (size_t)dv, q, err);
		if (rc)
			return rc;
		p += pl + (p[pl] == '&');
	}
	return 0;
}

int
query_run(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    struct printbuf *pb, uint64_t *bad)
{
	enum store_seq seq = q->index.ptr ? STORE_SEQ_INDEX : STORE_SEQ_ALL;
	uint64_t total, uid, first = TASK_NO_UID, next = TASK_NO_UID;
	uint64_t from = q->from != TASK_NO_UID ? q->from : q->reverse ? 0 : UINT64_MAX;
	unsigned n = 0;
	int rc;

	if ((rc = store_count(s, txn, seq, q->index.ptr, q->index.len, &total)) != 0)
		return rc;
	if ((rc = render_list_open(pb)) != 0)
		return rc;
	rc = store_iter_seek(it, seq, q->index.ptr, q->index.len, from, !q->reverse, &uid);
	while (rc == 0) {
		struct task t;
		if (n == q->limit) {
			next = uid;
			break;
		}
		if ((rc = store_get(s, txn, uid, &t)) != 0) {
			*bad = uid;
			return rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
		}
		if (n == 0)
			first = uid;
		else if ((rc = render_comma(pb)) != 0)
			return rc;
		if ((rc = render_task(pb, &t)) != 0)
			return rc;
		n++;
		rc = store_iter_next(it, &uid);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	return render_list_close(pb, total, q->limit, first, next);
}
