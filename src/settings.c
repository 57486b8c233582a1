/* Store settings: one table of names, kinds and defaults; values kept in meta. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/retry.h"
#include "lmtasks/settings.h"
#include "lmtasks/task.h"

enum kind { KIND_SIZE, KIND_COUNT, KIND_RETENTION, KIND_COMPAT, KIND_ATTEMPTS, KIND_DURATION };

static const struct {
	const char *name;	/* as `config` and JSON spell it */
	const char *key;	/* in meta */
	enum kind kind;
} table[SETTING_COUNT] = {
	[SETTING_MAX_BYTES] = { "maxBytes", "setting.maxBytes", KIND_SIZE },
	[SETTING_MAX_TASKS] = { "maxTasks", "setting.maxTasks", KIND_COUNT },
	[SETTING_FEED_RETENTION] = { "feedRetention", FEED_RETENTION_KEY, KIND_RETENTION },
	[SETTING_COMPAT] = { "compat", COMPAT_KEY, KIND_COMPAT },
	[SETTING_MAX_ATTEMPTS] = { "maxAttempts", "setting.maxAttempts", KIND_ATTEMPTS },
	[SETTING_RETRY_BACKOFF] = { "retryBackoff", "setting.retryBackoff", KIND_DURATION },
};

#define MIN_MAX_BYTES (UINT64_C(1) << 20)

/* The names settings have in JSON and on the command line. */
const char *
settings_name(enum setting_id id)
{
	return (unsigned)id < SETTING_COUNT ? table[id].name : NULL;
}

/* Kept in meta under a prefix that no other meta entry uses. */
const char *
settings_key(enum setting_id id)
{
	return (unsigned)id < SETTING_COUNT ? table[id].key : NULL;
}

/* For the message that lists what `config` accepts. */
const char *
settings_names(void)
{
	return "maxBytes, maxTasks, feedRetention, compat, maxAttempts, retryBackoff";
}

/* config KEY is looked up in the one table. */
int
settings_find(const char *name, enum setting_id *id)
{
	for (unsigned i = 0; i < SETTING_COUNT; i++) {
		if (strcmp(name, table[i].name) == 0) {
			*id = (enum setting_id)i;
			return 0;
		}
	}
	return LMT_EINVAL;
}

int
settings_parse_size(const char *text, uint64_t *v)
{
	static const char suffixes[] = "KMGT";
	char *end;
	unsigned long long n;

	if (*text < '0' || *text > '9')
		return LMT_EINVAL;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno == ERANGE)
		return LMT_EINVAL;
	if (*end) {
		/* A space masked to NUL would find the terminator: a suffix must be a letter. */
		const char *p = (*end & ~0x20) ? strchr(suffixes, *end & ~0x20) : NULL;
		if (p == NULL ||
		    (end[1] != '\0' && strcasecmp(end + 1, "iB") != 0 && strcasecmp(end + 1, "B") != 0))
			return LMT_EINVAL;
		for (long i = 0; i <= p - suffixes; i++) {
			if (n > UINT64_MAX / 1024)
				return LMT_EINVAL;
			n *= 1024;
		}
	}
	*v = n;
	return 0;
}

/* Values checked before anything is written. */
int
settings_parse(enum setting_id id, const char *text, uint64_t *v, const char **why)
{
	char *end;

	if ((unsigned)id >= SETTING_COUNT)
		return LMT_EINVAL;
	if (table[id].kind == KIND_COMPAT) {
		*why = "a compatibility level: v0.25 (the default) or v1";
		return compat_parse(text, v);
	}
	if (table[id].kind == KIND_SIZE) {
		*why = "a size of at least 1MiB, in bytes or with K, M, G or T (KiB, MiB, ...), "
		    "like 512MiB";
		if (settings_parse_size(text, v) != 0 || *v < MIN_MAX_BYTES)
			return LMT_EINVAL;
		return 0;
	}
	if (table[id].kind == KIND_RETENTION) {
		struct feed_retention r;
		*why = "a number of changes (at least 1), like 100000, or an age in days, hours, "
		    "minutes or seconds, like 7d, 12h, 30m, 90s";
		if (feed_retention_parse(text, &r) != 0)
			return LMT_EINVAL;
		*v = feed_retention_encode(&r);
		return 0;
	}
	if (table[id].kind == KIND_DURATION) {
		uint32_t ms;
		*why = "a duration of up to a day: a number with ms, s, m, h or d (seconds when "
		    "none), like 10s, 1.5m or 500ms";
		if (retry_parse_duration(text, &ms) != 0)
			return LMT_EINVAL;
		*v = ms;
		return 0;
	}
	if (table[id].kind == KIND_ATTEMPTS)
		*why = "a number of attempts from 1 to 1000, or 0 for no retries";
	else
		*why = "a whole number of tasks, like 1000000, or 0 to turn the limit off";
	if (*text < '0' || *text > '9' || strlen(text) > 19)
		return LMT_EINVAL;
	*v = strtoull(text, &end, 10);
	if (table[id].kind == KIND_ATTEMPTS && *v > TASK_ATTEMPTS_MAX)
		return LMT_EINVAL;
	return *end ? LMT_EINVAL : 0;
}

