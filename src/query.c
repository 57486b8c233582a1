/* Filters, totals and pages over the store's sequences. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
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

void
query_init(struct query *q)
{
	q->limit = QUERY_LIMIT_DEFAULT;
	q->from = TASK_NO_UID;
	q->reverse = 0;
	q->statuses = 0;
	q->nuids = q->ncanceled = q->ntypes = q->nindexes = q->nbatches = 0;
	q->v1 = 0;
	for (int i = 0; i < QUERY_NTIME; i++) {
		q->after[i] = INT64_MIN;
		q->before[i] = INT64_MAX;
	}
	q->patterns = NULL;
	q->npatterns = 0;
	q->given = 0;
	q->empty = 0;
	q->text_used = 0;
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

__attribute__((format(printf, 4, 5)))
static int
invalid(struct api_error *err, enum param p, const char *v, const char *fmt, ...)
{
	char what[700];
	va_list ap;

	(void)v;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return api_error_set(err, 400, params[p].code, "invalid_request",
	    "Invalid value in parameter `%s`: %s", params[p].name, what);
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

/* One item of a comma list: checks it and stores it in q.  Returns 0 or an error status. */
static int
list_item(struct query *q, enum param p, const char *v, size_t len, size_t *n,
    struct api_error *err)
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
set_list(struct query *q, enum param p, const char *v, size_t len, struct api_error *err)
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
set_date(struct query *q, enum param p, const char *v, size_t len, struct api_error *err)
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
query_set(struct query *q, const char *name, const char *v, size_t len, struct api_error *err)
{
	char qn[128], qv[128];
	uint64_t n;
	int p = 0;

	while (p < P_COUNT && strcmp(params[p].name, name) != 0)
		p++;
	if (p == P_COUNT || (p == P_BATCH_UIDS && !q->v1))
		return api_error_set(err, 400, "bad_request", "invalid_request",
		    "Unknown parameter `%s`: expected one of %s",
		    quote_text(name, strlen(name), qn, sizeof(qn)), names_of(q));
	if (q->given & (1u << p))
		return api_error_set(err, 400, "bad_request", "invalid_request",
		    "Parameter `%s` is given more than once.", params[p].name);
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
query_parse(const char *qs, struct query *q, struct api_error *err)
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
		if (nl >= sizeof(name)) {
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "Unknown parameter `%s`: expected one of %s",
			    quote_text(p, nl, quoted, sizeof(quoted)), names_of(q));
		}
		if (vl > QUERY_VALUE_MAX) {
			/* A known parameter's own code, as the CLI gives for the same value. */
			int k = 0;
			while (k < P_COUNT && !(strlen(params[k].name) == nl &&
			    memcmp(params[k].name, p, nl) == 0))
				k++;
			if (k < P_COUNT)
				return invalid(err, (enum param)k, v, "the value is longer than %d bytes.",
				    QUERY_VALUE_MAX);
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "Unknown parameter `%s`: expected one of %s",
			    quote_text(p, nl, quoted, sizeof(quoted)), names_of(q));
		}
		if ((dn = text_unescape(p, nl, 1, name)) < 0 || (dvl = text_unescape(v, vl, 1, dv)) < 0) {
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "The query string has a malformed percent-escape in `%s`.",
			    quote_text(p, pl, quoted, sizeof(quoted)));
		}
		name[dn] = '\0';
		if (memchr(name, '\0', (size_t)dn)) {
			return api_error_set(err, 400, "bad_request", "invalid_request",
			    "Unknown parameter `%s`: expected one of %s",
			    quote_text(name, (size_t)dn, quoted, sizeof(quoted)), names_of(q));
		}
		int rc = query_set(q, name, dv, (size_t)dvl, err);
		if (rc)
			return rc;
		p += pl + (p[pl] == '&');
	}
	return 0;
}

void
query_scope(struct query *q, const char *index, size_t len)
{
	int listed = q->nindexes == 0;

	for (size_t i = 0; i < q->nindexes; i++) {
		if (q->indexes[i].len == len && memcmp(q->indexes[i].ptr, index, len) == 0)
			listed = 1;
	}
	q->empty |= !listed;
	q->indexes[0] = (struct task_str){ index, len };
	q->nindexes = 1;
}

static int
str_in(const struct task_str *set, size_t n, struct task_str s);

