/* FastCGI connections framed by our own code (see conn.h), so that no record a peer sends can
 * make the process abort, stall a worker, or grow memory past fixed limits. */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fastcgi.h>

#include "lmtasks/conn.h"
#include "conn_pairs.h"

#define RECORD_MAX (FCGI_HEADER_LEN + 65535 + 255)
#define INBUF_MAX (2 * RECORD_MAX)

struct conn {
	unsigned rid;		/* the request being read or answered; 0: none */
	unsigned keep;		/* FCGI_KEEP_CONN: the peer keeps the connection after it */
	int fd, params_done, ready, close_after, closed;
	int streaming;		/* the request's answer is still being written (conn_stream_*) */
	size_t stdin_len;
	_Atomic int64_t deadline;
	const char *why;
	unsigned char *in;	/* bytes read, not framed yet: in[in_pos, in_len) */
	size_t in_pos, in_len, in_cap;
	unsigned char *params;	/* the raw name-value pairs of the request */
	size_t params_len, params_cap;
	char *vals;		/* the wanted values, NUL-ended */
	size_t vals_cap;
	long val_off[CONN_NPARAMS];	/* offset in vals, -1: absent */
	unsigned char *out;	/* output the peer has not taken: out[out_pos, out_len) */
	size_t out_pos, out_len, out_cap;
};

static const struct {
	const char *name;
	size_t len;
} wanted[CONN_NPARAMS] = {
	[CONN_METHOD] = { "REQUEST_METHOD", 14 },
	[CONN_REQUEST_URI] = { "REQUEST_URI", 11 },
	[CONN_SCRIPT_NAME] = { "SCRIPT_NAME", 11 },
	[CONN_PATH_INFO] = { "PATH_INFO", 9 },
	[CONN_QUERY_STRING] = { "QUERY_STRING", 12 },
	[CONN_AUTHORIZATION] = { "HTTP_AUTHORIZATION", 18 },
	[CONN_IF_NONE_MATCH] = { "HTTP_IF_NONE_MATCH", 18 },
	[CONN_LMTASKS_DB] = { "LMTASKS_DB", 10 },
	[CONN_LAST_EVENT_ID] = { "HTTP_LAST_EVENT_ID", 18 },
};

int
conn_new(int fd, int64_t now_us, conn **out)
{
	conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return ENOMEM;
	c->fd = fd;
	c->why = "";
	/* A fresh connection must bring its first request in time; a kept one may idle. */
	atomic_store_explicit(&c->deadline, now_us + CONN_DEADLINE_US, memory_order_relaxed);
	*out = c;
	return 0;
}

void
conn_free(conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->params);
	free(c->vals);
	free(c->out);
	free(c);
}

int
conn_fd(const conn *c)
{
	return c->fd;
}

int64_t
conn_deadline(const conn *c)
{
	return atomic_load_explicit(&((conn *)c)->deadline, memory_order_relaxed);
}

static void
set_deadline(conn *c, int64_t when)
{
	atomic_store_explicit(&c->deadline, when, memory_order_relaxed);
}

const char *
conn_why(const conn *c)
{
	return c->why;
}

size_t
conn_pending(const conn *c)
{
	return c->out_len - c->out_pos;
}

size_t
conn_buffers(const conn *c)
{
	return c->in_cap + c->params_cap + c->vals_cap + c->out_cap;
}

const unsigned char *
conn_output(const conn *c)
{
	return c->out ? c->out + c->out_pos : (const unsigned char *)"";
}

void
conn_drop_output(conn *c)
{
	c->out_pos = c->out_len = 0;
}

const char *
conn_param(const conn *c, enum conn_param p)
{
	return c->ready && c->val_off[p] >= 0 ? c->vals + c->val_off[p] : NULL;
}

/* Grows *buf to hold need bytes (need is bounded by the callers' limits). */
static int
reserve(unsigned char **buf, size_t *cap, size_t need, size_t min)
{
	size_t n = *cap ? *cap : min;
	unsigned char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if ((p = realloc(*buf, n)) == NULL)
		return ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

int
conn_queue(conn *c, const void *buf, size_t len)
{
	if (c->out_pos > 0 && (c->out_pos == c->out_len || c->out_len + len > c->out_cap)) {
		memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
		c->out_len -= c->out_pos;
		c->out_pos = 0;
	}
	if (reserve(&c->out, &c->out_cap, c->out_len + len, 4096) != 0)
		return ENOMEM;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	return 0;
}

static void
header(unsigned char h[FCGI_HEADER_LEN], int type, unsigned rid, size_t len)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(rid >> 8);
	h[3] = (unsigned char)rid;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = 0;
	h[7] = 0;
}