/* A default that fits the disk the store is on. */
uint64_t
settings_default_max_bytes(const char *path)
{
	char data[PATH_MAX];
	struct statvfs vfs;
	struct stat st;
	uint64_t have = 0, free_bytes = 0;

	snprintf(data, sizeof(data), "%s/data.mdb", path ? path : ".");
	if (stat(data, &st) == 0)
		have = (uint64_t)st.st_blocks * 512;
	if (path && statvfs(path, &vfs) == 0)
		free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	uint64_t v = (have + free_bytes) / 2;
	return v < MIN_MAX_BYTES ? MIN_MAX_BYTES : v;
}

/* Defaults fill what an older store does not keep. */
int
settings_read(store *s, MDB_txn *txn, struct settings *st)
{
	int rc;

	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < SETTING_COUNT; i++) {
		rc = store_meta_get(s, txn, table[i].key, &st->v[i]);
		if (rc == 0)
			st->stored |= 1u << i;
		else if (rc != MDB_NOTFOUND)
			return rc;
	}
	if (!(st->stored & 1u << SETTING_MAX_BYTES))
		st->v[SETTING_MAX_BYTES] = settings_default_max_bytes(store_path(s));
	if (!(st->stored & 1u << SETTING_MAX_TASKS))
		st->v[SETTING_MAX_TASKS] = SETTINGS_MAX_TASKS_DEFAULT;
	if (!(st->stored & 1u << SETTING_FEED_RETENTION))
		st->v[SETTING_FEED_RETENTION] = FEED_RETENTION_DEFAULT;
	if (!(st->stored & 1u << SETTING_COMPAT))
		st->v[SETTING_COMPAT] = COMPAT_V025;
	if (!(st->stored & 1u << SETTING_RETRY_BACKOFF))
		st->v[SETTING_RETRY_BACKOFF] = RETRY_BACKOFF_DEFAULT_MS;
	/* maxAttempts' default is 0, no policy: what memset left. */
	if (st->v[SETTING_MAX_ATTEMPTS] > TASK_ATTEMPTS_MAX ||
	    st->v[SETTING_RETRY_BACKOFF] == 0 || st->v[SETTING_RETRY_BACKOFF] > RETRY_BACKOFF_MAX_MS)
		return LMT_ECORRUPT;
	if (compat_name(st->v[SETTING_COMPAT]) == NULL)
		return LMT_ECORRUPT;
	return 0;
}

/* The one place that knows how each kind of setting reads: `config` and `stats` show it. */
int
settings_format(enum setting_id id, uint64_t v, char text[SETTINGS_TEXT_MAX])
{
	struct feed_retention r;

	switch (table[id].kind) {
	case KIND_RETENTION:
		feed_retention_decode(v, &r);
		feed_retention_format(&r, text);
		return r.count == 0;
	case KIND_COMPAT:
		snprintf(text, SETTINGS_TEXT_MAX, "%s", compat_name(v));
		return 1;
	case KIND_DURATION:
		retry_format_duration((uint32_t)v, text);
		return 1;
	default:
		snprintf(text, SETTINGS_TEXT_MAX, "%" PRIu64, v);
		return 0;
	}
}
