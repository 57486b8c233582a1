/* The responder's side of GET /tasks/stream: a CGI process holding its one stream on
 * standard output, and the FastCGI responder's stream thread holding all of its streams. */
#ifndef LMTASKS_STREAM_IO_H
#define LMTASKS_STREAM_IO_H

#include <stdint.h>

#include "lmtasks/conn.h"
#include "lmtasks/reader.h"
#include "lmtasks/store.h"
#include "lmtasks/stream.h"

/* A CGI stream ends after this long unless LMTASKS_STREAM_MAX_SECONDS says otherwise: a
 * shared host's process limits; the client resumes with Last-Event-ID. */
#define STREAM_CGI_MAX_SECONDS 300

/* The longest a CGI stream may last (µs): LMTASKS_STREAM_MAX_SECONDS (1 to 86400), else
 * STREAM_CGI_MAX_SECONDS. */
int64_t stream_io_cgi_max(void);

/*
 * Writes the stream's events to standard output as they are committed (woken by inotify
 * on the store's data.mdb, else polling; read through r's guarded path), a keep-alive
 * comment every 15 s, until the stream ends by itself, standard output fails (the client
 * left), the store cannot be read, or max_us pass.  Takes sub over.  Returns 0, or 1 when
 * the end was a failure.
 */
int stream_io_cgi(stream_sub *sub, reader *r, int64_t max_us);

/* What the FastCGI responder lends the stream thread. */
struct stream_io_host {
	conn *(*conn_of)(void *client);
	void (*close)(void *client);	/* closes a connection the thread holds */
	/* returns a connection whose stream ended to the workers, waiting for st */
	void (*give_back)(void *client, enum conn_state st);
	/* calls fn in a read transaction of the responder's store, under whatever guards it
	 * (its lock, a damaged file's SIGBUS); 0, or an error when it could not */
	int (*read)(void (*fn)(store *s, MDB_txn *txn, void *arg), void *arg);
	const char *name;	/* the program, the prefix of the thread's log lines */
};

/*
 * The FastCGI side: one thread holds every open stream, with the one inotify watch on the
 * store's data file (path) that wakes it; on a change it reads the log once and writes
 * each stream its events, flushing as the sockets take them, a keep-alive comment every
 * 15 s.  A stream is paced: at most STREAM_WINDOW bytes (and the event that crosses it)
 * wait for its client; once they have gone it reads on from its cursor in the log.  A
 * client that takes nothing for CONN_WRITE_DEADLINE_US is closed (a timer of the thread's).
 */

/* Hands over client, whose stream conn_stream_begin has started and which is in no
 * worker's event loop any more; the thread is started with the first.  Returns 0, or an error (the
 * caller then still owns client and sub). */
int stream_io_adopt(const struct stream_io_host *host, const char *path, void *client,
    stream_sub *sub);

/* Ends every stream (their end records queued) and stops the thread; the connections stay
 * the caller's to flush and close.  Nothing when it never started. */
void stream_io_stop(void);

/* The number of streams the thread holds (for tests and the log). */
size_t stream_io_count(void);

#endif