static void
end_record(unsigned char r[16], unsigned rid, int protocol_status)
{
	header(r, FCGI_END_REQUEST, rid, 8);
	memset(r + 8, 0, 8);
	r[12] = (unsigned char)protocol_status;
}

/* Says why c is closed, for the log; returns CONN_CLOSE. */
static enum conn_state
fail(conn *c, const char *why)
{
	if (!c->closed)
		c->why = why;
	c->closed = 1;	/* for good: nothing more is framed or sent */
	return CONN_CLOSE;
}

/* Checks every pair of the finished params stream against the bytes left, and copies the
 * wanted values out, NUL-ended (the first of a name wins). */
static int
decode_params(conn *c)
{
	const unsigned char *p = c->params;
	size_t n = c->params_len, i = 0, used = 0;

	for (int k = 0; k < CONN_NPARAMS; k++)
		c->val_off[k] = -1;
	/* The values fit in the raw pairs' bytes plus one NUL each. */
	if (reserve((unsigned char **)&c->vals, &c->vals_cap, n + CONN_NPARAMS, 1024) != 0)
		return -1;
	while (i < n) {
		const unsigned char *name, *val;
		size_t nl, vl;
		if (conn_pairs_next(p, n, &i, &name, &nl, &val, &vl) != 0)
			return -1;
		for (int k = 0; k < CONN_NPARAMS; k++) {
			if (nl != wanted[k].len || c->val_off[k] >= 0 ||
			    memcmp(name, wanted[k].name, nl) != 0)
				continue;
			memcpy(c->vals + used, val, vl);
			c->vals[used + vl] = '\0';
			c->val_off[k] = (long)used;
			used += vl + 1;
			break;
		}
	}
	return 0;
}

/* Answers FCGI_GET_VALUES with the names we know, as the protocol asks. */
static int
get_values(conn *c, const unsigned char *p, size_t n)
{
	unsigned char r[FCGI_HEADER_LEN + 128];
	long len = conn_pairs_values(p, n, r + FCGI_HEADER_LEN, sizeof(r) - FCGI_HEADER_LEN);

	if (len < 0)
		return -1;
	header(r, FCGI_GET_VALUES_RESULT, 0, (size_t)len);
	return conn_queue(c, r, FCGI_HEADER_LEN + (size_t)len);
}

/* Ends the request c->rid early with status (abort, unknown role, no multiplexing). */
static int
refuse(conn *c, unsigned rid, int status)
{
	unsigned char r[16];

	end_record(r, rid, status);
	return conn_queue(c, r, sizeof(r));
}

/* Forgets the current request; the connection waits for the next one. */
static void
request_reset(conn *c)
{
	c->rid = 0;
	c->ready = 0;
	c->params_done = 0;
	c->params_len = 0;
	c->stdin_len = 0;
	/* What a large request grew is given back: a kept connection holds its normal size. */
	if (c->params_cap > CONN_PARAMS_KEEP) {
		free(c->params);
		c->params = NULL;
		c->params_cap = 0;
	}
	if (c->vals_cap > CONN_PARAMS_KEEP) {
		free(c->vals);
		c->vals = NULL;
		c->vals_cap = 0;
	}
}

/* A management record (request id 0): answered at once, then the output goes before
 * more input. */
static enum conn_state
management(conn *c, int type, const unsigned char *p, size_t n)
{
	unsigned char r[16];

	if (type == FCGI_GET_VALUES)
		return get_values(c, p, n) == 0 ? CONN_FLUSH :
		    fail(c, "a malformed FCGI_GET_VALUES record");
	header(r, FCGI_UNKNOWN_TYPE, 0, 8);
	memset(r + 8, 0, 8);
	r[8] = (unsigned char)type;
	return conn_queue(c, r, sizeof(r)) == 0 ? CONN_FLUSH : fail(c, "out of memory");
}

