/* The key layout: how the store's keys, duplicates and counts are encoded, and the order
 * LMDB keeps them in.  Uids, sequences and lease ends are 8-byte big-endian numbers (their
 * memcmp order is their numeric order); counts, meta values and record fields little-endian
 * (lmtasks/bytes.h).  Both sides link it: the reader builds keys to look up, the writer to
 * store. */
#include "config.h"

#include <string.h>

#include "store_internal.h"

void
store_lease_key(unsigned char out[16], int64_t until, uint64_t uid)
{
	bytes_put_u64be(out, (uint64_t)until);
	bytes_put_u64be(out + 8, uid);
}

size_t
store_count_key(unsigned char *out, struct task_str index, enum task_status status,
    struct task_str type)
{
	size_t n = 0;

	if (index.ptr)
		memcpy(out, index.ptr, index.len), n = index.len;
	out[n++] = '\0';
	out[n++] = (unsigned char)status;
	memcpy(out + n, type.ptr, type.len);
	return n + type.len;
}

size_t
store_queue_key(unsigned char *out, struct task_str index, struct task_str type)
{
	size_t n = 0;

	if (index.ptr)
		memcpy(out, index.ptr, index.len), n = index.len;
	out[n++] = '\0';
	memcpy(out + n, type.ptr, type.len);
	return n + type.len;
}

size_t
store_rank_key(unsigned char *out, int32_t priority, struct task_str index, struct task_str type)
{
	bytes_put_u32be(out, store_rank(priority));
	return 4 + store_queue_key(out + 4, index, type);
}

/* Uids (task and batch keys, the indexes' duplicates) and sequences are 8-byte big-endian
 * numbers: compared as one number each, in a few instructions, instead of by LMDB's
 * default (mdb_cmp_memn, a call to memcmp).  The order is memcmp's for every input, 8
 * bytes or not, so stores are unchanged and a program comparing by memcmp (0.1.0, the
 * CLI's other builds, mdb_dump) sees the same order. */
int
store_cmp_uid(const MDB_val *a, const MDB_val *b)
{
	if (a->mv_size == 8 && b->mv_size == 8) {
		uint64_t x = bytes_get_u64be(a->mv_data), y = bytes_get_u64be(b->mv_data);
		return (x > y) - (x < y);
	}
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int d = n ? memcmp(a->mv_data, b->mv_data, n) : 0;
	return d ? d : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}