void
query_restrict(struct query *q, const struct task_str *names, size_t n)
{
	size_t kept = 0;

	if (q->nindexes == 0) {
		memcpy(q->indexes, names, n * sizeof(*names));
		q->nindexes = n;
	} else {
		for (size_t i = 0; i < q->nindexes; i++) {
			if (str_in(names, n, q->indexes[i]))
				q->indexes[kept++] = q->indexes[i];
		}
		q->nindexes = kept;
	}
	q->empty |= q->nindexes == 0;
}

void
query_allow(struct query *q, const struct task_str *patterns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (patterns[i].len > 0 && patterns[i].ptr[patterns[i].len - 1] == '*') {
			q->patterns = patterns;
			q->npatterns = n;
			return;
		}
	}
	/* Exact names only: a plain index filter, which the counts can total. */
	query_restrict(q, patterns, n);
}

static int
pattern_in(const struct task_str *set, size_t n, struct task_str s)
{
	for (size_t i = 0; i < n; i++) {
		if (task_index_match(set[i], s))
			return 1;
	}
	return 0;
}

static int
str_in(const struct task_str *set, size_t n, struct task_str s)
{
	for (size_t i = 0; i < n; i++) {
		if (set[i].len == s.len && s.ptr && memcmp(set[i].ptr, s.ptr, s.len) == 0)
			return 1;
	}
	return 0;
}

static int
u64_in(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] == x)
			return 1;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* query_match(), but for the filter that the walked sequence guarantees already (implied:
 * the union's sequence, or STORE_SEQ_ALL for none; uids: walking the uids list). */
static int
match(const struct query *q, const struct task *t, enum store_seq implied, int uids)
{
	if (q->empty)
		return 0;
	if (q->statuses && implied != STORE_SEQ_STATUS && !(q->statuses & (1u << t->status)))
		return 0;
	if (q->nindexes && implied != STORE_SEQ_INDEX &&
	    !str_in(q->indexes, q->nindexes, t->index_uid))
		return 0;
	if (q->npatterns && !pattern_in(q->patterns, q->npatterns, t->index_uid))
		return 0;
	if (q->ntypes && implied != STORE_SEQ_TYPE && !str_in(q->types, q->ntypes, t->type))
		return 0;
	if (q->nuids && !uids && !u64_in(q->uids, q->nuids, t->uid))
		return 0;
	if (q->ncanceled && (t->canceled_by == TASK_NO_UID ||
	    !u64_in(q->canceled, q->ncanceled, t->canceled_by)))
		return 0;
	if (q->nbatches && (!t->has_batch || !u64_in(q->batches, q->nbatches, t->batch_uid)))
		return 0;
	for (int i = 0; i < QUERY_NTIME; i++) {
		if (q->after[i] == INT64_MIN && q->before[i] == INT64_MAX)
			continue;
		int64_t at = i == 0 ? t->enqueued_at : i == 1 ? t->started_at : t->finished_at;
		/* A date filter on a time that is not set yet does not match. */
		if (at == 0 || at <= q->after[i] || at >= q->before[i])
			return 0;
	}
	return 1;
}

int
query_match(const struct query *q, const struct task *t)
{
	return match(q, t, STORE_SEQ_ALL, 0);
}

/*
 * The candidate sequence a query walks: every task, the uids list, or the union of
 * a few keys of one secondary index, whichever is smallest.  A union is merged in
 * uid order with one cursor: each key keeps its next uid, and the key that gave
 * one is sought again just past it.
 */
enum plan_kind { PLAN_ALL, PLAN_UIDS, PLAN_UNION };

struct plan {
	enum plan_kind kind;
	enum store_seq seq;
	size_t nkeys;
	const void *keys[QUERY_LIST_MAX];
	size_t keylens[QUERY_LIST_MAX];
	unsigned char status_keys[TASK_NSTATUS];
	uint64_t estimate;
};

struct cursor {
	const struct plan *p;
	const struct query *q;
	store_iter *it;
	int desc;
	size_t upos;			/* PLAN_UIDS: the next index into q->uids */
	uint64_t heads[QUERY_LIST_MAX];	/* PLAN_UNION: each key's next uid, TASK_NO_UID at its end */
};

/* Fills the keys of one sequence's union from q; returns their number. */
static size_t
union_keys(const struct query *q, enum store_seq seq, struct plan *p)
{
	size_t n = 0;

	switch (seq) {
	case STORE_SEQ_INDEX:
		for (; n < q->nindexes; n++) {
			p->keys[n] = q->indexes[n].ptr;
			p->keylens[n] = q->indexes[n].len;
		}
		break;
	case STORE_SEQ_TYPE:
		for (; n < q->ntypes; n++) {
			p->keys[n] = q->types[n].ptr;
			p->keylens[n] = q->types[n].len;
		}
		break;
	case STORE_SEQ_STATUS:
		for (int st = 0; st < TASK_NSTATUS; st++) {
			if (!(q->statuses & (1u << st)))
				continue;
			p->status_keys[n] = (unsigned char)st;
			p->keys[n] = &p->status_keys[n];
			p->keylens[n++] = 1;
		}
		break;
	default:
		break;
	}
	return n;
}

static int
plan_make(store_iter *it, const struct query *q, struct plan *p)
{
	static const enum store_seq seqs[] = { STORE_SEQ_INDEX, STORE_SEQ_STATUS, STORE_SEQ_TYPE };
	enum store_seq best = STORE_SEQ_ALL;
	int rc;

	p->kind = PLAN_ALL;
	p->seq = STORE_SEQ_ALL;
	p->nkeys = 0;
	if ((rc = store_iter_count(it, STORE_SEQ_ALL, NULL, 0, &p->estimate)) != 0)
		return rc;
	if (q->nuids && q->nuids < p->estimate) {
		p->kind = PLAN_UIDS;
		p->estimate = q->nuids;
	}
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		size_t n = union_keys(q, seqs[i], p);
		uint64_t total = 0, c;
		for (size_t k = 0; k < n; k++) {
			if ((rc = store_iter_count(it, seqs[i], p->keys[k], p->keylens[k], &c)) != 0)
				return rc;
			total += c;
		}
		if (n > 0 && total < p->estimate) {
			best = seqs[i];
			p->estimate = total;
		}
	}
	if (best != STORE_SEQ_ALL) {
		p->kind = PLAN_UNION;
		p->seq = best;
		p->nkeys = union_keys(q, best, p);
	}
	return 0;
}

