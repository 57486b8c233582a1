/* The CLI's own answers as JSON (summaries, indexes, keys, stats, check), built with the
 * render module's primitives.  Each appends to a caller-owned printbuf and returns 0 or
 * ENOMEM, as render.h states. */
#ifndef LMTASKS_REPORT_H
#define LMTASKS_REPORT_H

#include <stdint.h>

#include <json-c/printbuf.h>

#include "lmtasks/auth.h"
#include "lmtasks/settings.h"
#include "lmtasks/store.h"
#include "lmtasks/webhook.h"

/* {"enqueued":n,"firstUid":first,"lastUid":last}, nulls when n is 0: enqueue --batch. */
int report_batch(struct printbuf *pb, size_t n, uint64_t first, uint64_t last);

/* {"reaped":n}. */
int report_reaped(struct printbuf *pb, uint64_t n);

/* {"uid":name,"createdAt":when}: one entry of `index list`. */
int report_index(struct printbuf *pb, struct task_str name, int64_t created_at);

/* Closes a list opened with render_list_open(): `],"total":total}` (index list). */
int report_list_end(struct printbuf *pb, uint64_t total);

/* Closes a list opened with render_list_open() with no total: `]}` (key list). */
int report_results_end(struct printbuf *pb);

/* {"uid":name,"deleted":true}: `index delete`. */
int report_index_deleted(struct printbuf *pb, struct task_str name);

/* A key's public fields, with "key" first when secret is not NULL (`key create`). */
int report_key(struct printbuf *pb, const struct auth_key *k, const char *secret);

/* {"deleted":true}: `key delete`. */
int report_deleted(struct printbuf *pb);

/* {"maxBytes":…,"maxTasks":…,"feedRetention":…,"compat":"…"} (feedRetention a number of
 * changes, or a string for an age: "7d"): `config`, and inside `stats`. */
int report_settings(struct printbuf *pb, const struct settings *st);

/* `stats`: counts and sizes, the live bytes and the settings that bound them. */
int report_stats(struct printbuf *pb, const struct store_stats *st, uint64_t live_bytes,
    const struct settings *set);

/* {"ok":…,"tasks":checked,"problems":problems}: `check`. */
int report_check(struct printbuf *pb, uint64_t checked, uint64_t problems);

/*
 * A webhook as `webhook add` and `webhook list` show it, given the change log's bounds
 * (feed_bounds()): its cursor, the changes logged after it ("pending"), whether the log
 * was pruned past it ("pruned"), the changes it missed that way, its last error.  The
 * values of Authorization headers are hidden, as Meilisearch hides them.
 */
int report_webhook(struct printbuf *pb, const struct webhook *w, uint64_t first, uint64_t last);

/* {"backup":dir,"tasks":n,"nextUid":next}: lmtasks backup. */
int report_backup(struct printbuf *pb, const char *dir, uint64_t tasks, uint64_t next_uid);

/* {"restored":dir,"tasks":n,"changedTasks":changed,"nextUid":next}: lmtasks restore. */
int report_restore(struct printbuf *pb, const char *dir, uint64_t tasks, uint64_t changed,
    uint64_t next_uid);

/* size bytes as Meilisearch prints a size (the byte-unit crate's "{:#}"): the largest
 * unit, KB to EiB, that holds it exactly with at most three decimals ("3136.5 KiB",
 * "1 MiB", "1.001 KB"), else (under 1000) "N B"; out holds 32 bytes.  Returns the
 * length. */
size_t report_size_text(uint64_t size, char out[32]);

/* {"preSize":"…","postSize":"…","status":"succeeded","preBytes":n,"postBytes":n}: lmtasks
 * compact and POST /tasks/compact (Meilisearch's TaskCompactionSummary, then the sizes
 * as numbers). */
int report_compaction(struct printbuf *pb, uint64_t pre, uint64_t post);

#endif
