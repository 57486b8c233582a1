/* The batch record, version 2.  Integers little-endian.
 *
 *   0 u8 version  1 u8 0  2 u16 strategy length  4 u32 details length
 *   8 u32 total  12 u32 status counts[5]
 *  32 i64 started  40 i64 finished  48 i64 enqueued min  56 i64 enqueued max
 *  64 u64 first uid  72 u64 last uid  80 u64 canceled by
 *  88 u32 number of types  92 u32 number of indexes
 *  96 u32 kept (version 2 only)
 * 100 the strategy, the details, then each type (u8 length, bytes, u32 count) and each
 *     index (u16 length, bytes, u32 count), in name order.
 *
 * Version 1 (lmtasks 0.2.0) is the same without kept: its names start at 96.
 */
#include "config.h"

#include <string.h>

#include "lmtasks/bytes.h"
#include "lmtasks/error.h"
#include "lmtasks/tbatch.h"

#define HEAD 100
#define HEAD_V1 96

void
tbatch_init(struct tbatch *b, uint64_t uid, int64_t started, struct tbatch_count *types,
    struct tbatch_count *indexes)
{
	memset(b, 0, sizeof(*b));
	b->uid = uid;
	b->started_at = started;
	b->first_uid = TASK_NO_UID;
	b->canceled_by = TASK_NO_UID;
	b->types = types;
	b->indexes = indexes;
	b->details = (struct task_str){ "{}", 2 };
	b->kept = 0;
	b->strategy = (struct task_str){ "unspecified", 11 };
}

static int
name_cmp(struct task_str a, struct task_str b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.ptr, b.ptr, n) : 0;

	return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* Adds delta to name's count in a sorted array, inserting or dropping the entry. */
static int
count_name(struct tbatch_count *v, size_t *n, struct task_str name, int delta)
{
	size_t i = 0;

	while (i < *n && name_cmp(v[i].name, name) < 0)
		i++;
	if (i < *n && name_cmp(v[i].name, name) == 0) {
		if (delta < 0 && v[i].n <= 1) {
			memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
			(*n)--;
		} else {
			v[i].n = (uint32_t)((int64_t)v[i].n + delta);
		}
		return 0;
	}
	if (delta < 0)
		return 0;
	if (*n == TBATCH_NAMES_MAX)
		return LMT_EINVAL;
	memmove(v + i + 1, v + i, (*n - i) * sizeof(*v));
	v[i] = (struct tbatch_count){ name, (uint32_t)delta };
	(*n)++;
	return 0;
}

int
tbatch_add(struct tbatch *b, const struct task *t)
{
	int rc;

	if ((rc = count_name(b->types, &b->ntypes, t->type, 1)) != 0)
		return rc;
	if (t->index_uid.ptr && (rc = count_name(b->indexes, &b->nindexes, t->index_uid, 1)) != 0)
		return rc;
	b->total++;
	if (b->kept != TBATCH_KEPT_UNKNOWN)
		b->kept++;
	b->status[t->status]++;
	if (b->enqueued_min == 0 || t->enqueued_at < b->enqueued_min)
		b->enqueued_min = t->enqueued_at;
	if (t->enqueued_at > b->enqueued_max)
		b->enqueued_max = t->enqueued_at;
	if (b->first_uid == TASK_NO_UID || t->uid < b->first_uid)
		b->first_uid = t->uid;
	if (t->uid > b->last_uid || b->total == 1)
		b->last_uid = t->uid;
	return 0;
}

void
tbatch_remove(struct tbatch *b, const struct task *t)
{
	count_name(b->types, &b->ntypes, t->type, -1);
	if (t->index_uid.ptr)
		count_name(b->indexes, &b->nindexes, t->index_uid, -1);
	if (b->total)
		b->total--;
	tbatch_forget(b, 1);
	if (b->status[t->status])
		b->status[t->status]--;
}

int
tbatch_forget(struct tbatch *b, uint32_t n)
{
	if (b->kept == TBATCH_KEPT_UNKNOWN)
		return LMT_EINVAL;
	b->kept = n < b->kept ? b->kept - n : 0;
	return b->kept == 0;
}

