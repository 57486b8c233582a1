/* Webhooks: receivers of the finished tasks, kept in the store's `webhooks` database
 * (id, u64 big-endian -> record), each with its own cursor in the change log (feed.h):
 * the last sequence delivered to it.  Only `lmtasks notify` moves a cursor, after the
 * receiver answered 2xx.  A store made before webhooks existed has no such database
 * until a writer opens it: it reads as having none. */
#ifndef LMTASKS_WEBHOOK_H
#define LMTASKS_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "lmtasks/store.h"
#include "lmtasks/task.h"

#define WEBHOOK_URL_MAX 2048		/* bytes of a URL */
#define WEBHOOK_HEADERS_MAX 8192	/* bytes of the headers' JSON object text */
#define WEBHOOK_FILTER_MAX 4096		/* bytes of the filter's query string */
#define WEBHOOK_ERROR_MAX 512		/* bytes of the last error kept */
#define WEBHOOK_NEXT_ID_KEY "webhook.next_id"	/* meta: the id the next webhook gets */

/* A webhook.  Its strings point into a record (alive until the transaction ends) or
 * into the caller's memory; error.ptr NULL: the last attempt succeeded (or none yet). */
struct webhook {
	uint64_t id;			/* 1, 2, 3, ... never reused */
	uint64_t cursor;		/* the last change sequence delivered (or passed over) */
	int64_t created_at;		/* µs */
	uint64_t delivered;		/* tasks delivered, all POSTs together */
	int64_t delivered_at;		/* the last 2xx (µs); 0: none yet */
	uint64_t missed;		/* changes pruned from the log before it got them */
	int64_t missed_at;		/* when the last such gap was noticed (µs); 0: never */
	int64_t failing_since;		/* the first failed attempt since the last 2xx; 0: none */
	struct task_str url;		/* http:// or https:// */
	struct task_str headers;	/* a JSON object of strings: {"Authorization":"Bearer …"} */
	struct task_str filter;		/* the list filters as a query string, without '?' */
	struct task_str error;		/* the last failure, one line of text */
};

/* The record's size for w (buf NULL), or encodes w into buf (room for that size). */
size_t webhook_encode(const struct webhook *w, unsigned char *buf);

/* Decodes a record (id from its key); w's strings point into buf.  0 or LMT_ECORRUPT. */
int webhook_decode(uint64_t id, const void *buf, size_t len, struct webhook *w);

/* Reads webhook id in txn; MDB_NOTFOUND when there is none (also in a store with no
 * webhooks database). */
int webhook_get(store *s, MDB_txn *txn, uint64_t id, struct webhook *w);

/* Calls fn(ctx, w) for each webhook in id order until it returns nonzero (returned). */
int webhook_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, const struct webhook *w),
    void *ctx);

/* Writer side (the write library). */

/* Stores w under w->id, replacing the one there. */
int webhook_put(store *s, MDB_txn *txn, const struct webhook *w);

/* Removes webhook id; MDB_NOTFOUND when there is none. */
int webhook_del(store *s, MDB_txn *txn, uint64_t id);

/* Returns 1 when name is an HTTP header name (a token of 1-256 bytes) that the deliverer
 * does not set itself (Content-Type, Content-Encoding, Content-Length, Host, Transfer-Encoding). */
int webhook_header_name_valid(const char *name, size_t len);

/* Returns 1 when value is header text: printable, no CR or LF, at most 4096 bytes. */
int webhook_header_value_valid(const char *value, size_t len);

/*
 * Finds the password in url (len bytes): the userinfo lies between "://" and the last '@'
 * before the first '/', '?' or '#' after it, and its password after its first ':'.
 * Returns 1 with *off and *plen (0 for "user:@host") its bytes in url as written
 * (percent-encoded), or 0 when url has none (no userinfo, or a user name alone).
 */
int webhook_url_password(const char *url, size_t len, size_t *off, size_t *plen);

/*
 * Copies text (textlen bytes; it may be url itself) for a person or a log to see: each
 * ":PASSWORD@" of url's password becomes ":***@", and such a piece cut short at text's
 * end (a kept error has a bound) ":***".  *out (NUL-terminated, *outlen bytes) is
 * malloc'd; the caller frees it.  0 or ENOMEM.
 */
int webhook_mask(const char *url, size_t urllen, const char *text, size_t textlen, char **out,
    size_t *outlen);

#endif
