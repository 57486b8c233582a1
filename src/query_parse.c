/* A query's parameters from a query string or the CLI's flags: each value checked, with
 * Meilisearch's code and message for the first one refused. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/quote.h"
#include "lmtasks/text.h"
#include "lmtasks/timefmt.h"

#define QUERY_VALUE_MAX QUERY_TEXT_MAX

enum param {
	P_LIMIT, P_FROM, P_REVERSE, P_UIDS, P_STATUSES, P_TYPES, P_INDEX_UIDS, P_CANCELED_BY,
	P_BEFORE_ENQUEUED, P_AFTER_ENQUEUED, P_BEFORE_STARTED, P_AFTER_STARTED,
	P_BEFORE_FINISHED, P_AFTER_FINISHED, P_BATCH_UIDS, P_COUNT
};

static const struct {
	const char *name;
	const char *code;
} params[P_COUNT] = {
	[P_LIMIT] = { "limit", "invalid_task_limit" },
	[P_FROM] = { "from", "invalid_task_from" },
	[P_REVERSE] = { "reverse", "invalid_task_reverse" },
	[P_UIDS] = { "uids", "invalid_task_uids" },
	[P_STATUSES] = { "statuses", "invalid_task_statuses" },
	[P_TYPES] = { "types", "invalid_task_types" },
	[P_INDEX_UIDS] = { "indexUids", "invalid_index_uid" },
	[P_CANCELED_BY] = { "canceledBy", "invalid_task_canceled_by" },
	[P_BEFORE_ENQUEUED] = { "beforeEnqueuedAt", "invalid_task_before_enqueued_at" },
	[P_AFTER_ENQUEUED] = { "afterEnqueuedAt", "invalid_task_after_enqueued_at" },
	[P_BEFORE_STARTED] = { "beforeStartedAt", "invalid_task_before_started_at" },
	[P_AFTER_STARTED] = { "afterStartedAt", "invalid_task_after_started_at" },
	[P_BEFORE_FINISHED] = { "beforeFinishedAt", "invalid_task_before_finished_at" },
	[P_AFTER_FINISHED] = { "afterFinishedAt", "invalid_task_after_finished_at" },
	[P_BATCH_UIDS] = { "batchUids", "invalid_batch_uids" },
};

/* In Meilisearch's order (its query structure's), which its message keeps; batchUids only
 * where batches are shown (compat v1). */
static const char param_names_v1[] = "`limit`, `from`, `reverse`, `batchUids`, `uids`, "
    "`canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, "
    "`afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`";
static const char param_names[] = "`limit`, `from`, `reverse`, `uids`, "
    "`canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, "
    "`afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`";

const char *
query_param_names(void)
{
	return param_names;
}

int
query_paged(const struct query *q)
{
	return (q->given & (1u << P_LIMIT | 1u << P_FROM | 1u << P_REVERSE)) != 0;
}

/* The names q accepts, for the unknown-parameter message. */
static const char *
names_of(const struct query *q)
{
	return q->v1 ? param_names_v1 : param_names;
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

/* Fills why with code and the formatted message; returns LMT_EINVAL. */
__attribute__((format(printf, 3, 4)))
static int
refuse(struct query_error *why, const char *code, const char *fmt, ...)
{
	va_list ap;

	why->code = code;
	va_start(ap, fmt);
	vsnprintf(why->message, sizeof(why->message), fmt, ap);
	va_end(ap);
	return LMT_EINVAL;
}

/* A bad value of parameter p: its own code, and a message that names it. */
__attribute__((format(printf, 4, 5)))
static int
invalid(struct query_error *err, enum param p, const char *v, const char *fmt, ...)
{
	char what[700];
	va_list ap;

	(void)v;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return refuse(err, params[p].code, "Invalid value in parameter `%s`: %s", params[p].name,
	    what);
}

/* An unknown parameter: the names q accepts, in Meilisearch's message. */
static int
unknown(struct query_error *err, const struct query *q, const char *name, size_t len)
{
	char shown[128];

	return refuse(err, "bad_request", "Unknown parameter `%s`: expected one of %s",
	    quote_text(name, len, shown, sizeof(shown)), names_of(q));
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts and removes duplicates. */
static size_t
sort_unique(uint64_t *v, size_t n)
{
	size_t m = 0;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	}
	return m;
}

/* Drops repeated strings, keeping the first of each: a union walks each key once. */
static size_t
unique_strs(struct task_str *v, size_t n)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < m && !(v[j].len == v[i].len && memcmp(v[j].ptr, v[i].ptr, v[i].len) == 0))
			j++;
		if (j == m)
			v[m++] = v[i];
	}
	return m;
}