/* Seeks key i of the union from uid from (inclusive) in the walk's direction. */
static int
head_seek(struct cursor *c, size_t i, uint64_t from)
{
	int rc = store_iter_seek_key(c->it, i, c->p->seq, c->p->keys[i], c->p->keylens[i], from,
	    c->desc, &c->heads[i]);

	if (rc == MDB_NOTFOUND) {
		c->heads[i] = TASK_NO_UID;
		rc = 0;
	}
	return rc;
}

/* Moves key i of the union past the uid it gave: one step of its own cursor, or, for a
 * key without one, a seek just past that uid. */
static int
head_next(struct cursor *c, size_t i)
{
	uint64_t last = c->heads[i];
	int rc;

	if (i >= store_iter_slots()) {
		if (c->desc && last == 0) {
			c->heads[i] = TASK_NO_UID;
			return 0;
		}
		return head_seek(c, i, c->desc ? last - 1 : last + 1);
	}
	rc = store_iter_next_key(c->it, i, c->p->seq, c->desc, &c->heads[i]);
	if (rc == MDB_NOTFOUND) {
		c->heads[i] = TASK_NO_UID;
		rc = 0;
	}
	return rc;
}

static int
cursor_next(struct cursor *c, uint64_t *uid)
{
	size_t best = SIZE_MAX;

	switch (c->p->kind) {
	case PLAN_ALL:
		return store_iter_next(c->it, uid);
	case PLAN_UIDS:
		/* Descending, upos counts the uids still to give, taken from the top. */
		if (c->desc ? c->upos == 0 : c->upos == c->q->nuids)
			return MDB_NOTFOUND;
		*uid = c->q->uids[c->desc ? --c->upos : c->upos++];
		return 0;
	case PLAN_UNION:
		for (size_t i = 0; i < c->p->nkeys; i++) {
			if (c->heads[i] != TASK_NO_UID && (best == SIZE_MAX ||
			    (c->desc ? c->heads[i] > c->heads[best] : c->heads[i] < c->heads[best])))
				best = i;
		}
		if (best == SIZE_MAX)
			return MDB_NOTFOUND;
		*uid = c->heads[best];
		return head_next(c, best);
	}
	return MDB_NOTFOUND;
}

