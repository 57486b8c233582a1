/* The record format, version 1.  Integers are little-endian.
 *
 *   0 u8 version   1 u8 status   2 u8 flags   3 u8 type length
 *   4 u32 checksum: FNV-1a of every byte but these four
 *   8 i64 enqueued at (µs)
 *  16 u16 index length (0 with F_NULL_INDEX)
 *  18 u32 details length
 *  22 what the flags announce, in this order:
 *       F_STARTED  i64 started at        F_FINISHED  i64 finished at
 *       F_CANCELED u64 canceled by       F_LEASE     i64 lease until, u32 lease ms
 *       F_ERROR    u8 error type, u8 code length, u32 message length
 *     then the index, the type, the details, the error code and message.
 *
 * Version 2 is version 1 with a u64 batch uid at 22, before the optional fields; a
 * task with no batch is still written as version 1, as lmtasks 0.1.0 wrote it.
 * Versions 3 and 4 are versions 1 and 2 with a u32 custom metadata length after the
 * batch uid (or at 22) and the metadata's bytes last: version - 1 is a set of
 * extensions (1 the batch uid, 2 the metadata), so a record carries only what it uses
 * and every record lmtasks 0.1.0 and 0.2.0 wrote reads as it is.
 *
 * Versions 5 to 16 add two more extensions, each present only where it is used:
 *   4 scheduling, 20 bytes: i64 not before (µs), i32 priority, u16 attempts,
 *     u16 max attempts, u32 backoff ms.  With it a task that is not failed may carry
 *     F_ERROR: the error of its last attempt, kept for the retry's details.
 *   8 progress, 9 bytes: u32 done, u32 total, u8 step length; the step's bytes last.
 * The extensions' fixed fields follow the header in that order (batch, metadata,
 * scheduling, progress), before the flags' optional fields.
 *
 * Fields that most tasks lack take no room, and the checksum turns a flipped byte
 * into a clear "corrupt record" instead of broken JSON on the wire.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "lmtasks/bytes.h"
#include "lmtasks/codec.h"
#include "lmtasks/error.h"

#define HEADER 22
/* The extensions version - 1 announces. */
#define X_BATCH 1
#define X_META 2
#define X_SCHED 4
#define X_PROGRESS 8
#define X_ALL (X_BATCH | X_META | X_SCHED | X_PROGRESS)
/* Timestamps are µs from the epoch up to 9999-12-31T23:59:59.999999Z. */
#define TIME_MAX TASK_TIME_MAX

enum {
	F_STARTED = 1 << 0,
	F_FINISHED = 1 << 1,
	F_CANCELED = 1 << 2,
	F_LEASE = 1 << 3,
	F_REQUEUE = 1 << 4,
	F_NULL_INDEX = 1 << 5,
	F_ERROR = 1 << 6,
	F_EXPIRED = 1 << 7,
};

/* One FNV-1a step.  On x86-64 a byte XORed into h changes only its low byte, so the XOR can
 * take the byte from memory into h's low byte register: two instructions, not three. */
#if defined(__GNUC__) && defined(__x86_64__)
#define FNV_STEP(h, p) \
	__asm__("xorb %1, %b0\n\timull $16777619, %0, %0" : "+r"(h) : "m"(*(p)))
#else
#define FNV_STEP(h, p) ((h) = ((h) ^ *(p)) * 16777619u)
#endif

/* FNV-1a, eight bytes a turn: the same value as a byte at a time, a third of the loop. */
static uint32_t
fnv1a(uint32_t h, const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;

	for (; end - p >= 8; p += 8) {
		FNV_STEP(h, p);
		FNV_STEP(h, p + 1);
		FNV_STEP(h, p + 2);
		FNV_STEP(h, p + 3);
		FNV_STEP(h, p + 4);
		FNV_STEP(h, p + 5);
		FNV_STEP(h, p + 6);
		FNV_STEP(h, p + 7);
	}
	for (; p < end; p++)
		FNV_STEP(h, p);
	return h;
}

/* Covers the whole record but the checksum field itself (len >= 8). */
static uint32_t
checksum(const unsigned char *p, size_t len)
{
	return fnv1a(fnv1a(2166136261u, p, 4), p + 8, len - 8);
}

