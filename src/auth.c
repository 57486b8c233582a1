/* Master key and API keys: hashed with BLAKE2b (libsodium), compared in constant time. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "lmtasks/auth.h"
#include "lmtasks/bytes.h"
#include "lmtasks/error.h"

#define KEY_RECORD_V1 1		/* lmtasks 0.1.0: no actions */
#define KEY_RECORD_VERSION 2	/* u32 actions at the end */

/* A fixed key for the hash, so that these hashes serve no other purpose. */
static const unsigned char hash_context[crypto_generichash_KEYBYTES] = "lmtasks api key hash, v1.......";

int
auth_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void
auth_hash(const char *key, size_t len, unsigned char out[AUTH_HASH_BYTES])
{
	crypto_generichash(out, AUTH_HASH_BYTES, (const unsigned char *)key, len, hash_context,
	    sizeof(hash_context));
}

int
auth_master_load(const char *path, unsigned char out[AUTH_HASH_BYTES])
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = buf, *end;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	end = p + strcspn(p, "\r\n");
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	int rc = (size_t)(end - p) < AUTH_MASTER_MIN ? LMT_EINVAL : 0;
	if (rc == 0)
		auth_hash(p, (size_t)(end - p), out);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
auth_pattern_valid(const char *s, size_t len)
{
	if (len == 1 && s[0] == '*')
		return 1;
	if (len > 1 && s[len - 1] == '*')
		len--;
	return task_index_uid_valid(s, len);
}

/* The actions by name, in the order a key lists them. */
static const struct {
	const char *name;
	unsigned bit;
} actions[] = {
	{ "*", AUTH_ALL },
	{ "tasks.*", AUTH_TASKS_ALL },
	{ "tasks.get", AUTH_TASKS_GET },
	{ "tasks.cancel", AUTH_TASKS_CANCEL },
	{ "tasks.delete", AUTH_TASKS_DELETE },
	{ "tasks.compact", AUTH_TASKS_COMPACT },
	{ "metrics.*", AUTH_METRICS_ALL },
	{ "metrics.get", AUTH_METRICS_GET },
};
#define NACTIONS (sizeof(actions) / sizeof(actions[0]))

const char *
auth_action_names(void)
{
	return "`tasks.get`, `tasks.cancel`, `tasks.delete`, `tasks.compact`, `tasks.*`, "
	    "`metrics.get`, `metrics.*`, `*`";
}

int
auth_actions_parse(const char *list, unsigned *out)
{
	unsigned set = 0;

	if (list == NULL || *list == '\0')
		return LMT_EINVAL;
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ","), i;
		for (i = 0; i < NACTIONS; i++) {
			if (strlen(actions[i].name) == n && memcmp(actions[i].name, p, n) == 0)
				break;
		}
		if (i == NACTIONS)
			return LMT_EINVAL;
		set |= actions[i].bit;
		p += n;
		if (*p == ',' && *++p == '\0')
			return LMT_EINVAL;
	}
	*out = set;
	return 0;
}

size_t
auth_actions_list(unsigned set, const char *names[AUTH_ACTIONS_MAX])
{
	size_t n = 0;

	for (size_t i = 0; i < NACTIONS; i++) {
		if (set & actions[i].bit)
			names[n++] = actions[i].name;
	}
	return n;
}

int
auth_permits(const struct auth_grant *g, unsigned action, struct api_error *err)
{
	/* `tasks.*` covers the tasks actions, `metrics.*` the metrics one. */
	unsigned family = action & AUTH_METRICS_GET ? AUTH_METRICS_ALL : AUTH_TASKS_ALL;

	if (g->actions & (AUTH_ALL | family | action))
		return 0;
	return api_error_set(err, 403, "invalid_api_key", "auth", "The provided API key is invalid.");
}

int
auth_allows(const struct auth_grant *g, struct task_str index)
{
	if (g->all)
		return 1;
	for (size_t i = 0; i < g->n; i++) {
		if (task_index_match(g->patterns[i], index))
			return 1;
	}
	return 0;
}

/* The record: u8 version, u8 flags (1: every index), i64 created, i64 expires,
 * 16 bytes uid, u16 index count, (u16 length, bytes) each, u16 length + description
 * (0xffff: none), and since version 2 u32 actions.  Little-endian. */
