/*
 * The FastCGI server loop of lmtasks-fcgi and lmtasks-writer: each worker thread runs its
 * own event loop (event.h) holding the listening socket (EPOLLEXCLUSIVE: a connection
 * coming wakes one worker), a timer, and the connections it accepted.  Sockets are
 * non-blocking: at each readiness the worker reads what the connection has (conn.c frames
 * it), has the program answer a request only once it is whole (LOOP_TURN_REQUESTS in a
 * row at most), writes the answer without blocking, and waits for reading, or for writing
 * while output is left.  So a slow or stalled peer costs no worker any waiting, a whole
 * request never waits for another connection's whole turn, and an idle kept connection
 * (fastcgi_keep_conn) holds no thread.  The timer closes connections past their deadline
 * (a request not whole in time, output not taken).
 */
#ifndef LMTASKS_LOOP_H
#define LMTASKS_LOOP_H

#include <stdint.h>

#include "lmtasks/conn.h"

/* A kept connection idle this long (no request begun, nothing to send, held by no thread
 * of the program) is closed; and when accept finds no descriptor left, the connections
 * idle the longest are closed first, so a client with a request gets one. */
#define LOOP_IDLE_US (120 * INT64_C(1000000))

/* A worker answers at most this many requests of one connection in a row (requests sent
 * ahead, pipelined); the connection then waits behind the others that are ready. */
#define LOOP_TURN_REQUESTS 8

/* A connection the loop holds; opaque, owned by the loop until loop_close. */
typedef struct loop_client loop_client;

/* What the program lends the loop.  Every callback but name may be NULL. */
struct loop_ops {
	const char *name;	/* the program, the prefix of the loop's log lines */
	/* each worker's own state (*ctx), made when it starts (0 or an error) and freed when
	 * it ends */
	int (*thread_init)(void **ctx);
	void (*thread_free)(void *ctx);
	/* answers the whole request loop_conn(cl) holds (conn_answer) and returns the
	 * connection's next state; or sets *taken when it took cl out of the loop
	 * (loop_detach, then loop_give_back or loop_close later), the state then unused */
	enum conn_state (*answer)(void *ctx, loop_client *cl, int *taken);
	void (*tick)(void);	/* once a second, from a worker */
	void (*stopping)(void);	/* after the workers left, before the last answers are flushed */
};

/*
 * Serves FastCGI on listen_fd (made non-blocking) with threads workers until SIGTERM or
 * SIGINT, the soft limit of open files raised to the hard one first.  At SIGTERM or
 * SIGINT each worker finishes the request it is serving and leaves, the answers still
 * buffered get one more second to be taken, and every connection is closed.  ops must live
 * until it returns.  Returns 0, or 1 when it could not start (logged).
 */
int loop_run(int listen_fd, int threads, const struct loop_ops *ops);

/* The connection of cl; owned by the loop. */
conn *loop_conn(loop_client *cl);

/* Takes cl out of its worker's loop, from that worker's answer callback (for a thread of
 * the program's own to hold it; it stays in the registry, so the deadline sweep and
 * shutdown still find it).  Returns 0. */
int loop_detach(loop_client *cl);

/* Gives a detached cl back to the worker it came from, waiting for st (closed when that
 * fails); from the program's thread that holds it. */
void loop_give_back(loop_client *cl, enum conn_state st);

/* Closes cl and frees it, logging why (conn_why) when there is a reason: from the
 * answer callback of its worker, or from the thread that holds it detached. */
void loop_close(loop_client *cl);

#endif