static unsigned
flags_of(const struct task *t)
{
	return (t->started_at ? F_STARTED : 0) | (t->finished_at ? F_FINISHED : 0) |
	    (t->canceled_by != TASK_NO_UID ? F_CANCELED : 0) | (t->lease_until ? F_LEASE : 0) |
	    (t->requeue ? F_REQUEUE : 0) | (t->index_uid.ptr ? 0 : F_NULL_INDEX) |
	    (t->status == TASK_FAILED || (t->error_code.ptr && task_has_sched(t)) ? F_ERROR : 0) |
	    (t->lease_expired ? F_EXPIRED : 0);
}

/* The extensions t needs. */
static unsigned
extensions_of(const struct task *t)
{
	return (t->has_batch ? X_BATCH : 0) | (t->custom_metadata.ptr ? X_META : 0) |
	    (task_has_sched(t) ? X_SCHED : 0) | (t->progress_total ? X_PROGRESS : 0);
}

/* The size of the fixed fields of extensions x, between the header and the flags' fields. */
static size_t
extension_size(unsigned x)
{
	return (x & X_BATCH ? 8 : 0) + (x & X_META ? 4 : 0) + (x & X_SCHED ? 20 : 0) +
	    (x & X_PROGRESS ? 9 : 0);
}

/* The fields decode_extensions() clears at once, in task.h's order. */
#define SCHED_FIELDS (offsetof(struct task, progress_total) + sizeof(uint32_t) - \
	offsetof(struct task, not_before))
_Static_assert(SCHED_FIELDS == 8 + 4 + 2 + 2 + 4 + 4 + 4,
    "task.h keeps the scheduling and progress fields together");

/* extension_size() of each set, for the decoder. */
static const unsigned char extension_sizes[X_ALL + 1] = {
	0, 8, 4, 12, 20, 28, 24, 32, 9, 17, 13, 21, 29, 37, 33, 41,
};

/* The size of the optional fields the flags announce. */
static size_t
optional_size(unsigned f)
{
	return (f & F_STARTED ? 8 : 0) + (f & F_FINISHED ? 8 : 0) + (f & F_CANCELED ? 8 : 0) +
	    (f & F_LEASE ? 12 : 0) + (f & F_ERROR ? 6 : 0);
}

size_t
codec_size(const struct task *t)
{
	unsigned f = flags_of(t);
	size_t n = HEADER + extension_size(extensions_of(t)) + optional_size(f) +
	    t->index_uid.len + t->type.len + t->details.len + t->custom_metadata.len;

	if (t->progress_total)
		n += t->progress_step.len;

	if (f & F_ERROR)
		n += t->error_code.len + t->error_message.len;
	return n;
}

size_t
codec_encode(const struct task *t, void *buf)
{
	unsigned char *p = buf, *q;
	unsigned f = flags_of(t), x = extensions_of(t);

	p[0] = (unsigned char)(CODEC_VERSION + x);
	p[1] = (unsigned char)t->status;
	p[2] = (unsigned char)f;
	p[3] = (unsigned char)t->type.len;
	bytes_put_u64le(p + 8, (uint64_t)t->enqueued_at);
	bytes_put_u16le(p + 16, (uint16_t)t->index_uid.len);
	q = bytes_put_u32le(p + 18, (uint32_t)t->details.len);
	if (t->has_batch)
		q = bytes_put_u64le(q, t->batch_uid);
	if (x & X_META)
		q = bytes_put_u32le(q, (uint32_t)t->custom_metadata.len);
	if (x & X_SCHED) {
		q = bytes_put_u64le(q, (uint64_t)t->not_before);
		q = bytes_put_u32le(q, (uint32_t)t->priority);
		q = bytes_put_u16le(q, t->attempts);
		q = bytes_put_u16le(q, t->max_attempts);
		q = bytes_put_u32le(q, t->backoff_ms);
	}
	if (x & X_PROGRESS) {
		q = bytes_put_u32le(q, t->progress_done);
		q = bytes_put_u32le(q, t->progress_total);
		*q++ = (unsigned char)t->progress_step.len;
	}
	if (f & F_STARTED)
		q = bytes_put_u64le(q, (uint64_t)t->started_at);
	if (f & F_FINISHED)
		q = bytes_put_u64le(q, (uint64_t)t->finished_at);
	if (f & F_CANCELED)
		q = bytes_put_u64le(q, t->canceled_by);
	if (f & F_LEASE) {
		q = bytes_put_u64le(q, (uint64_t)t->lease_until);
		q = bytes_put_u32le(q, t->lease_ms);
	}
	if (f & F_ERROR) {
		*q++ = (unsigned char)t->error_type;
		*q++ = (unsigned char)t->error_code.len;
		q = bytes_put_u32le(q, (uint32_t)t->error_message.len);
	}
#define COPY(s) do { if ((s).len) memcpy(q, (s).ptr, (s).len); q += (s).len; } while (0)
	COPY(t->index_uid);
	COPY(t->type);
	COPY(t->details);
	if (f & F_ERROR) {
		COPY(t->error_code);
		COPY(t->error_message);
	}
	if (x & X_META)
		COPY(t->custom_metadata);
	if (x & X_PROGRESS)
		COPY(t->progress_step);
#undef COPY
	size_t len = (size_t)(q - p);
	bytes_put_u32le(p + 4, checksum(p, len));
	return len;
}