static enum conn_state
begin_request(conn *c, unsigned rid, const unsigned char *p, size_t n, int64_t now)
{
	if (n != 8)
		return fail(c, "an FCGI_BEGIN_REQUEST record of the wrong length");
	if (c->rid == rid)
		return fail(c, "FCGI_BEGIN_REQUEST twice for one request");
	if (c->rid != 0) {
		/* One request at a time on a connection (FCGI_MPXS_CONNS is 0). */
		return refuse(c, rid, FCGI_CANT_MPX_CONN) == 0 ? CONN_FLUSH :
		    fail(c, "out of memory");
	}
	if ((p[0] << 8 | p[1]) != FCGI_RESPONDER) {
		if (!(p[2] & FCGI_KEEP_CONN))
			c->close_after = 1;
		return refuse(c, rid, FCGI_UNKNOWN_ROLE) == 0 ? CONN_FLUSH :
		    fail(c, "out of memory");
	}
	request_reset(c);
	c->rid = rid;
	c->keep = p[2] & FCGI_KEEP_CONN;
	if (conn_deadline(c) == 0)
		set_deadline(c, now + CONN_DEADLINE_US);
	return CONN_MORE;
}

static enum conn_state
abort_request(conn *c, unsigned rid)
{
	if (rid != c->rid)
		return CONN_MORE;	/* no such request (any more): nothing to abort */
	if (!c->keep)
		c->close_after = 1;
	request_reset(c);
	c->streaming = 0;
	set_deadline(c, 0);
	return refuse(c, rid, FCGI_REQUEST_COMPLETE) == 0 ? CONN_FLUSH :
	    fail(c, "out of memory");
}

static enum conn_state
params(conn *c, unsigned rid, const unsigned char *p, size_t n)
{
	if (rid != c->rid)
		return CONN_MORE;	/* records of no active request are ignored */
	if (c->params_done)
		return fail(c, "FCGI_PARAMS after the end of the parameters");
	if (n == 0) {
		c->params_done = 1;
		return decode_params(c) == 0 ? CONN_MORE :
		    fail(c, "malformed request parameters (a length past the record's end)");
	}
	if (n > CONN_PARAMS_MAX - c->params_len)
		return fail(c, "request parameters larger than the limit");
	if (reserve(&c->params, &c->params_cap, c->params_len + n, 2048) != 0)
		return fail(c, "out of memory");
	memcpy(c->params + c->params_len, p, n);
	c->params_len += n;
	return CONN_MORE;
}

/* FCGI_STDIN or FCGI_DATA: counted, not kept (the tasks API reads no body); an empty
 * FCGI_STDIN makes the request whole. */
static enum conn_state
body(conn *c, int type, unsigned rid, size_t n)
{
	if (rid != c->rid)
		return CONN_MORE;
	if (!c->params_done)
		return fail(c, "request body before the end of the parameters");
	if (type == FCGI_STDIN && n == 0) {
		c->ready = 1;
		set_deadline(c, 0);
		return CONN_REQUEST;
	}
	if (n > CONN_STDIN_MAX - c->stdin_len)
		return fail(c, "a request body larger than the limit");
	c->stdin_len += n;
	return CONN_MORE;
}

/* Acts on one whole record; returns CONN_MORE to go on framing, or another state. */
static enum conn_state
record(conn *c, int type, unsigned rid, const unsigned char *p, size_t n, int64_t now)
{
	if (rid == 0)
		return management(c, type, p, n);
	switch (type) {
	case FCGI_BEGIN_REQUEST:
		return begin_request(c, rid, p, n, now);
	case FCGI_ABORT_REQUEST:
		return abort_request(c, rid);
	case FCGI_PARAMS:
		return params(c, rid, p, n);
	case FCGI_STDIN:
	case FCGI_DATA:
		return body(c, type, rid, n);
	default:
		return fail(c, "a record of a type a web server does not send");
	}
}

/* Gives back what a large record grew the input buffer by, once what is left unframed fits
 * its normal size (moved to the front first). */
static void
in_shrink(conn *c)
{
	size_t left = c->in_len - c->in_pos;
	unsigned char *p;

	memmove(c->in, c->in + c->in_pos, left);
	c->in_pos = 0;
	c->in_len = left;
	if ((p = realloc(c->in, CONN_IN_KEEP)) != NULL) {
		c->in = p;
		c->in_cap = CONN_IN_KEEP;
	}
}

/* Frames the buffered bytes record by record until a request is whole, output waits, or
 * more bytes are needed. */