void
tbatch_settle(struct tbatch *b, int64_t now)
{
	if (b->status[TASK_ENQUEUED] == 0 && b->status[TASK_PROCESSING] == 0 && !b->finished_at)
		b->finished_at = now;
}

void
tbatch_move(struct tbatch *b, enum task_status from, enum task_status to, int64_t now)
{
	if (b->status[from])
		b->status[from]--;
	b->status[to]++;
	tbatch_settle(b, now);
}

size_t
tbatch_size(const struct tbatch *b)
{
	size_t n = (b->kept == TBATCH_KEPT_UNKNOWN ? HEAD_V1 : HEAD) + b->strategy.len +
	    b->details.len;

	for (size_t i = 0; i < b->ntypes; i++)
		n += 1 + b->types[i].name.len + 4;
	for (size_t i = 0; i < b->nindexes; i++)
		n += 2 + b->indexes[i].name.len + 4;
	return n;
}

size_t
tbatch_encode(const struct tbatch *b, void *buf)
{
	/* A version-1 record that does not know its kept count stays version 1. */
	int v1 = b->kept == TBATCH_KEPT_UNKNOWN;
	unsigned char *p = buf, *q = p + (v1 ? HEAD_V1 : HEAD);

	memset(p, 0, v1 ? HEAD_V1 : HEAD);
	p[0] = v1 ? 1 : TBATCH_VERSION;
	p[2] = (unsigned char)b->strategy.len;
	p[3] = (unsigned char)(b->strategy.len >> 8);
	bytes_put_u32le(p + 4, (uint32_t)b->details.len);
	bytes_put_u32le(p + 8, b->total);
	for (int i = 0; i < TASK_NSTATUS; i++)
		bytes_put_u32le(p + 12 + 4 * i, b->status[i]);
	bytes_put_u64le(p + 32, (uint64_t)b->started_at);
	bytes_put_u64le(p + 40, (uint64_t)b->finished_at);
	bytes_put_u64le(p + 48, (uint64_t)b->enqueued_min);
	bytes_put_u64le(p + 56, (uint64_t)b->enqueued_max);
	bytes_put_u64le(p + 64, b->first_uid);
	bytes_put_u64le(p + 72, b->last_uid);
	bytes_put_u64le(p + 80, b->canceled_by);
	bytes_put_u32le(p + 88, (uint32_t)b->ntypes);
	bytes_put_u32le(p + 92, (uint32_t)b->nindexes);
	if (!v1)
		bytes_put_u32le(p + 96, b->kept);
	memcpy(q, b->strategy.ptr, b->strategy.len);
	q += b->strategy.len;
	memcpy(q, b->details.ptr, b->details.len);
	q += b->details.len;
	for (size_t i = 0; i < b->ntypes; i++) {
		*q++ = (unsigned char)b->types[i].name.len;
		memcpy(q, b->types[i].name.ptr, b->types[i].name.len);
		q += b->types[i].name.len;
		bytes_put_u32le(q, b->types[i].n);
		q += 4;
	}
	for (size_t i = 0; i < b->nindexes; i++) {
		*q++ = (unsigned char)b->indexes[i].name.len;
		*q++ = (unsigned char)(b->indexes[i].name.len >> 8);
		memcpy(q, b->indexes[i].name.ptr, b->indexes[i].name.len);
		q += b->indexes[i].name.len;
		bytes_put_u32le(q, b->indexes[i].n);
		q += 4;
	}
	return (size_t)(q - p);
}

/* Reads n counted names of 1 or 2 length bytes from *q (at most end); 0 or LMT_ECORRUPT. */
static int
get_names(const unsigned char **q, const unsigned char *end, size_t n, int wide,
    struct tbatch_count *v)
{
	for (size_t i = 0; i < n; i++) {
		size_t hl = wide ? 2 : 1, len;
		if ((size_t)(end - *q) < hl)
			return LMT_ECORRUPT;
		len = wide ? (size_t)((*q)[0] | (*q)[1] << 8) : (*q)[0];
		*q += hl;
		if (len == 0 || (size_t)(end - *q) < len + 4)
			return LMT_ECORRUPT;
		v[i].name = (struct task_str){ (const char *)*q, len };
		v[i].n = bytes_get_u32le(*q + len);
		*q += len + 4;
	}
	return 0;
}

