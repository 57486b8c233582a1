/* One FastCGI connection from the web server, framed by our own code: bytes read without
 * blocking, every record checked against hard limits, a request handed out only once it has
 * arrived whole, the answer written without blocking and the rest kept until the socket is
 * writable.  No threads and no epoll here: the responder's loop owns those, and calls these
 * functions for one connection from one thread at a time. */
#ifndef LMTASKS_CONN_H
#define LMTASKS_CONN_H

#include <stddef.h>
#include <stdint.h>

/* A longer query string is refused (414, http_query_check()): the framing sizes its
 * buffers for one this long, the HTTP application refuses what is past it. */
#define CONN_QUERY_MAX 65536
/* The parameters of a request, all together (name, value, lengths): larger is refused. Room
 * for a query string at the 414 limit twice (QUERY_STRING and REQUEST_URI) and the rest. */
#define CONN_PARAMS_MAX (2 * CONN_QUERY_MAX + 65536)
/* A request body is read and dropped (every route is GET or HEAD); larger is refused. */
#define CONN_STDIN_MAX (1 << 20)
/* A request must arrive whole this long after its first byte (or after the connect). */
#define CONN_DEADLINE_US 5000000
/* Buffered output not taken by the peer for this long closes the connection. */
#define CONN_WRITE_DEADLINE_US 30000000
/* What a connection's buffers keep between requests: reading 4 KiB, a request's parameters
 * 8 KiB (their raw pairs and the values read from them, each), output 16 KiB.  One grown
 * past that (a large record, parameters or answer) is given back once it has drained. */
#define CONN_IN_KEEP 4096
#define CONN_PARAMS_KEEP 8192
#define CONN_OUT_KEEP 16384
/* conn_read stops reading once a call has read this much (its last read may pass it by
 * one buffer): a peer that sends records without end leaves the worker to the others. */
#define CONN_READ_TURN 65536

/* What the connection waits for next; what every function below returns. */
enum conn_state {
	CONN_MORE,		/* for bytes from the peer (arm for reading) */
	CONN_REQUEST,		/* nothing: a whole request is there, answer it (conn_answer) */
	CONN_FLUSH,		/* for the peer to take buffered output (arm for writing) */
	CONN_CLOSE		/* for nothing: close it (conn_why says why, or "" when the peer left) */
};

/* The request parameters the API reads, looked up once per request. */
enum conn_param {
	CONN_METHOD,
	CONN_REQUEST_URI,
	CONN_SCRIPT_NAME,
	CONN_PATH_INFO,
	CONN_QUERY_STRING,
	CONN_AUTHORIZATION,
	CONN_IF_NONE_MATCH,
	CONN_LMTASKS_DB,
	CONN_LAST_EVENT_ID,
	CONN_NPARAMS
};

typedef struct conn conn;

/* Makes the state of a connection on fd (non-blocking; -1: no socket, output only kept, as
 * the fuzzer and tests use it); it starts with a deadline at now_us.  conn_free frees it
 * and closes fd.  Returns 0 or ENOMEM. */
int conn_new(int fd, int64_t now_us, conn **out);
void conn_free(conn *c);

int conn_fd(const conn *c);

/* Reads what the socket has (never blocks) and frames it; returns the next state. */
enum conn_state conn_read(conn *c, int64_t now_us);

/* As conn_read with bytes given instead of read (the fuzzer, tests); len 0 frames what is
 * buffered already (after an answer, a request the peer sent early). */
enum conn_state conn_feed(conn *c, const void *buf, size_t len, int64_t now_us);

/* A parameter of the request conn_read/conn_feed announced (CONN_REQUEST): a NUL-ended
 * string owned by c, or NULL when absent; it lives until the request is answered. */
const char *conn_param(const conn *c, enum conn_param p);

/* Answers that request: head (the CGI header block) and body go out as FCGI_STDOUT records
 * and an FCGI_END_REQUEST; what the socket does not take at once is copied and kept.
 * Returns CONN_MORE (then call conn_feed(c, NULL, 0, now) for a request sent early),
 * CONN_FLUSH or CONN_CLOSE. */
enum conn_state conn_answer(conn *c, const void *head, size_t head_len, const void *body,
    size_t body_len, int64_t now_us);

/* Appends bytes to the buffered output (a later write on an open connection, as a stream
 * of events will need); the loop sends them when the socket is writable. The bytes the peer
 * took make room first: the buffer holds about what is pending, not all that was sent.
 * Returns 0/ENOMEM. */
int conn_queue(conn *c, const void *buf, size_t len);

/*
 * An answer written over time (GET /tasks/stream): conn_stream_begin sends the header block
 * and the first bytes like conn_answer but keeps the request open; conn_stream_write queues
 * more bytes of it (the loop flushes them: 0, ENOMEM, or EPIPE when the request is no
 * longer open, aborted by the peer or closed); conn_stream_end sends its end.  While
 * streaming, conn_read frames what the peer sends (an FCGI_ABORT_REQUEST ends the stream:
 * conn_streaming turns 0).  Both return as conn_flush does.
 */
enum conn_state conn_stream_begin(conn *c, const void *head, size_t head_len, const void *body,
    size_t body_len, int64_t now_us);
int conn_streaming(const conn *c);
int conn_stream_write(conn *c, const void *buf, size_t len);
enum conn_state conn_stream_end(conn *c, int64_t now_us);

/* Writes buffered output; returns CONN_FLUSH while some is left, else what comes next. */
enum conn_state conn_flush(conn *c, int64_t now_us);

/* When the connection is overdue (µs, 0: none); any thread may read it. */
int64_t conn_deadline(const conn *c);

/* Why the connection is to be closed, for the log ("" when the peer closed it). */
const char *conn_why(const conn *c);

/* The bytes of output kept; the output itself (owned by c, valid until the next call on
 * c); dropping it (the fuzzer and tests, which have no peer). */
size_t conn_pending(const conn *c);
const unsigned char *conn_output(const conn *c);
void conn_drop_output(conn *c);

/* The bytes of memory c's buffers hold (input, parameters, output). */
size_t conn_buffers(const conn *c);

#endif