static enum conn_state
frame(conn *c, int64_t now)
{
	enum conn_state st = CONN_MORE;

	if (c->closed)
		return CONN_CLOSE;
	if (c->ready)
		return CONN_REQUEST;
	if (c->close_after)
		return conn_pending(c) > 0 ? CONN_FLUSH : fail(c, "");
	while (st == CONN_MORE && c->in_len - c->in_pos >= FCGI_HEADER_LEN) {
		const unsigned char *h = c->in + c->in_pos;
		size_t clen = (size_t)h[4] << 8 | h[5], total = FCGI_HEADER_LEN + clen + h[6];
		if (h[0] != FCGI_VERSION_1)
			return fail(c, "not a FastCGI connection (a record of another version)");
		if (c->in_len - c->in_pos < total)
			break;
		c->in_pos += total;
		st = record(c, h[1], (unsigned)h[2] << 8 | h[3], h + FCGI_HEADER_LEN, clen, now);
	}
	if (c->in_pos == c->in_len)
		c->in_pos = c->in_len = 0;
	if (c->in_cap > CONN_IN_KEEP && c->in_len - c->in_pos <= CONN_IN_KEEP)
		in_shrink(c);
	if (st == CONN_MORE && c->in_len > c->in_pos && conn_deadline(c) == 0)
		set_deadline(c, now + CONN_DEADLINE_US);	/* a request has begun */
	if (st == CONN_MORE && conn_pending(c) > 0)
		return CONN_FLUSH;
	return st;
}