/* One item of a comma list: checks it and stores it in q.  Returns 0 or LMT_EINVAL. */
static int
list_item(struct query *q, enum param p, const char *v, size_t len, size_t *n,
    struct query_error *err)
{
	char qv[128];
	const char *shown = quote_text(v, len, qv, sizeof(qv));
	enum task_status st;
	uint64_t u;

	if (*n == QUERY_LIST_MAX)
		return invalid(err, p, v, "more than %d values.", QUERY_LIST_MAX);
	switch (p) {
	case P_UIDS:
	case P_CANCELED_BY:
	case P_BATCH_UIDS:
		if (parse_u64(v, len, &u) != 0 || u == TASK_NO_UID)
			return invalid(err, p, v, "could not parse `%s` as a positive integer", shown);
		(p == P_UIDS ? q->uids : p == P_BATCH_UIDS ? q->batches : q->canceled)[(*n)++] = u;
		return 0;
	case P_STATUSES:
		if (task_status_parse(v, len, &st) != 0)
			return invalid(err, p, v, "`%s` is not a valid task status. Available statuses "
			    "are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`.", shown);
		q->statuses |= 1u << st;
		(*n)++;
		return 0;
	case P_TYPES:
	case P_INDEX_UIDS:
		if (p == P_TYPES && !task_type_valid(v, len))
			return invalid(err, p, v, "`%s` is not a valid task type. A task type is a "
			    "camelCase word of up to 64 letters and digits, like `documentAddition`.",
			    shown);
		if (p == P_INDEX_UIDS && !task_index_uid_valid(v, len))
			return invalid(err, p, v, "`%s` is not a valid index uid. Index uid can be an "
			    "integer or a string containing only alphanumeric characters, hyphens (-) "
			    "and underscores (_), and can not be more than 400 bytes.", shown);
		if (q->text_used + len > sizeof(q->text))
			return invalid(err, p, v, "the values are longer than %d bytes together.",
			    QUERY_TEXT_MAX);
		memcpy(q->text + q->text_used, v, len);
		(p == P_TYPES ? q->types : q->indexes)[(*n)++] =
		    (struct task_str){ q->text + q->text_used, len };
		q->text_used += len;
		return 0;
	default:
		return LMT_EINVAL;
	}
}

/* A comma list where `*` anywhere means any. */
static int
set_list(struct query *q, enum param p, const char *v, size_t len, struct query_error *err)
{
	size_t count = 0, *n = p == P_UIDS ? &q->nuids : p == P_CANCELED_BY ? &q->ncanceled :
	    p == P_BATCH_UIDS ? &q->nbatches :
	    p == P_TYPES ? &q->ntypes : p == P_INDEX_UIDS ? &q->nindexes : &count;
	char qv[128];
	int any = 0, rc;

	for (size_t i = 0; i <= len;) {
		const char *c = memchr(v + i, ',', len - i);
		size_t il = (size_t)((c ? c : v + len) - (v + i));
		if (il == 1 && v[i] == '*')
			any = 1;
		else if (il == 0)
			return invalid(err, p, v, "`%s` has an empty item.",
			    quote_text(v, len, qv, sizeof(qv)));
		else if ((rc = list_item(q, p, v + i, il, n, err)) != 0)
			return rc;
		i += il + 1;
	}
	if (any) {
		*n = 0;
		if (p == P_STATUSES)
			q->statuses = 0;
	}
	if (p == P_TYPES)
		q->ntypes = unique_strs(q->types, q->ntypes);
	if (p == P_INDEX_UIDS)
		q->nindexes = unique_strs(q->indexes, q->nindexes);
	if (p == P_UIDS)
		q->nuids = sort_unique(q->uids, q->nuids);
	if (p == P_CANCELED_BY)
		q->ncanceled = sort_unique(q->canceled, q->ncanceled);
	if (p == P_BATCH_UIDS)
		q->nbatches = sort_unique(q->batches, q->nbatches);
	return 0;
}