size_t
auth_key_encode(const struct auth_key *k, unsigned char *buf)
{
	size_t n = 1 + 1 + 8 + 8 + 16 + 2;

	for (size_t i = 0; i < k->nindexes; i++)
		n += 2 + k->indexes[i].len;
	n += 2 + k->description.len + 4;
	if (buf == NULL)
		return n;
	unsigned char *p = buf;
	*p++ = KEY_RECORD_VERSION;
	*p++ = k->all ? 1 : 0;
	bytes_put_u64le(p, (uint64_t)k->created_at);
	bytes_put_u64le(p + 8, (uint64_t)k->expires_at);
	memcpy(p + 16, k->uid, 16);
	p += 32;
	*p++ = (unsigned char)k->nindexes;
	*p++ = (unsigned char)(k->nindexes >> 8);
	for (size_t i = 0; i < k->nindexes; i++) {
		*p++ = (unsigned char)k->indexes[i].len;
		*p++ = (unsigned char)(k->indexes[i].len >> 8);
		memcpy(p, k->indexes[i].ptr, k->indexes[i].len);
		p += k->indexes[i].len;
	}
	size_t dl = k->description.ptr ? k->description.len : 0xffff;
	*p++ = (unsigned char)dl;
	*p++ = (unsigned char)(dl >> 8);
	if (k->description.ptr)
		memcpy(p, k->description.ptr, k->description.len);
	p += k->description.ptr ? k->description.len : 0;
	unsigned a = k->actions ? k->actions : AUTH_ACTIONS_DEFAULT;
	for (int i = 0; i < 4; i++, a >>= 8)
		*p++ = (unsigned char)a;
	return n;
}

int
auth_key_decode(const void *buf, size_t len, struct auth_key *k)
{
	const unsigned char *p = buf, *end = p + len;
	size_t tail;

	if (len < 36 || (p[0] != KEY_RECORD_V1 && p[0] != KEY_RECORD_VERSION))
		return LMT_ECORRUPT;
	tail = p[0] == KEY_RECORD_V1 ? 0 : 4;
	k->actions = AUTH_ACTIONS_DEFAULT;
	k->all = p[1] & 1;
	k->created_at = (int64_t)bytes_get_u64le(p + 2);
	k->expires_at = (int64_t)bytes_get_u64le(p + 10);
	memcpy(k->uid, p + 18, 16);
	p += 34;
	k->nindexes = (size_t)(p[0] | p[1] << 8);
	p += 2;
	if (k->nindexes > AUTH_INDEXES_MAX)
		return LMT_ECORRUPT;
	for (size_t i = 0; i < k->nindexes; i++) {
		if (end - p < 2)
			return LMT_ECORRUPT;
		size_t l = (size_t)(p[0] | p[1] << 8);
		p += 2;
		if ((size_t)(end - p) < l)
			return LMT_ECORRUPT;
		k->indexes[i] = (struct task_str){ (const char *)p, l };
		p += l;
	}
	if (end - p < 2)
		return LMT_ECORRUPT;
	size_t dl = (size_t)(p[0] | p[1] << 8);
	p += 2;
	if (dl == 0xffff) {
		k->description = (struct task_str){ NULL, 0 };
		dl = 0;
	} else {
		k->description = (struct task_str){ (const char *)p, dl };
	}
	if ((size_t)(end - p) != dl + tail)
		return LMT_ECORRUPT;
	if (tail) {
		p += dl;
		k->actions = (unsigned)p[0] | (unsigned)p[1] << 8 | (unsigned)p[2] << 16 |
		    (unsigned)p[3] << 24;
		if (k->actions == 0)
			return LMT_ECORRUPT;
	}
	return 0;
}

void
auth_uid_format(const unsigned char u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
	    u[14], u[15]);
}

static int
invalid_key(struct api_error *err)
{
	return api_error_set(err, 403, "invalid_api_key", "auth", "The provided API key is invalid.");
}

int
auth_check(store *s, MDB_txn *txn, const unsigned char *master, const char *header,
    int64_t now, struct auth_grant *g, struct api_error *err)
{
	unsigned char h[AUTH_HASH_BYTES];
	struct auth_key k;
	const char *key;
	size_t len;

	g->all = 1;
	g->n = 0;
	g->actions = AUTH_ALL;	/* no key configured, or the master key: everything */
	if (master == NULL)
		return 0;
	if (header && strlen(header) > AUTH_HEADER_MAX)
		return api_error_set(err, 431, "bad_request", "invalid_request",
		    "The Authorization header is longer than %d bytes.", AUTH_HEADER_MAX);
	/* The scheme is case-insensitive (RFC 7235); anything but Bearer counts as none. */
	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return api_error_set(err, 401, "missing_authorization_header", "auth",
		    "The Authorization header is missing. It must use the bearer authorization "
		    "method.");
	key = header + 7;
	while (*key == ' ')
		key++;
	len = strlen(key);
	while (len > 0 && key[len - 1] == ' ')
		len--;
	auth_hash(key, len, h);
	/* Hashes of equal length, so the comparison takes the same time whatever the key. */
	if (sodium_memcmp(h, master, AUTH_HASH_BYTES) == 0)
		return 0;
	if (s == NULL || txn == NULL)
		return invalid_key(err);

	const void *rec;
	size_t reclen;
	if (store_key_get(s, txn, h, AUTH_HASH_BYTES, &rec, &reclen) != 0 ||
	    auth_key_decode(rec, reclen, &k) != 0)
		return invalid_key(err);
	if (k.expires_at != 0 && k.expires_at <= now)
		return invalid_key(err);
	g->all = k.all;
	g->actions = k.actions;
	g->n = k.nindexes;
	memcpy(g->patterns, k.indexes, k.nindexes * sizeof(k.indexes[0]));
	return 0;
}
