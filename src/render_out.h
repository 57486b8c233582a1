/* What render.c and render_batch.c share: the output buffer (struct out) and the put_*
 * functions that write JSON into it, and a page's list.  Private to the render module.  Each
 * file has its own copies, static (and inline where marked) as when render.c held them
 * all, so that every call on the task path stays one the compiler may inline. */
#ifndef LMTASKS_RENDER_OUT_H
#define LMTASKS_RENDER_OUT_H

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <json-c/printbuf.h>

#include "lmtasks/store.h"
#include "lmtasks/text.h"
#include "lmtasks/timefmt.h"

/*
 * Output goes straight into the printbuf: each render function first makes room for
 * the most it can write (reserve()), then copies with a plain pointer, and sets the
 * printbuf's position and terminating NUL once at the end (done()).
 */
struct out {
	struct printbuf *pb;
	char *p;
	int err;
};

/* Makes room for n more bytes and the NUL.  Growing goes through printbuf_memset(),
 * json-c's one public way to extend a buffer. */
static int
reserve(struct out *o, struct printbuf *pb, size_t n)
{
	int at = pb->bpos;

	o->pb = pb;
	o->err = 0;
	if ((size_t)(pb->size - at) <= n) {
		if (n > INT_MAX / 2 || printbuf_memset(pb, at, 0, (int)n + 1) < 0)
			o->err = ENOMEM;
		pb->bpos = at;
	}
	o->p = pb->buf + at;
	return o->err;
}

static int
done(struct out *o)
{
	if (o->err)
		return o->err;
	o->pb->bpos = (int)(o->p - o->pb->buf);
	*o->p = '\0';
	return 0;
}

static inline void
put(struct out *o, const char *s, size_t n)
{
	memcpy(o->p, s, n);
	o->p += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static void
put_u64(struct out *o, uint64_t v)
{
	char buf[TEXT_U64_MAX], *end = buf + sizeof(buf), *p = text_u64(end, v);

	put(o, p, (size_t)(end - p));
}

/* A JSON string of any text: at most 6 bytes out per byte in, and the quotes. */
static void
put_string(struct out *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *p = o->p;

	*p++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			*p++ = (char)c;
			continue;
		}
		*p++ = '\\';
		switch (c) {
		case '"': *p++ = '"'; break;
		case '\\': *p++ = '\\'; break;
		case '\b': *p++ = 'b'; break;
		case '\f': *p++ = 'f'; break;
		case '\n': *p++ = 'n'; break;
		case '\r': *p++ = 'r'; break;
		case '\t': *p++ = 't'; break;
		default:
			memcpy(p, "u00", 3);
			p[3] = hex[c >> 4];
			p[4] = hex[c & 15];
			p += 5;
		}
	}
	*p++ = '"';
	o->p = p;
}

/* A string of an alphabet that JSON never escapes (an index uid, a type, an error code:
 * validated when written and again when decoded), or a name of ours. */
static inline void
put_plain(struct out *o, const char *s, size_t len)
{
	*o->p++ = '"';
	put(o, s, len);
	*o->p++ = '"';
}

static void
put_time(struct out *o, int64_t us)
{
	if (us == 0) {
		PUTS(o, "null");
		return;
	}
	*o->p++ = '"';
	o->p += timefmt_rfc3339(us, o->p);
	*o->p++ = '"';
}

/* finished - started as Meilisearch prints it, or null unless both are set. */
static void
put_duration(struct out *o, int64_t started, int64_t finished)
{
	if (started != 0 && finished != 0) {
		/* Without overflow whatever the times; a clock that went back gives PT0S. */
		uint64_t d = finished > started ? (uint64_t)finished - (uint64_t)started : 0;
		*o->p++ = '"';
		o->p += timefmt_duration(d > INT64_MAX ? INT64_MAX : (int64_t)d, o->p);
		*o->p++ = '"';
	} else {
		PUTS(o, "null");
	}
}

/* A list's items as a page walk gives them: the buffer, the task layout, whether an item
 * came before (the comma); for batches, where their tasks are read. */
struct list {
	struct printbuf *pb;
	int v1;
	int items;
	store *s;
	MDB_txn *txn;
};

/* One step of a Meilisearch progress, {"currentStep":NAME,"finished":done,"total":total}
 * (name NULL: ""), for a task's and a batch's. */
static void
put_step(struct out *o, struct task_str name, uint64_t done, uint64_t total)
{
	PUTS(o, "{\"currentStep\":");
	put_string(o, name.ptr ? name.ptr : "", name.len);
	PUTS(o, ",\"finished\":");
	put_u64(o, done);
	PUTS(o, ",\"total\":");
	put_u64(o, total);
	*o->p++ = '}';
}

/* A progress' end: ],"percentage":P.T} with tenths of a percent (one decimal, 40.0). */
static void
put_percentage(struct out *o, uint64_t tenths)
{
	PUTS(o, "],\"percentage\":");
	put_u64(o, tenths / 10);
	*o->p++ = '.';
	*o->p++ = (char)('0' + tenths % 10);
	*o->p++ = '}';
}

#endif