/* The lengths a record's header and extensions give. */
struct lengths {
	size_t index, type, details, code, msg, meta, step;
};

/* Reads the extensions' fixed fields at q into t and n; returns LMT_ECORRUPT for values
 * the writer cannot make. */
static int
decode_extensions(const unsigned char *q, unsigned x, struct task *t, struct lengths *n)
{
	t->has_batch = (x & X_BATCH) != 0;
	t->batch_uid = x & X_BATCH ? bytes_get_u64le(q) : 0;
	q += x & X_BATCH ? 8 : 0;
	n->meta = x & X_META ? bytes_get_u32le(q) : 0;
	q += x & X_META ? 4 : 0;
	/* The scheduling and progress fields lie side by side (task.h): one clear. */
	memset(&t->not_before, 0, SCHED_FIELDS);
	if (!(x & (X_SCHED | X_PROGRESS)))
		return n->meta > TASK_METADATA_MAX ? LMT_ECORRUPT : 0;
	if (x & X_SCHED) {
		t->not_before = (int64_t)bytes_get_u64le(q);
		t->priority = (int32_t)bytes_get_u32le(q + 8);
		t->attempts = bytes_get_u16le(q + 12);
		t->max_attempts = bytes_get_u16le(q + 14);
		t->backoff_ms = bytes_get_u32le(q + 16);
		q += 20;
		if (t->not_before < 0 || t->not_before > TIME_MAX ||
		    t->attempts > TASK_ATTEMPTS_MAX || t->max_attempts > TASK_ATTEMPTS_MAX)
			return LMT_ECORRUPT;
	}
	if (x & X_PROGRESS) {
		t->progress_done = bytes_get_u32le(q);
		t->progress_total = bytes_get_u32le(q + 4);
		n->step = q[8];
		if (t->progress_total == 0 || t->progress_done > t->progress_total)
			return LMT_ECORRUPT;
	}
	return n->meta > TASK_METADATA_MAX ? LMT_ECORRUPT : 0;
}

/* Points t's strings at s, in the record's order. */
static void
place_strings(const char *s, unsigned x, const struct lengths *n, struct task *t)
{
#define PLACE(field, size, present) do { \
		t->field.ptr = (present) ? s : NULL; \
		t->field.len = (size); \
		s += (size); \
	} while (0)
	PLACE(index_uid, n->index, n->index != 0);
	PLACE(type, n->type, 1);
	PLACE(details, n->details, 1);
	PLACE(error_code, n->code, n->code != 0);
	PLACE(error_message, n->msg, n->code != 0);
	PLACE(custom_metadata, n->meta, x & X_META);
	PLACE(progress_step, n->step, n->step != 0);
#undef PLACE
}