/* Writes buffered output: 1 all sent, 0 the socket is full (or there is none), -1 failed. */
static int
write_out(conn *c, int64_t now)
{
	int moved = 0;

	while (c->out_pos < c->out_len) {
		if (c->fd < 0)
			return 0;
		ssize_t n = write(c->fd, c->out + c->out_pos, c->out_len - c->out_pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* A request on its way keeps its own, shorter deadline; a stream whose
			 * client stops taking events gets the write deadline, counted from when
			 * the peer last took bytes (more output, a keep-alive, does not move it). */
			if ((c->rid == 0 || c->streaming) && (moved || conn_deadline(c) == 0))
				set_deadline(c, now + CONN_WRITE_DEADLINE_US);
			return 0;
		}
		if (n < 0)
			return -1;
		c->out_pos += (size_t)n;
		moved = 1;
	}
	c->out_pos = c->out_len = 0;
	if (c->out_cap > CONN_OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	if ((c->rid == 0 || c->streaming) && c->in_len == c->in_pos)
		set_deadline(c, 0);
	return 1;
}

/* Frames, and sends what framing queued, until input is needed or something else comes. */
static enum conn_state
advance(conn *c, int64_t now)
{
	enum conn_state st;
	int w;

	while ((st = frame(c, now)) == CONN_FLUSH) {
		if ((w = write_out(c, now)) < 0)
			return fail(c, "");
		if (w == 0)
			return CONN_FLUSH;
	}
	return st;
}

enum conn_state
conn_feed(conn *c, const void *buf, size_t len, int64_t now_us)
{
	if (c->closed)
		return CONN_CLOSE;
	if (len > 0) {
		if (c->in_pos > 0) {
			memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
			c->in_len -= c->in_pos;
			c->in_pos = 0;
		}
		if (len > INBUF_MAX - c->in_len)
			return fail(c, "more bytes sent ahead than the limit");
		if (reserve(&c->in, &c->in_cap, c->in_len + len, CONN_IN_KEEP) != 0)
			return fail(c, "out of memory");
		memcpy(c->in + c->in_len, buf, len);
		c->in_len += len;
	}
	return advance(c, now_us);
}

enum conn_state
conn_read(conn *c, int64_t now_us)
{
	enum conn_state st = advance(c, now_us);
	size_t got = 0;

	/* Reads stop once a request is whole: what follows waits in the socket; and after
	 * CONN_READ_TURN bytes, so that a peer sending records without end yields. */
	while (st == CONN_MORE && got < CONN_READ_TURN) {
		if (c->in_pos > 0) {
			memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
			c->in_len -= c->in_pos;
			c->in_pos = 0;
		}
		if (c->in_len == c->in_cap &&
		    reserve(&c->in, &c->in_cap, c->in_len + 1, CONN_IN_KEEP) != 0)
			return fail(c, "out of memory");
		ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return CONN_MORE;
		if (n <= 0)
			return fail(c, "");	/* the peer closed the connection, or reset it */
		c->in_len += (size_t)n;
		got += (size_t)n;
		st = advance(c, now_us);
	}
	return st;
}

enum conn_state
conn_flush(conn *c, int64_t now_us)
{
	int w = c->closed ? -1 : write_out(c, now_us);

	if (w < 0)
		return fail(c, "");
	if (w == 0)
		return CONN_FLUSH;
	return c->fd >= 0 ? conn_read(c, now_us) : advance(c, now_us);
}

/* Sends iov (k buffers) as far as the socket takes it; keeps the rest. */
static int
send_or_keep(conn *c, struct iovec *iov, int k, int *direct)
{
	ssize_t w = 0;

	if (*direct) {
		do
			w = writev(c->fd, iov, k);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (w < 0)
			w = 0;
	}
	for (int i = 0; i < k; i++) {
		size_t skip = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
		w -= (ssize_t)skip;
		if (iov[i].iov_len > skip) {
			*direct = 0;
			if (conn_queue(c, (char *)iov[i].iov_base + skip, iov[i].iov_len - skip) != 0)
				return -1;
		}
	}
	return 0;
}

enum conn_state
conn_answer(conn *c, const void *head, size_t head_len, const void *body, size_t body_len,
    int64_t now_us)
{
	size_t total = head_len + body_len, done = 0;
	int direct = c->fd >= 0 && conn_pending(c) == 0, last;
	unsigned char hdr[FCGI_HEADER_LEN], tail[FCGI_HEADER_LEN + 16];

	if (c->closed || !c->ready)
		return fail(c, "an answer without a request");
	header(tail, FCGI_STDOUT, c->rid, 0);
	end_record(tail + FCGI_HEADER_LEN, c->rid, FCGI_REQUEST_COMPLETE);
	/* Records of at most 65535 bytes; the last one's writev carries the end records too. */
	do {
		struct iovec iov[4];
		size_t n = total - done < 65535 ? total - done : 65535;
		int k = 0;
		if (n > 0) {
			header(hdr, FCGI_STDOUT, c->rid, n);
			iov[k++] = (struct iovec){ hdr, sizeof(hdr) };
			if (done < head_len) {
				size_t a = head_len - done < n ? head_len - done : n;
				iov[k++] = (struct iovec){ (char *)head + done, a };
				if (n > a)
					iov[k++] = (struct iovec){ (void *)body, n - a };
			} else {
				iov[k++] = (struct iovec){ (char *)body + (done - head_len), n };
			}
		}
		done += n;
		last = done == total;
		if (last)
			iov[k++] = (struct iovec){ tail, sizeof(tail) };
		if (send_or_keep(c, iov, k, &direct) != 0)
			return fail(c, "");
	} while (!last);
	if (!c->keep)
		c->close_after = 1;
	request_reset(c);
	if (conn_pending(c) > 0) {
		set_deadline(c, now_us + CONN_WRITE_DEADLINE_US);
		return CONN_FLUSH;
	}
	return c->close_after ? fail(c, "") : CONN_MORE;
}

/* Queues len bytes as FCGI_STDOUT records of the current request. */
static int
queue_stdout(conn *c, const void *buf, size_t len)
{
	unsigned char hdr[FCGI_HEADER_LEN];
	const char *p = buf;

	while (len > 0) {
		size_t n = len < 65535 ? len : 65535;
		header(hdr, FCGI_STDOUT, c->rid, n);
		if (conn_queue(c, hdr, sizeof(hdr)) != 0 || conn_queue(c, p, n) != 0)
			return ENOMEM;
		p += n;
		len -= n;
	}
	return 0;
}

enum conn_state
conn_stream_begin(conn *c, const void *head, size_t head_len, const void *body,
    size_t body_len, int64_t now_us)
{
	if (c->closed || !c->ready)
		return fail(c, "an answer without a request");
	if (queue_stdout(c, head, head_len) != 0 || queue_stdout(c, body, body_len) != 0)
		return fail(c, "out of memory");
	/* The request stays current: its records go on until conn_stream_end. */
	c->ready = 0;
	c->streaming = 1;
	set_deadline(c, 0);
	return conn_flush(c, now_us);
}

int
conn_streaming(const conn *c)
{
	return c->streaming && !c->closed;
}

int
conn_stream_write(conn *c, const void *buf, size_t len)
{
	if (!conn_streaming(c))
		return EPIPE;
	return queue_stdout(c, buf, len);
}

enum conn_state
conn_stream_end(conn *c, int64_t now_us)
{
	unsigned char tail[FCGI_HEADER_LEN + 16];

	if (!conn_streaming(c))
		return c->closed ? CONN_CLOSE : conn_flush(c, now_us);
	header(tail, FCGI_STDOUT, c->rid, 0);
	end_record(tail + FCGI_HEADER_LEN, c->rid, FCGI_REQUEST_COMPLETE);
	if (conn_queue(c, tail, sizeof(tail)) != 0)
		return fail(c, "out of memory");
	c->streaming = 0;
	if (!c->keep)
		c->close_after = 1;
	request_reset(c);
	return conn_flush(c, now_us);
}
