/* Store settings: kept in the store (meta), read with defaults when a store predates them,
 * set by `lmtasks config KEY VALUE`, listed by `lmtasks config`. */
#ifndef LMTASKS_SETTINGS_H
#define LMTASKS_SETTINGS_H

#include <stdint.h>

#include "lmtasks/store.h"

enum setting_id {
	SETTING_MAX_BYTES,	/* maxBytes: the store's size limit */
	SETTING_MAX_TASKS,	/* maxTasks: past it, old finished tasks are deleted; 0: off */
	SETTING_FEED_RETENTION,	/* feedRetention: the change log kept (feed.h's encoding) */
	SETTING_COMPAT,		/* compat: the Meilisearch the answers follow (compat.h) */
	SETTING_MAX_ATTEMPTS,	/* maxAttempts: the retry policy of tasks that give none;
				 * 0: none (one attempt, attempts not counted) */
	SETTING_RETRY_BACKOFF,	/* retryBackoff: the first retry's delay (ms) of tasks that
				 * give none (retry.h) */
	SETTING_COUNT
};

/* New tasks are refused once the store's pages pass this share of maxBytes (percent); the
 * rest is the headroom that finishing, canceling and deleting tasks need. */
#define SETTINGS_ENQUEUE_PERCENT 40

/* Past maxTasks, the oldest finished tasks are deleted down to this share of it (percent). */
#define SETTINGS_TRIM_PERCENT 90

#define SETTINGS_MAX_TASKS_DEFAULT 1000000

struct settings {
	uint64_t v[SETTING_COUNT];
	unsigned stored;	/* bit 1 << id: kept in the store, else the default */
};

/* The setting's name ("maxBytes"), or NULL out of range. */
const char *settings_name(enum setting_id id);

/* Finds a setting by name; returns 0, or LMT_EINVAL for a name that is none. */
int settings_find(const char *name, enum setting_id *id);

/* The names, comma-separated, for messages. */
const char *settings_names(void);

/*
 * Parses a value for id: maxBytes a size (bytes, or with a suffix K, M, G, T, optionally
 * followed by iB: powers of 1024), at least 1 MiB; maxTasks a count (0 turns it off);
 * feedRetention a count of changes (at least 1) or an age (7d, 12h, 30m, 90s);
 * compat `v0.25` or `v1`; maxAttempts 0 (none) to TASK_ATTEMPTS_MAX; retryBackoff a
 * duration (retry_parse_duration()).
 * Returns 0, or LMT_EINVAL with *why saying what is wanted.
 */
int settings_parse(enum setting_id id, const char *text, uint64_t *v, const char **why);

/* A whole number of bytes with an optional suffix K, M, G or T (powers of 1024), which
 * may be followed by iB or B: "512K", "2GiB".  Returns 0, or LMT_EINVAL. */
int settings_parse_size(const char *text, uint64_t *v);

/* The default maxBytes for a store whose directory is at path: half of what the disk
 * has free plus what the data file holds already. */
uint64_t settings_default_max_bytes(const char *path);

/* Reads every setting from txn, with the defaults for those the store does not keep. */
int settings_read(store *s, MDB_txn *txn, struct settings *st);

#define SETTINGS_TEXT_MAX 32

/* Writes setting id's value v into text as `config` shows it: a number (a size, a count, a
 * count of changes, attempts), or a word (an age: "7d"; the compat level: "v1"; a
 * duration: "10s").  Returns 1 for a
 * word, 0 for a number. */
int settings_format(enum setting_id id, uint64_t v, char text[SETTINGS_TEXT_MAX]);

/* The meta key a setting is kept under. */
const char *settings_key(enum setting_id id);

#endif