static int
set_date(struct query *q, enum param p, const char *v, size_t len, struct query_error *err)
{
	char qv[128];
	int64_t us;
	int date_only, before = (p - P_BEFORE_ENQUEUED) % 2 == 0;
	enum query_time which = (enum query_time)((p - P_BEFORE_ENQUEUED) / 2);

	if (len == 1 && v[0] == '*')
		return 0;
	if (timefmt_parse(v, len, &us, &date_only) != 0)
		return invalid(err, p, v, "`%s` is an invalid date-time. It should follow the "
		    "YYYY-MM-DD or RFC 3339 date-time format.", quote_text(v, len, qv, sizeof(qv)));
	if (before) {
		q->before[which] = us;
	} else {
		/* As in Meilisearch: after a date means from the next day on. */
		q->after[which] = date_only ? us + INT64_C(86400000000) - 1 : us;
	}
	return 0;
}

int
query_set(struct query *q, const char *name, const char *v, size_t len, struct query_error *err)
{
	char qv[128];
	uint64_t n;
	int p = 0;

	while (p < P_COUNT && strcmp(params[p].name, name) != 0)
		p++;
	if (p == P_COUNT || (p == P_BATCH_UIDS && !q->v1))
		return unknown(err, q, name, strlen(name));
	if (q->given & (1u << p))
		return refuse(err, "bad_request", "Parameter `%s` is given more than once.",
		    params[p].name);
	q->given |= 1u << p;

	switch (p) {
	case P_LIMIT:
		if (parse_u64(v, len, &n) != 0)
			return invalid(err, P_LIMIT, v, "could not parse `%s` as a positive integer",
			    quote_text(v, len, qv, sizeof(qv)));
		if (n > QUERY_LIMIT_MAX)
			return invalid(err, P_LIMIT, v, "`%s` is above the maximum of %d.",
			    quote_text(v, len, qv, sizeof(qv)), QUERY_LIMIT_MAX);
		q->limit = (unsigned)n;
		return 0;
	case P_FROM:
		if (parse_u64(v, len, &n) != 0 || n == TASK_NO_UID)
			return invalid(err, P_FROM, v, "could not parse `%s` as a positive integer",
			    quote_text(v, len, qv, sizeof(qv)));
		q->from = n;
		return 0;
	case P_REVERSE:
		if (len == 4 && memcmp(v, "true", 4) == 0)
			q->reverse = 1;
		else if (len == 5 && memcmp(v, "false", 5) == 0)
			q->reverse = 0;
		else
			return invalid(err, P_REVERSE, v, "could not parse `%s` as a boolean, expected "
			    "either `true` or `false`", quote_text(v, len, qv, sizeof(qv)));
		return 0;
	case P_UIDS:
	case P_STATUSES:
	case P_TYPES:
	case P_INDEX_UIDS:
	case P_CANCELED_BY:
	case P_BATCH_UIDS:
		return set_list(q, (enum param)p, v, len, err);
	default:
		return set_date(q, (enum param)p, v, len, err);
	}
}

int
query_parse(const char *qs, struct query *q, struct query_error *err)
{
	char name[64], quoted[128], dv[QUERY_VALUE_MAX + 1];

	if (qs == NULL)
		return 0;
	for (const char *p = qs; *p;) {
		size_t pl = strcspn(p, "&"), nl = strcspn(p, "=&");
		const char *v = p + nl + (nl < pl);
		size_t vl = pl - nl - (nl < pl);
		long dn, dvl;

		if (pl == 0) {
			p++;
			continue;
		}
		if (nl >= sizeof(name))
			return unknown(err, q, p, nl);
		if (vl > QUERY_VALUE_MAX) {
			/* A known parameter's own code, as the CLI gives for the same value. */
			int k = 0;
			while (k < P_COUNT && !(strlen(params[k].name) == nl &&
			    memcmp(params[k].name, p, nl) == 0))
				k++;
			if (k < P_COUNT)
				return invalid(err, (enum param)k, v, "the value is longer than %d bytes.",
				    QUERY_VALUE_MAX);
			return unknown(err, q, p, nl);
		}
		if ((dn = text_unescape(p, nl, 1, name)) < 0 || (dvl = text_unescape(v, vl, 1, dv)) < 0)
			return refuse(err, "bad_request", "The query string has a malformed "
			    "percent-escape in `%s`.", quote_text(p, pl, quoted, sizeof(quoted)));
		name[dn] = '\0';
		if (memchr(name, '\0', (size_t)dn))
			return unknown(err, q, name, (size_t)dn);
		int rc = query_set(q, name, dv, (size_t)dvl, err);
		if (rc)
			return rc;
		p += pl + (p[pl] == '&');
	}
	return 0;
}
