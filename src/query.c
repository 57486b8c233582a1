/* Filters, totals and pages over the store's sequences. */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/query.h"

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

/* What walk() gives fn and what it saw: at most max matches go to fn; first is the first of
 * them, next the match after the last (TASK_NO_UID for none). */
struct span {
	uint64_t max, n, first, next;
};

/* The walk behind query_walk() and query_page(): plan, position, then each candidate read
 * and tested until fn stops it, the span is full, or the candidates run out. */
static int
walk(store_iter *it, const struct query *q, int (*fn)(void *ctx, const struct task *t),
    void *ctx, struct span *sp, uint64_t *bad)
{
	struct plan plan, *p = &plan;
	struct cursor cur, *c = &cur;
	uint64_t uid;
	int rc;

	if (q->empty)
		return 0;
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
		    p->kind == PLAN_UIDS)) {
			if (sp->n == sp->max) {
				sp->next = t.uid;	/* one past the span gives next */
				break;
			}
			if (sp->n++ == 0)
				sp->first = t.uid;
			if ((rc = fn(ctx, &t)) != 0)
				break;
		}
		rc = cursor_next(c, &uid);
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
query_walk(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    int (*fn)(void *ctx, const struct task *t), void *ctx, uint64_t *bad)
{
	struct span sp = { UINT64_MAX, 0, TASK_NO_UID, TASK_NO_UID };

	(void)s;
	(void)txn;
	return walk(it, q, fn, ctx, &sp, bad);
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

int
query_page(store *s, MDB_txn *txn, store_iter *it, const struct query *q,
    int (*fn)(void *ctx, const struct task *t), void *ctx, struct query_page *pg, uint64_t *bad)
{
	struct span sp = { q->limit, 0, TASK_NO_UID, TASK_NO_UID };
	int rc = walk(it, q, fn, ctx, &sp, bad);

	pg->first = sp.first;
	pg->next = sp.next;
	return rc ? rc : query_total(s, txn, it, q, &pg->total, bad);
}
