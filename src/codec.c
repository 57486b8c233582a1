/* The record format, version 1 (all integers little-endian):
 *
 *   0 u8 version      1 u8 status     2 u8 error type   3 u8 type length
 *   4 u32 checksum (FNV-1a of bytes 0-3 and 8-end)
 *   8 i64 enqueued   16 i64 started  24 i64 finished    32 u64 canceled by
 *  40 i64 lease until
 *  48 u16 index length (0xffff: null)  50 u16 error code length
 *  52 u32 details length               56 u32 error message length
 *  60 index, type, details, error code, error message
 *
 * The checksum turns a flipped byte into a clear "corrupt record" instead of
 * broken JSON on the wire.
 */
#include "config.h"

#include <string.h>

#include "lmtasks/codec.h"
#include "lmtasks/error.h"

#define HEADER 60
#define NULL_INDEX 0xffffu

static void
put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void
put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t
fnv1a(uint32_t h, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Covers the whole record but the checksum field itself (len >= HEADER). */
static uint32_t
checksum(const unsigned char *p, size_t len)
{
	return fnv1a(fnv1a(2166136261u, p, 4), p + 8, len - 8);
}

size_t
codec_size(const struct task *t)
{
	return HEADER + t->index_uid.len + t->type.len + t->details.len +
	       t->error_code.len + t->error_message.len;
}

size_t
codec_encode(const struct task *t, void *buf)
{
	unsigned char *p = buf, *q = p + HEADER;

	p[0] = CODEC_VERSION;
	p[1] = (unsigned char)t->status;
	p[2] = (unsigned char)t->error_type;
	p[3] = (unsigned char)t->type.len;
	put64(p + 8, (uint64_t)t->enqueued_at);
	put64(p + 16, (uint64_t)t->started_at);
	put64(p + 24, (uint64_t)t->finished_at);
	put64(p + 32, t->canceled_by);
	put64(p + 40, (uint64_t)t->lease_until);
	put16(p + 48, t->index_uid.ptr ? (uint16_t)t->index_uid.len : NULL_INDEX);
	put16(p + 50, (uint16_t)t->error_code.len);
	put32(p + 52, (uint32_t)t->details.len);
	put32(p + 56, (uint32_t)t->error_message.len);
#define COPY(s) do { if ((s).len) memcpy(q, (s).ptr, (s).len); q += (s).len; } while (0)
	COPY(t->index_uid);
	COPY(t->type);
	COPY(t->details);
	COPY(t->error_code);
	COPY(t->error_message);
#undef COPY
	size_t len = (size_t)(q - p);
	put32(p + 4, checksum(p, len));
	return len;
}

int
codec_decode(const void *buf, size_t len, struct task *t)
{
	const unsigned char *p = buf;

	if (len < HEADER || p[0] != CODEC_VERSION || checksum(p, len) != get32(p + 4))
		return LMT_ECORRUPT;
	if (p[1] >= TASK_NSTATUS || p[2] >= TASK_NERRTYPE)
		return LMT_ECORRUPT;

	uint16_t ilen = get16(p + 48);
	size_t index_len = ilen == NULL_INDEX ? 0 : ilen;
	size_t type_len = p[3], code_len = get16(p + 50);
	size_t details_len = get32(p + 52), msg_len = get32(p + 56);
	/* Each length is small enough that the sum cannot overflow size_t. */
	if (HEADER + index_len + type_len + details_len + code_len + msg_len != len)
		return LMT_ECORRUPT;
	if (index_len > TASK_INDEX_MAX || type_len == 0 || type_len > TASK_TYPE_MAX || details_len < 2)
		return LMT_ECORRUPT;

	const char *q = (const char *)p + HEADER;
	t->status = (enum task_status)p[1];
	t->error_type = (enum task_error_type)p[2];
	t->enqueued_at = (int64_t)get64(p + 8);
	t->started_at = (int64_t)get64(p + 16);
	t->finished_at = (int64_t)get64(p + 24);
	t->canceled_by = get64(p + 32);
	t->lease_until = (int64_t)get64(p + 40);
	t->index_uid.ptr = ilen == NULL_INDEX ? NULL : q;
	t->index_uid.len = index_len;
	q += index_len;
	t->type.ptr = q;
	t->type.len = type_len;
	q += type_len;
	t->details.ptr = q;
	t->details.len = details_len;
	q += details_len;
	t->error_code.ptr = code_len ? q : NULL;
	t->error_code.len = code_len;
	q += code_len;
	t->error_message.ptr = code_len ? q : NULL;
	t->error_message.len = msg_len;
	if (t->details.ptr[0] != '{' || t->details.ptr[details_len - 1] != '}')
		return LMT_ECORRUPT;
	return 0;
}
