/* Tasks, lists and errors to JSON bytes: the one renderer for the CLI and HTTP. */
#ifndef LMTASKS_RENDER_H
#define LMTASKS_RENDER_H

#include <stdint.h>

#include <json-c/printbuf.h>

#include "lmtasks/store.h"
#include "lmtasks/task.h"

/*
 * Every function appends to a caller-owned json-c printbuf (printbuf_new() /
 * printbuf_reset() / printbuf_free()), so one buffer can be reused across
 * requests.  They return 0, or ENOMEM when the buffer could not grow (its
 * contents are then incomplete and must be discarded).
 *
 * json-c's ownership rule, where this project uses json_object trees (details
 * validation, the CLI's reports): json_object_get() takes a reference,
 * json_object_put() drops one; json_object_object_add() takes over the
 * caller's reference to the value; a pointer from json_object_object_get_ex()
 * is borrowed from its parent.
 */

/* The full task object of SPEC §1, keys in order, stored details copied verbatim. */
int render_task(struct printbuf *pb, const struct task *t);

/* The task in Meilisearch v1's layout (compat v1): uid, batchUid, indexUid, status, type,
 * canceledBy, details, error, duration, enqueuedAt, startedAt, finishedAt, the nullable
 * ones always present. */
int render_task_v1(struct printbuf *pb, const struct task *t);

/* render_task_v1() when v1, else render_task(). */
int render_task_as(struct printbuf *pb, const struct task *t, int v1);

struct tbatch;
struct tbatch_progress;
/* Meilisearch v1's batch object: uid, progress (p; NULL: null, as for a finished batch),
 * details, stats {totalNbTasks, status, types, indexUids}, duration, startedAt,
 * finishedAt, batchStrategy. */
int render_tbatch(struct printbuf *pb, const struct tbatch *b, const struct tbatch_progress *p);

/* {"uid","indexUid","status","type","enqueuedAt"}, as enqueue prints it. */
int render_task_summary(struct printbuf *pb, const struct task *t);

/* {"message","code","type","link"}; message is any UTF-8 text, escaped here. */
int render_error(struct printbuf *pb, const char *message, const char *code, const char *type);

/* Opens a list envelope: `{"results":[`.  Separate tasks with render_comma(). */
int render_list_open(struct printbuf *pb);

/* Appends ','. */
int render_comma(struct printbuf *pb);

/* Closes the envelope; from and next are TASK_NO_UID for null. */
int render_list_close(struct printbuf *pb, uint64_t total, unsigned limit, uint64_t from,
    uint64_t next);

/* A stream's event for t at change seq: `id: SEQ\nevent: task\ndata: TASK\n\n`, the task in
 * v1's layout or not (GET /tasks/UID's bytes). */
int render_event(struct printbuf *pb, uint64_t seq, const struct task *t, int v1);

/* One line of `lmtasks watch`: `{"seq":SEQ,"task":TASK}\n`. */
int render_change(struct printbuf *pb, uint64_t seq, const struct task *t, int v1);

/* The details a cancelation or deletion task records: {"matchedTasks":matched,
 * "<what>":changed,"originalFilter":filter}; what is a key of ours ("canceledTasks"). */
int render_filter_details(struct printbuf *pb, uint64_t matched, const char *what,
    uint64_t changed, const char *filter);

/* Appends s as a JSON string, quoted and escaped. */
int render_string(struct printbuf *pb, const char *s, size_t len);

struct query;
/*
 * The list envelope of SPEC §2 for q's page, tasks in q->v1's layout, read through it (an
 * iterator bound to txn).  Returns 0, ENOMEM, LMT_ECORRUPT with *bad the uid of a record
 * that does not decode, or another store error.
 */
int render_task_page(struct printbuf *pb, store *s, MDB_txn *txn, store_iter *it,
    const struct query *q, uint64_t *bad);

/* The list envelope of the batches q matches, seen through a key's index patterns allow
 * (nallow 0: every batch); errors as render_task_page(), *bad a batch uid. */
int render_batch_page(struct printbuf *pb, store *s, MDB_txn *txn, const struct query *q,
    const struct task_str *allow, size_t nallow, uint64_t *bad);

/* Batch uid's object; MDB_NOTFOUND when there is none or the key may not see it, else as
 * render_task_page(). */
int render_batch_uid(struct printbuf *pb, store *s, MDB_txn *txn, uint64_t uid,
    const struct task_str *allow, size_t nallow);

#endif