/* Positions the cursor at from (inclusive) and gives the first uid. */
static int
cursor_start(struct cursor *c, uint64_t from, uint64_t *uid)
{
	size_t i = 0;
	int rc;

	switch (c->p->kind) {
	case PLAN_ALL:
		return store_iter_seek(c->it, STORE_SEQ_ALL, NULL, 0, from, c->desc, uid);
	case PLAN_UIDS:
		if (c->desc)
			while (i < c->q->nuids && c->q->uids[i] <= from)
				i++;
		else
			while (i < c->q->nuids && c->q->uids[i] < from)
				i++;
		c->upos = i;
		return cursor_next(c, uid);
	case PLAN_UNION:
		for (; i < c->p->nkeys; i++) {
			if ((rc = head_seek(c, i, from)) != 0)
				return rc;
		}
		return cursor_next(c, uid);
	}
	return MDB_NOTFOUND;
}

int
query_walk(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    int (*fn)(void *ctx, const struct task *t), void *ctx, uint64_t *bad)
{
	struct plan plan, *p = &plan;
	struct cursor cur, *c = &cur;
	uint64_t uid;
	int rc;

	if (q->empty)
		return 0;
	(void)s;
	(void)txn;
	if ((rc = plan_make(it, q, p)) != 0)
		return rc;
	c->p = p;
	c->q = q;
	c->it = it;
	c->desc = !q->reverse;
	rc = cursor_start(c, q->from != TASK_NO_UID ? q->from : c->desc ? UINT64_MAX - 1 : 0, &uid);
	while (rc == 0) {
		struct task t;
		/* Walking the tasks themselves, the record is under the cursor already. */
		rc = p->kind == PLAN_ALL ? store_iter_get(it, &t) : store_iter_fetch(it, uid, &t);
		if (rc != 0) {
			/* A uid from the list may name no task; one from an index must. */
			if (rc == MDB_NOTFOUND && p->kind == PLAN_UIDS) {
				rc = cursor_next(c, &uid);
				continue;
			}
			*bad = uid;
			rc = rc == MDB_NOTFOUND ? LMT_ECORRUPT : rc;
			break;
		}
		/* A union's key or a listed uid is a filter passed already. */
		if (match(q, &t, p->kind == PLAN_UNION ? p->seq : STORE_SEQ_ALL,
		    p->kind == PLAN_UIDS) && (rc = fn(ctx, &t)) != 0)
			break;
		rc = cursor_next(c, &uid);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
count_one(void *ctx, const struct task *t)
{
	(void)t;
	++*(uint64_t *)ctx;
	return 0;
}

int
query_total(store *s, MDB_txn *txn, store_iter *it, const struct query *q, uint64_t *total,
    uint64_t *bad)
{
	struct query all;
	int counted = q->nuids == 0 && q->ncanceled == 0 && q->npatterns == 0 && q->nbatches == 0;

	for (int i = 0; i < QUERY_NTIME; i++)
		counted &= q->after[i] == INT64_MIN && q->before[i] == INT64_MAX;
	*total = 0;
	if (q->empty)
		return 0;
	if (counted)
		return store_iter_count_sets(it, q->indexes, q->nindexes, q->statuses, q->types,
		    q->ntypes, total);
	/* Every page together: the same walk from the start, counting. */
	memcpy(&all, q, offsetof(struct query, text));
	all.from = TASK_NO_UID;
	return query_walk(s, txn, it, &all, count_one, total, bad);
}

#define PAGE_FULL (-1)	/* no LMDB, errno or lmt code */

struct page {
	struct printbuf *pb;
	const struct query *q;
	unsigned n;
	uint64_t first, next;
};

static int
page_add(void *ctx, const struct task *t)
{
	struct page *pg = ctx;
	int rc;

	if (pg->n == pg->q->limit) {
		pg->next = t->uid;
		return PAGE_FULL;	/* one past the page gives next */
	}
	if (pg->n == 0)
		pg->first = t->uid;
	else if ((rc = render_comma(pg->pb)) != 0)
		return rc;
	if ((rc = render_task_as(pg->pb, t, pg->q->v1)) != 0)
		return rc;
	pg->n++;
	return 0;
}

int
query_run(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    struct printbuf *pb, uint64_t *bad)
{
	struct page pg = { pb, q, 0, TASK_NO_UID, TASK_NO_UID };
	uint64_t total;
	int rc;

	if ((rc = render_list_open(pb)) != 0)
		return rc;
	rc = query_walk(s, txn, it, q, page_add, &pg, bad);
	if (rc != 0 && rc != PAGE_FULL)
		return rc;
	if ((rc = query_total(s, txn, it, q, &total, bad)) != 0)
		return rc;
	return render_list_close(pb, total, q->limit, pg.first, pg.next);
}
