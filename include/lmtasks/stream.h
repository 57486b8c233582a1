/* GET /tasks/stream: server-sent events from the change feed.  A hub holds the open streams
 * of one process; each wake-up reads the log once, renders each changed task once, and
 * hands every stream the events its filters and its key let through.  No I/O here: the
 * transport (the FastCGI loop, a CGI process) owns the sockets and gives each stream a
 * write function. */
#ifndef LMTASKS_STREAM_H
#define LMTASKS_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/printbuf.h>

#include "lmtasks/api_error.h"
#include "lmtasks/store.h"

/* A comment line this often keeps proxies from timing a quiet stream out (µs). */
#define STREAM_KEEPALIVE_US (15 * INT64_C(1000000))
/* The reconnection delay the stream asks of EventSource (ms), as Meilisearch does. */
#define STREAM_RETRY_MS 10000
/* Events a stream may have waiting for its client: past this its write answers STREAM_FULL
 * and the hub gives it nothing more until the transport says the output has gone
 * (stream_sub_resume); the stream then reads on from its cursor in the log.  So a stream
 * holds at most this much plus the one event that crossed it, however far behind it is. */
#define STREAM_WINDOW (32 << 10)
/* Entries of the log the hub reads at once for the streams caught up. */
#define STREAM_CATCHUP_MAX 4096
/* Entries of the log one stream behind reads per call (more than a window's worth of
 * events, so a paced stream reads the log about once per window it sends). */
#define STREAM_STEP 512
/* Bytes of events the hub renders at once for the streams caught up (plus one event). */
#define STREAM_RENDER_MAX (1 << 20)
/* A write's answer: taken, but the stream's output is at STREAM_WINDOW now. */
#define STREAM_FULL 2

typedef struct stream_sub stream_sub;
typedef struct stream_hub stream_hub;

/*
 * Writes len bytes of events for the stream; returns 0 to go on, STREAM_FULL when it took
 * them but wants no more until stream_sub_resume, anything else to end it (the client
 * left).
 */
typedef int stream_write_fn(void *ctx, const void *buf, size_t len);

/* What opening a stream needs from the request. */
struct stream_request {
	const char *query_string;	/* the /tasks filters; may be NULL */
	const char *authorization;	/* HTTP_AUTHORIZATION, checked again at each wake-up */
	const char *last_event_id;	/* HTTP_LAST_EVENT_ID; NULL: a new stream */
	const unsigned char *master;	/* the master key's hash; NULL: no key */
};

/*
 * Opens a stream in txn (a read transaction of s) for rq, whose key the caller has
 * checked.  On success returns 200 with *out the new stream and body its first bytes:
 * the retry line, then with uids= each listed task as it is now (under its latest
 * change's sequence, in that order) or, with Last-Event-ID, the changes after it.
 * Returns 204 (out NULL) when resuming a uids= stream whose tasks have all finished and
 * nothing follows; else an HTTP status with err filled: 400 for a bad filter or
 * Last-Event-ID, 404 for a listed task that no longer exists, 410 when the log was
 * pruned past Last-Event-ID, 500 when the store cannot be read.
 */
int stream_open(store *s, MDB_txn *txn, const struct stream_request *rq, struct printbuf *body,
    stream_sub **out, struct api_error *err);

/* Frees a stream that was never added to a hub (stream_hub_add takes it over). */
void stream_sub_free(stream_sub *sub);

/* The sequence after which the stream's next event comes (for tests). */
uint64_t stream_sub_cursor(const stream_sub *sub);

/* 1 when a uids= stream has seen all its tasks finish: the transport ends it. */
int stream_sub_done(const stream_sub *sub);

/* 1 while a write's STREAM_FULL holds the stream back. */
int stream_sub_full(const stream_sub *sub);

/* The stream's output has gone (after a write answered STREAM_FULL): the next poll sends it
 * what follows its cursor. */
void stream_sub_resume(stream_sub *sub);

int stream_hub_new(stream_hub **out);

/* Frees the hub and every stream it holds (their ctx is the transport's). */
void stream_hub_free(stream_hub *h);

/* Takes sub over: from now on its events go to write(ctx, ...). */
int stream_hub_add(stream_hub *h, stream_sub *sub, stream_write_fn *write, void *ctx);

/* Drops the stream whose ctx is ctx (the client left); 0, or MDB_NOTFOUND. */
int stream_hub_remove(stream_hub *h, void *ctx);

/* The number of open streams. */
size_t stream_hub_count(const stream_hub *h);

/*
 * Reads what the log gained since the last call (once for every stream), in one read
 * transaction of s, and writes each stream its events; then calls ended(ctx) and drops
 * each stream that is done, whose write failed, or whose key no longer lets it read.
 * Streams behind (resumed from an old Last-Event-ID, or paced by STREAM_FULL) read at most
 * STREAM_STEP changes of the log each per call; stream_hub_behind then says to call
 * again.  Returns 0 or a store error (the streams stay as they were).
 */
int stream_hub_poll(stream_hub *h, store *s, void (*ended)(void *ctx));

/* As stream_hub_poll, in a read transaction the caller began (and ends): a threaded
 * reader adopts a grown map only while it holds no other transaction. */
int stream_hub_poll_txn(stream_hub *h, store *s, MDB_txn *txn, void (*ended)(void *ctx));

/* 1 when a stream was added since the last poll, or one with room for output is behind
 * the log: a call to stream_hub_poll has more to send it without any new commit. */
int stream_hub_behind(const stream_hub *h);

/* Writes a keep-alive comment to every stream whose output is not full (a stream with
 * output waiting is not quiet); those whose write fails end as above. */
void stream_hub_keepalive(stream_hub *h, void (*ended)(void *ctx));

#endif