int
tbatch_decode(const void *buf, size_t len, struct tbatch *b, struct tbatch_count *types,
    struct tbatch_count *indexes)
{
	const unsigned char *p = buf, *q, *end = p + len;
	uint64_t uid = b->uid;
	size_t sl, dl, head = p[0] == TBATCH_VERSION ? HEAD : HEAD_V1;

	if (len < HEAD_V1 || (p[0] != TBATCH_VERSION && p[0] != 1) || len < head)
		return LMT_ECORRUPT;
	tbatch_init(b, uid, (int64_t)bytes_get_u64le(p + 32), types, indexes);
	sl = (size_t)(p[2] | p[3] << 8);
	dl = bytes_get_u32le(p + 4);
	b->total = bytes_get_u32le(p + 8);
	for (int i = 0; i < TASK_NSTATUS; i++)
		b->status[i] = bytes_get_u32le(p + 12 + 4 * i);
	b->finished_at = (int64_t)bytes_get_u64le(p + 40);
	b->enqueued_min = (int64_t)bytes_get_u64le(p + 48);
	b->enqueued_max = (int64_t)bytes_get_u64le(p + 56);
	b->first_uid = bytes_get_u64le(p + 64);
	b->last_uid = bytes_get_u64le(p + 72);
	b->canceled_by = bytes_get_u64le(p + 80);
	b->ntypes = bytes_get_u32le(p + 88);
	b->nindexes = bytes_get_u32le(p + 92);
	b->kept = head == HEAD ? bytes_get_u32le(p + 96) : TBATCH_KEPT_UNKNOWN;
	if (b->ntypes > TBATCH_NAMES_MAX || b->nindexes > TBATCH_NAMES_MAX ||
	    len - head < sl || len - head - sl < dl || dl < 2)
		return LMT_ECORRUPT;
	q = p + head;
	b->strategy = (struct task_str){ (const char *)q, sl };
	q += sl;
	b->details = (struct task_str){ (const char *)q, dl };
	q += dl;
	if (b->details.ptr[0] != '{' || b->details.ptr[dl - 1] != '}')
		return LMT_ECORRUPT;
	if (get_names(&q, end, b->ntypes, 0, types) != 0 ||
	    get_names(&q, end, b->nindexes, 1, indexes) != 0 || q != end)
		return LMT_ECORRUPT;
	return 0;
}

void
tbatch_progress_init(struct tbatch_progress *p, const struct tbatch *b)
{
	memset(p, 0, sizeof(*p));
	p->total = b->total;
	p->finished = b->total > b->status[TASK_PROCESSING] ?
	    b->total - b->status[TASK_PROCESSING] : 0;
}

void
tbatch_progress_add(struct tbatch_progress *p, const struct task *t)
{
	if (t->status != TASK_PROCESSING || t->progress_total == 0)
		return;
	p->reported += (uint64_t)t->progress_done * 1000000 / t->progress_total;
	if (p->has_step)
		return;
	p->has_step = 1;
	p->step = t->progress_step;
	p->step_done = t->progress_done;
	p->step_total = t->progress_total;
}

uint32_t
tbatch_progress_tenths(const struct tbatch_progress *p)
{
	/* finished + reported <= total tasks: at most 1000 tenths; no overflow under 2^32
	 * tasks (1000 * 1e6 * 2^32 < 2^64). */
	uint64_t whole = (uint64_t)p->finished * 1000000 + p->reported;

	if (p->total == 0)
		return 0;
	whole = whole * 1000 / ((uint64_t)p->total * 1000000);
	return whole > 1000 ? 1000 : (uint32_t)whole;
}