int
codec_decode(const void *buf, size_t len, struct task *t)
{
	const unsigned char *p = buf, *q;
	struct lengths n = { 0 };

	if (len < HEADER)
		return LMT_ECORRUPT;
	unsigned x = (unsigned)p[0] - CODEC_VERSION;
	if (x > X_ALL || checksum(p, len) != bytes_get_u32le(p + 4))
		return LMT_ECORRUPT;
	unsigned f = p[2];
	size_t head = HEADER + extension_sizes[x & X_ALL];
	/* A failed task has its error; another may carry its last attempt's, when scheduled. */
	if (p[1] >= TASK_NSTATUS || ((p[1] == TASK_FAILED) && !(f & F_ERROR)) ||
	    ((f & F_ERROR) && p[1] != TASK_FAILED && !(x & X_SCHED)))
		return LMT_ECORRUPT;
	size_t opt = optional_size(f);
	n.index = bytes_get_u16le(p + 16);
	n.type = p[3];
	n.details = bytes_get_u32le(p + 18);
	if (len < head + opt || decode_extensions(p + HEADER, x, t, &n) != 0)
		return LMT_ECORRUPT;
	q = p + head;
	t->status = (enum task_status)p[1];
	t->enqueued_at = (int64_t)bytes_get_u64le(p + 8);
	t->started_at = f & F_STARTED ? (int64_t)bytes_get_u64le(q) : 0;
	q += f & F_STARTED ? 8 : 0;
	t->finished_at = f & F_FINISHED ? (int64_t)bytes_get_u64le(q) : 0;
	q += f & F_FINISHED ? 8 : 0;
	t->canceled_by = f & F_CANCELED ? bytes_get_u64le(q) : TASK_NO_UID;
	q += f & F_CANCELED ? 8 : 0;
	t->lease_until = f & F_LEASE ? (int64_t)bytes_get_u64le(q) : 0;
	t->lease_ms = f & F_LEASE ? bytes_get_u32le(q + 8) : 0;
	q += f & F_LEASE ? 12 : 0;
	t->requeue = (f & F_REQUEUE) != 0;
	t->lease_expired = (f & F_EXPIRED) != 0;
	t->error_type = TASK_ERR_INTERNAL;
	if (f & F_ERROR) {
		if (q[0] >= TASK_NERRTYPE)
			return LMT_ECORRUPT;
		t->error_type = (enum task_error_type)q[0];
		n.code = q[1];
		n.msg = bytes_get_u32le(q + 2);
		q += 6;
	}
	/* Each length is small enough that the sum cannot overflow size_t. */
	if (head + opt + n.index + n.type + n.details + n.code + n.msg + n.meta + n.step != len)
		return LMT_ECORRUPT;
	if (n.index > TASK_INDEX_MAX || (n.index == 0) != ((f & F_NULL_INDEX) != 0) ||
	    n.type == 0 || n.type > TASK_TYPE_MAX || n.details < 2 ||
	    ((f & F_ERROR) && n.code == 0))
		return LMT_ECORRUPT;
	/* Only what the writer can make: times in range, names of their alphabets (the
	 * renderer prints the error code unescaped in the link). */
	if (t->enqueued_at <= 0 || t->enqueued_at > TIME_MAX || t->started_at < 0 ||
	    t->started_at > TIME_MAX || t->finished_at < 0 || t->finished_at > TIME_MAX ||
	    t->lease_until < 0 || t->lease_until > TIME_MAX)
		return LMT_ECORRUPT;
	place_strings((const char *)q, x, &n, t);
	t->record_sum = bytes_get_u32le(p + 4);
	if (t->details.ptr[0] != '{' || t->details.ptr[n.details - 1] != '}')
		return LMT_ECORRUPT;
	if ((n.index && !task_index_uid_valid(t->index_uid.ptr, n.index)) ||
	    !task_type_valid(t->type.ptr, n.type) ||
	    (n.code && !task_error_code_valid(t->error_code.ptr, n.code)) ||
	    (n.meta && !task_utf8_valid(t->custom_metadata.ptr, n.meta)) ||
	    (n.step && !task_utf8_valid(t->progress_step.ptr, n.step)))
		return LMT_ECORRUPT;
	return 0;
}
