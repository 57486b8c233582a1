/* Keys: the master key and API keys, stored hashed, compared in constant time (SPEC §2). */
#ifndef LMTASKS_AUTH_H
#define LMTASKS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "lmtasks/api_error.h"
#include "lmtasks/store.h"
#include "lmtasks/task.h"

#define AUTH_HASH_BYTES 32
#define AUTH_KEY_CHARS 64		/* an API key: 64 lowercase hex characters */
#define AUTH_INDEXES_MAX 64		/* index patterns one key may name */
#define AUTH_HEADER_MAX 1024		/* a longer Authorization header is refused (431) */
#define AUTH_MASTER_MIN 16		/* bytes, as Meilisearch asks of a master key */

/*
 * Meilisearch's actions on the tasks API and /metrics, as bits of a key's set.  `tasks.*`,
 * `metrics.*` and `*` are kept as given (so a key shows what it was made with) and stand
 * for every tasks action, every metrics action and every action, also those a later
 * version adds.  Meilisearch has no action of its own for /batches: they need tasks.get,
 * as there.
 */
enum auth_action {
	AUTH_TASKS_GET = 1u << 0,
	AUTH_TASKS_CANCEL = 1u << 1,
	AUTH_TASKS_DELETE = 1u << 2,
	AUTH_METRICS_GET = 1u << 3,	/* GET /metrics */
	AUTH_TASKS_COMPACT = 1u << 4,	/* POST /tasks/compact (Meilisearch 1.40) */
	AUTH_METRICS_ALL = 1u << 29,	/* `metrics.*` */
	AUTH_TASKS_ALL = 1u << 30,	/* `tasks.*` */
	AUTH_ALL = 1u << 31,		/* `*` */
};
/* The most names auth_actions_list() gives. */
#define AUTH_ACTIONS_MAX 8
/* A key made without --actions, and every key stored before keys had actions: read. */
#define AUTH_ACTIONS_DEFAULT AUTH_TASKS_GET

/* What a request may see: every index, or those matching the patterns (`movies`, `mov*`),
 * and what it may do. */
struct auth_grant {
	unsigned actions;		/* enum auth_action bits */
	int all;
	size_t n;
	struct task_str patterns[AUTH_INDEXES_MAX];	/* borrowed from the read transaction */
};

/* One API key as stored (no secret in it). Strings are borrowed from the transaction. */
struct auth_key {
	unsigned char uid[16];
	int64_t created_at;
	int64_t expires_at;		/* 0: never */
	struct task_str description;	/* ptr NULL: none */
	size_t nindexes;		/* 0 with all set */
	int all;
	struct task_str indexes[AUTH_INDEXES_MAX];
	unsigned actions;		/* enum auth_action bits; 0 is read as the default */
};

/* Initialises libsodium; call once before any other auth function.  Returns 0 or -1. */
int auth_init(void);

/* BLAKE2b-256 of a key, keyed with a fixed context so the hash serves nothing else. */
void auth_hash(const char *key, size_t len, unsigned char out[AUTH_HASH_BYTES]);

/*
 * Reads a master key file: its first line, surrounding white space removed, at least
 * AUTH_MASTER_MIN bytes.  Writes the key's hash to out; returns 0, an errno value, or
 * LMT_EINVAL for a key that is too short.  The key itself is wiped from memory.
 */
int auth_master_load(const char *path, unsigned char out[AUTH_HASH_BYTES]);

/*
 * Decides a request.  master is the master key's hash, or NULL when no key is
 * configured (everything is open).  header is HTTP_AUTHORIZATION (may be NULL).
 * Returns 0 with g filled, or 401/403/431 with err filled as Meilisearch answers.
 */
int auth_check(store *s, MDB_txn *txn, const unsigned char *master, const char *header,
    int64_t now, struct auth_grant *g, struct api_error *err);

/*
 * Returns 0 when the grant carries action (one AUTH_TASKS_* or AUTH_METRICS_* bit), else 403
 * invalid_api_key with err filled as Meilisearch answers a key without the action.
 */
int auth_permits(const struct auth_grant *g, unsigned action, struct api_error *err);

/* Parses a comma list of action names (`tasks.get,tasks.cancel`, `tasks.*`, `*`) into
 * *out; returns 0, or LMT_EINVAL naming nothing (the caller lists auth_action_names()). */
int auth_actions_parse(const char *list, unsigned *out);

/* The action names, as a comma list for messages and --help. */
const char *auth_action_names(void);

/* Fills names with the names of the actions in the set (at most AUTH_ACTIONS_MAX), in a
 * fixed order; returns how many. */
size_t auth_actions_list(unsigned actions, const char *names[AUTH_ACTIONS_MAX]);

/* Returns 1 when the grant lets the index (ptr NULL: the store's own tasks) be seen. */
int auth_allows(const struct auth_grant *g, struct task_str index);

/* Decodes a stored key record, of either version: 1 (lmtasks 0.1.0, no actions: read as
 * AUTH_ACTIONS_DEFAULT) or 2 (actions after the description); 0 or LMT_ECORRUPT. */
int auth_key_decode(const void *buf, size_t len, struct auth_key *k);

/* Returns the encoded size of k (version 2), and writes it to buf when buf is not NULL. */
size_t auth_key_encode(const struct auth_key *k, unsigned char *buf);

/* Returns 1 for `*`, an index uid, or an index uid prefix followed by `*`. */
int auth_pattern_valid(const char *s, size_t len);

/* Formats a 16-byte uid as a UUID string (37 bytes with the NUL). */
void auth_uid_format(const unsigned char uid[16], char out[37]);

#endif
