/* Fixed-width integers in byte buffers: little-endian in records and values, big-endian in
 * keys (so that memcmp orders them as numbers).  The core floor: it includes nothing of
 * the project, and every record format (codec, batches, API keys, webhooks, the store's
 * keys and counts) reads and writes its numbers through it, at any alignment.
 * A put returns the byte after what it wrote, for formats written field after field. */
#ifndef LMTASKS_BYTES_H
#define LMTASKS_BYTES_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t
bytes_get_u16le(const void *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t
bytes_get_u32le(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t
bytes_get_u64le(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline uint64_t
bytes_get_u64be(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static inline uint32_t
bytes_get_u32be(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static inline unsigned char *
bytes_put_u16le(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
	return (unsigned char *)p + 2;
}

static inline unsigned char *
bytes_put_u32le(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
	return (unsigned char *)p + 4;
}

static inline unsigned char *
bytes_put_u64le(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
	return (unsigned char *)p + 8;
}

static inline unsigned char *
bytes_put_u32be(void *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
	return (unsigned char *)p + 4;
}

static inline unsigned char *
bytes_put_u64be(void *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
	return (unsigned char *)p + 8;
}

#endif
