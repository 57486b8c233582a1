/* JSON output built by hand into a json-c printbuf: keys in SPEC order, no re-parse. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lmtasks/render.h"
#include "lmtasks/timefmt.h"

/* A printbuf with a sticky failure flag, so a sequence of appends needs one check. */
struct out {
	struct printbuf *pb;
	int err;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (!o->err && printbuf_memappend(o->pb, s, (int)n) < 0)
		o->err = ENOMEM;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static void
put_u64(struct out *o, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, p, (size_t)(buf + sizeof(buf) - p));
}

static void
put_string(struct out *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	PUTS(o, "\"");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(o, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		put(o, esc, n);
	}
	put(o, s + run, len - run);
	PUTS(o, "\"");
}

static void
put_str_or_null(struct out *o, struct task_str s)
{
	if (s.ptr == NULL)
		PUTS(o, "null");
	else
		put_string(o, s.ptr, s.len);
}

static void
put_time(struct out *o, int64_t us)
{
	char buf[TIMEFMT_BUFSZ];

	if (us == 0) {
		PUTS(o, "null");
		return;
	}
	buf[0] = '"';
	size_t n = timefmt_rfc3339(us, buf + 1);
	buf[n + 1] = '"';
	put(o, buf, n + 2);
}

static void
put_status(struct out *o, enum task_status s)
{
	const char *name = task_status_name(s);

	put_string(o, name ? name : "unknown", strlen(name ? name : "unknown"));
}

/* The keys every task object starts with: uid, indexUid, status, type. */
static void
put_head(struct out *o, const struct task *t)
{
	PUTS(o, "{\"uid\":");
	put_u64(o, t->uid);
	PUTS(o, ",\"indexUid\":");
	put_str_or_null(o, t->index_uid);
	PUTS(o, ",\"status\":");
	put_status(o, t->status);
	PUTS(o, ",\"type\":");
	put_string(o, t->type.ptr, t->type.len);
}

int
render_task(struct printbuf *pb, const struct task *t)
{
	struct out o = { pb, 0 };

	put_head(&o, t);
	if (t->status == TASK_CANCELED) {
		PUTS(&o, ",\"canceledBy\":");
		if (t->canceled_by == TASK_NO_UID)
			PUTS(&o, "null");
		else
			put_u64(&o, t->canceled_by);
	}
	PUTS(&o, ",\"details\":");
	put(&o, t->details.ptr, t->details.len);
	if (t->status == TASK_FAILED) {
		const char *et = task_error_type_name(t->error_type);
		PUTS(&o, ",\"error\":{\"message\":");
		put_string(&o, t->error_message.ptr, t->error_message.len);
		PUTS(&o, ",\"code\":");
		put_string(&o, t->error_code.ptr, t->error_code.len);
		PUTS(&o, ",\"type\":");
		put_string(&o, et, strlen(et));
		PUTS(&o, ",\"link\":\"https://docs.meilisearch.com/errors#");
		put(&o, t->error_code.ptr, t->error_code.len);
		PUTS(&o, "\"}");
	}
	PUTS(&o, ",\"duration\":");
	if (t->started_at != 0 && t->finished_at != 0) {
		char buf[TIMEFMT_BUFSZ];
		/* Without overflow whatever the times; a clock that went back gives PT0S. */
		uint64_t d = t->finished_at > t->started_at ?
		    (uint64_t)t->finished_at - (uint64_t)t->started_at : 0;
		size_t n = timefmt_duration(d > INT64_MAX ? INT64_MAX : (int64_t)d, buf);
		put_string(&o, buf, n);
	} else {
		PUTS(&o, "null");
	}
	PUTS(&o, ",\"enqueuedAt\":");
	put_time(&o, t->enqueued_at);
	PUTS(&o, ",\"startedAt\":");
	put_time(&o, t->started_at);
	PUTS(&o, ",\"finishedAt\":");
	put_time(&o, t->finished_at);
	PUTS(&o, "}");
	return o.err;
}

int
render_task_summary(struct printbuf *pb, const struct task *t)
{
	struct out o = { pb, 0 };

	put_head(&o, t);
	PUTS(&o, ",\"enqueuedAt\":");
	put_time(&o, t->enqueued_at);
	PUTS(&o, "}");
	return o.err;
}

int
render_error(struct printbuf *pb, const char *message, const char *code, const char *type)
{
	struct out o = { pb, 0 };

	PUTS(&o, "{\"message\":");
	put_string(&o, message, strlen(message));
	PUTS(&o, ",\"code\":");
	put_string(&o, code, strlen(code));
	PUTS(&o, ",\"type\":");
	put_string(&o, type, strlen(type));
	PUTS(&o, ",\"link\":\"https://docs.meilisearch.com/errors#");
	put(&o, code, strlen(code));
	PUTS(&o, "\"}");
	return o.err;
}

int
render_list_open(struct printbuf *pb)
{
	struct out o = { pb, 0 };

	PUTS(&o, "{\"results\":[");
	return o.err;
}

int
render_comma(struct printbuf *pb)
{
	struct out o = { pb, 0 };

	PUTS(&o, ",");
	return o.err;
}

int
render_list_close(struct printbuf *pb, uint64_t total, unsigned limit, uint64_t from,
    uint64_t next)
{
	struct out o = { pb, 0 };

	PUTS(&o, "],\"total\":");
	put_u64(&o, total);
	PUTS(&o, ",\"limit\":");
	put_u64(&o, limit);
	PUTS(&o, ",\"from\":");
	if (from == TASK_NO_UID)
		PUTS(&o, "null");
	else
		put_u64(&o, from);
	PUTS(&o, ",\"next\":");
	if (next == TASK_NO_UID)
		PUTS(&o, "null");
	else
		put_u64(&o, next);
	PUTS(&o, "}");
	return o.err;
}

int
render_string(struct printbuf *pb, const char *s, size_t len)
{
	struct out o = { pb, 0 };

	put_string(&o, s, len);
	return o.err;
}
