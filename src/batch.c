/* NDJSON lines to tasks, with their strings in a few large chunks rather than a malloc each. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lmtasks/batch.h"
#include "lmtasks/clock.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/retry.h"
#include "lmtasks/timefmt.h"

#define CHUNK (1u << 20)

struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
};

struct batch {
	struct task *tasks;
	size_t n, cap;
	struct chunk *chunks;
};

static char *
keep(struct batch *b, const char *s, size_t len)
{
	if (b->chunks == NULL || b->chunks->cap - b->chunks->used < len) {
		size_t cap = len > CHUNK ? len : CHUNK;
		struct chunk *c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->next = b->chunks;
		c->used = 0;
		c->cap = cap;
		b->chunks = c;
	}
	char *p = b->chunks->data + b->chunks->used;
	memcpy(p, s, len);
	b->chunks->used += len;
	return p;
}

/* A line's fields as read, before its strings are kept in the batch's chunks. */
struct line {
	struct task_str index_uid, type, details;
	struct task_str metadata;	/* ptr NULL: none */
	int32_t priority;
	int64_t not_before;
	uint16_t max_attempts;
	uint32_t backoff_ms;
	int64_t now;	/* what a delay counts from */
};

static void
line_init(struct line *l, int64_t now)
{
	memset(l, 0, sizeof(*l));
	l->details = (struct task_str){ "{}", 2 };
	l->now = now;
}

/* l into t, its strings copied into b (l may point into a json-c tree); 0, or ENOMEM. */
static int
line_task(const struct line *l, struct batch *b, struct task *t)
{
	char *ip = keep(b, l->index_uid.ptr, l->index_uid.len);
	char *tp = keep(b, l->type.ptr, l->type.len);
	char *dp = keep(b, l->details.ptr, l->details.len);

	if (!ip || !tp || !dp)
		return ENOMEM;
	task_init(t, ip, l->index_uid.len, tp, l->type.len, dp, l->details.len);
	t->priority = l->priority;
	t->not_before = l->not_before;
	t->max_attempts = l->max_attempts;
	t->backoff_ms = l->backoff_ms;
	if (l->metadata.ptr) {
		size_t ml = l->metadata.len;
		/* A chunk never starts empty: an empty string still points somewhere. */
		char *mp = ml ? keep(b, l->metadata.ptr, ml) : (char *)"";
		if (mp == NULL)
			return ENOMEM;
		t->custom_metadata = (struct task_str){ mp, ml };
	}
	return 0;
}

#define WHY_INDEX_UID "indexUid must be a string of 1 to 400 characters among A-Z a-z 0-9 - and _"
#define WHY_TYPE "type must be a camelCase word of up to 64 letters and digits"
#define WHY_DETAILS "details must be a JSON object"
#define WHY_METADATA "customMetadata must be a string of up to 65536 bytes of UTF-8"
#define WHY_PRIORITY "priority must be a whole number from -1000000 to 1000000 (higher is " \
	"claimed first; 0 the default)"
#define WHY_DELAY "delay must be a number of seconds or a duration like 30s, 5m, 2h or 1d, " \
	"up to 3650 days"
#define WHY_NOT_BEFORE "notBefore must be a time like 2026-01-02T03:04:05Z (RFC 3339) or a " \
	"date, after 1970"
#define WHY_ATTEMPTS "maxAttempts must be a number of attempts from 1 to 1000"
#define WHY_BACKOFF "backoff must be a duration from 1ms to 86400s, like \"30s\", \"1.5m\" or " \
	"\"500ms\", or a number of seconds"

_Static_assert(TASK_PRIORITY_MIN == -1000000 && TASK_PRIORITY_MAX == 1000000 &&
    TASK_DELAY_MAX_DAYS == 3650 && TASK_METADATA_MAX == 65536 && TASK_ATTEMPTS_MAX == 1000 &&
    RETRY_BACKOFF_MAX_MS == 86400000, "the messages above say the bounds");

/* notBefore's text as a time a record can hold; 0, or LMT_EINVAL. */
static int
not_before_parse(const char *s, size_t len, int64_t *us)
{
	int date_only;

	if (timefmt_parse(s, len, us, &date_only) != 0 || *us <= 0 || *us > TASK_TIME_MAX)
		return LMT_EINVAL;
	return 0;
}

/*
 * The json-c path's checks, one a key: each takes the key's value (NULL when the line has
 * none; never JSON null for an optional key) and stores it in l.  0, or LMT_EINVAL.
 */

static int
index_uid_json(json_object *v, struct line *l)
{
	if (!json_object_is_type(v, json_type_string))
		return LMT_EINVAL;
	l->index_uid = (struct task_str){ json_object_get_string(v),
	    (size_t)json_object_get_string_len(v) };
	return task_index_uid_valid(l->index_uid.ptr, l->index_uid.len) ? 0 : LMT_EINVAL;
}

static int
type_json(json_object *v, struct line *l)
{
	if (!json_object_is_type(v, json_type_string))
		return LMT_EINVAL;
	l->type = (struct task_str){ json_object_get_string(v), (size_t)json_object_get_string_len(v) };
	return task_type_valid(l->type.ptr, l->type.len) ? 0 : LMT_EINVAL;
}

static int
details_json(json_object *v, struct line *l)
{
	if (!json_object_is_type(v, json_type_object))
		return LMT_EINVAL;
	l->details.ptr = details_compact(v, &l->details.len);
	return 0;
}

static int
metadata_json(json_object *v, struct line *l)
{
	if (!json_object_is_type(v, json_type_string))
		return LMT_EINVAL;
	l->metadata = (struct task_str){ json_object_get_string(v),
	    (size_t)json_object_get_string_len(v) };
	if (l->metadata.len > TASK_METADATA_MAX || !task_utf8_valid(l->metadata.ptr, l->metadata.len))
		return LMT_EINVAL;
	return 0;
}

static int
priority_json(json_object *v, struct line *l)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int) ||
	    (n = json_object_get_int64(v)) < TASK_PRIORITY_MIN || n > TASK_PRIORITY_MAX)
		return LMT_EINVAL;
	l->priority = (int32_t)n;
	return 0;
}

/* A JSON number of seconds, or a duration string. */
static int
delay_json(json_object *v, struct line *l)
{
	int64_t us;

	if (json_object_is_type(v, json_type_string)) {
		if (timefmt_parse_delay(json_object_get_string(v), (size_t)json_object_get_string_len(v),
		    TASK_DELAY_MAX, &us) != 0)
			return LMT_EINVAL;
	} else if (json_object_is_type(v, json_type_int)) {
		int64_t sec = json_object_get_int64(v);
		if (sec < 0 || sec > TASK_DELAY_MAX / 1000000)
			return LMT_EINVAL;
		us = sec * 1000000;
	} else if (json_object_is_type(v, json_type_double)) {
		double sec = json_object_get_double(v);
		if (!(sec >= 0) || sec * 1e6 > (double)TASK_DELAY_MAX)
			return LMT_EINVAL;
		us = (int64_t)(sec * 1e6 + 0.5);
	} else {
		return LMT_EINVAL;
	}
	l->not_before = us ? l->now + us : 0;
	return 0;
}

static int
not_before_json(json_object *v, struct line *l)
{
	if (!json_object_is_type(v, json_type_string))
		return LMT_EINVAL;
	return not_before_parse(json_object_get_string(v), (size_t)json_object_get_string_len(v),
	    &l->not_before);
}

static int
attempts_json(json_object *v, struct line *l)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int) ||
	    (n = json_object_get_int64(v)) < 1 || n > TASK_ATTEMPTS_MAX)
		return LMT_EINVAL;
	l->max_attempts = (uint16_t)n;
	return 0;
}

/* A duration as the command line writes it ("30s"), or a number of seconds. */
static int
backoff_json(json_object *v, struct line *l)
{
	if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return LMT_EINVAL;
	return retry_parse_duration(json_object_get_string(v), &l->backoff_ms);
}

/* A JSON string at p (validated already) that has no escape: its content, or 0. */
static int
plain_string(const char *p, const char *end, struct task_str *out)
{
	const char *q;

	if (p >= end || *p != '"')
		return 0;
	for (q = p + 1; q < end && *q != '"'; q++) {
		if (*q == '\\')
			return 0;
	}
	if (q >= end)
		return 0;
	out->ptr = p + 1;
	out->len = (size_t)(q - p - 1);
	return 1;
}

static const char *
skip_spaces(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}
/*
 * Details json-c would print byte for byte as they are: an object with no white
 * space or escape, no nested object, and no key twice.  Returns 1 for such text.
 */
static int
already_compact(const char *p, size_t len)
{
	struct task_str keys[32];
	size_t nkeys = 0;
	int depth = 0, in_string = 0, key_next = 1;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (in_string) {
			if (c == '\\')
				return 0;
			if (c == '"')
				in_string = 0;
			continue;
		}
		switch (c) {
		case ' ': case '\t': case '\r': case '\n':
			return 0;
		case '{':
			if (++depth > 1)
				return 0;
			key_next = 1;
			break;
		case '}':
			depth--;
			break;
		case '[':
			depth++;
			break;
		case ']':
			depth--;
			break;
		case ',':
			key_next = depth == 1;
			break;
		case '"':
			in_string = 1;
			if (key_next && depth == 1) {
				struct task_str k;
				if (!plain_string(p + i, p + len, &k) || nkeys == 32)
					return 0;
				for (size_t j = 0; j < nkeys; j++) {
					if (keys[j].len == k.len && memcmp(keys[j].ptr, k.ptr, k.len) == 0)
						return 0;
				}
				keys[nkeys++] = k;
			}
			key_next = 0;
			break;
		default:
			break;
		}
	}
	return 1;
}

/* A JSON integer token (validated already) from TASK_PRIORITY_MIN to TASK_PRIORITY_MAX;
 * 0, or 1 for anything else. */
static int
fast_priority(const char *v, const char *ve, int32_t *out)
{
	int neg = v < ve && *v == '-';
	int64_t n = 0;
	const char *p = v + neg;

	if (p == ve || ve - p > 7)
		return 1;
	for (; p < ve; p++) {
		if (*p < '0' || *p > '9')
			return 1;
		n = n * 10 + (*p - '0');
	}
	n = neg ? -n : n;
	if (n < TASK_PRIORITY_MIN || n > TASK_PRIORITY_MAX)
		return 1;
	*out = (int32_t)n;
	return 0;
}

/*
 * The fast path's checks, one a key: each takes the value's text, v to ve (strict JSON
 * already), and stores it in l.  0, or 1 when the value is not of the plain form the check
 * knows (the general parser then decides).
 */

static int
index_uid_plain(const char *v, const char *ve, struct line *l)
{
	return !plain_string(v, ve, &l->index_uid) ||
	    !task_index_uid_valid(l->index_uid.ptr, l->index_uid.len);
}

static int
type_plain(const char *v, const char *ve, struct line *l)
{
	return !plain_string(v, ve, &l->type) || !task_type_valid(l->type.ptr, l->type.len);
}

/* An object json-c would print as it is, or null (none). */
static int
details_plain(const char *v, const char *ve, struct line *l)
{
	size_t len = (size_t)(ve - v);

	if (len == 4 && memcmp(v, "null", 4) == 0)
		return 0;
	if (*v != '{' || !already_compact(v, len) || !task_utf8_valid(v, len))
		return 1;
	l->details = (struct task_str){ v, len };
	return 0;
}

static int
priority_plain(const char *v, const char *ve, struct line *l)
{
	return fast_priority(v, ve, &l->priority);
}

/* 90, 1.5, or a duration string without escapes ("5m"). */
static int
delay_plain(const char *v, const char *ve, struct line *l)
{
	struct task_str s = { v, (size_t)(ve - v) };
	int64_t us;

	if (*v == '"' && !plain_string(v, ve, &s))
		return 1;
	if (timefmt_parse_delay(s.ptr, s.len, TASK_DELAY_MAX, &us) != 0)
		return 1;
	l->not_before = us ? l->now + us : 0;
	return 0;
}

static int
not_before_plain(const char *v, const char *ve, struct line *l)
{
	struct task_str s;

	return !plain_string(v, ve, &s) || not_before_parse(s.ptr, s.len, &l->not_before) != 0;
}

/*
 * The keys of a line, in the order the json-c path checks them (so that of two bad keys
 * the same one is always named), each with its checks and what a bad value is told.  A key
 * with no plain check sends its line to the json-c path.
 */
enum { KEY_INDEX_UID, KEY_TYPE, KEY_DETAILS, KEY_METADATA, KEY_PRIORITY, KEY_DELAY,
	KEY_NOT_BEFORE, KEY_ATTEMPTS, KEY_BACKOFF, NKEYS };

static const struct line_key {
	const char *name;
	size_t len;
	int required;	/* absent or null is refused, not a default */
	int (*json)(json_object *v, struct line *l);
	int (*plain)(const char *v, const char *ve, struct line *l);
	const char *why;
} line_keys[NKEYS] = {
#define KEY(name) name, sizeof(name) - 1
	[KEY_INDEX_UID] = { KEY("indexUid"), 1, index_uid_json, index_uid_plain, WHY_INDEX_UID },
	[KEY_TYPE] = { KEY("type"), 1, type_json, type_plain, WHY_TYPE },
	[KEY_DETAILS] = { KEY("details"), 0, details_json, details_plain, WHY_DETAILS },
	[KEY_METADATA] = { KEY("customMetadata"), 0, metadata_json, NULL, WHY_METADATA },
	[KEY_PRIORITY] = { KEY("priority"), 0, priority_json, priority_plain, WHY_PRIORITY },
	[KEY_DELAY] = { KEY("delay"), 0, delay_json, delay_plain, WHY_DELAY },
	[KEY_NOT_BEFORE] = { KEY("notBefore"), 0, not_before_json, not_before_plain, WHY_NOT_BEFORE },
	[KEY_ATTEMPTS] = { KEY("maxAttempts"), 0, attempts_json, NULL, WHY_ATTEMPTS },
	[KEY_BACKOFF] = { KEY("backoff"), 0, backoff_json, NULL, WHY_BACKOFF },
#undef KEY
};

#define KEY_BIT(i) (1u << (i))

/* The key named s (len bytes) as its place in line_keys, or NKEYS. */
static size_t
key_find(const char *s, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (line_keys[i].len == len && memcmp(line_keys[i].name, s, len) == 0)
			return i;
	}
	return NKEYS;
}

/* obj's keys into l, checked in the table's order; 0, or LMT_EINVAL with why. */
static int
json_fields(json_object *obj, struct line *l, char *why, size_t whylen)
{
	json_object *val[NKEYS] = { NULL };

	json_object_object_foreach(obj, key, v) {
		size_t i = key_find(key, strlen(key));
		if (i == NKEYS) {
			snprintf(why, whylen, "unknown key `%.64s` (expected indexUid, type, details, "
			    "customMetadata, priority, delay, notBefore, maxAttempts, backoff)", key);
			return LMT_EINVAL;
		}
		val[i] = v;
	}
	for (size_t i = 0; i < NKEYS; i++) {
		const struct line_key *k = &line_keys[i];
		if (!k->required && json_object_is_type(val[i], json_type_null))
			continue;	/* absent, or null: the default */
		if (i == KEY_DELAY && !json_object_is_type(val[KEY_NOT_BEFORE], json_type_null)) {
			snprintf(why, whylen, "delay and notBefore do not go together");
			return LMT_EINVAL;
		}
		if (k->json(val[i], l) != 0) {
			snprintf(why, whylen, "%s", k->why);
			return LMT_EINVAL;
		}
	}
	return 0;
}

/* One line into t, a delay counted from now; 0, LMT_EINVAL with why, or ENOMEM. */
static int
parse_line(json_tokener *tok, const char *line, size_t len, int64_t now, struct batch *b,
    struct task *t, char *why, size_t whylen)
{
	json_object *obj;
	struct line l;
	const char *err;
	int rc;

	if (details_parse(tok, line, len, &obj, &err) != 0) {
		snprintf(why, whylen, "not valid JSON: %s", err);
		return LMT_EINVAL;
	}
	line_init(&l, now);
	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(why, whylen, "not a JSON object");
		rc = LMT_EINVAL;
	} else if ((rc = json_fields(obj, &l, why, whylen)) == 0 &&
	    (rc = line_task(&l, b, t)) != 0) {
		snprintf(why, whylen, "out of memory");
	}
	json_object_put(obj);
	return rc;
}

/* The end of the JSON value at v, before the white space after it; NULL when not JSON. */
static const char *
value_end(const char *v, const char *end)
{
	const char *ve = details_strict_end(v, (size_t)(end - v));

	while (ve != NULL && ve > v &&
	    (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r' || ve[-1] == '\n'))
		ve--;
	return ve;
}

/*
 * The common line, {"indexUid":"…","type":"…","details":{…}} in plain compact JSON (and
 * the other keys that have a plain check, where they are plain), without building a json-c
 * tree.  Returns 0 with t filled, 1 when the line is not of that plain form (the general
 * parser then decides, and words any error), or ENOMEM.
 */
static int
fast_line(const char *line, size_t len, int64_t now, struct batch *b, struct task *t)
{
	const char *p, *end = line + len;
	struct line l;
	unsigned seen = 0;

	if (details_strict_end(line, len) != end)
		return 1;
	line_init(&l, now);
	p = skip_spaces(line, end);
	if (p >= end || *p++ != '{')
		return 1;
	for (;;) {
		struct task_str key;
		const char *v, *ve;
		p = skip_spaces(p, end);
		if (!plain_string(p, end, &key))
			return 1;
		p = skip_spaces(key.ptr + key.len + 1, end);
		if (p >= end || *p++ != ':')
			return 1;
		v = skip_spaces(p, end);
		if ((ve = value_end(v, end)) == NULL)
			return 1;
		size_t i = key_find(key.ptr, key.len);
		if (i == NKEYS || (seen & KEY_BIT(i)) || line_keys[i].plain == NULL ||
		    line_keys[i].plain(v, ve, &l) != 0)
			return 1;
		seen |= KEY_BIT(i);
		p = skip_spaces(ve, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}' && skip_spaces(p + 1, end) == end)
			break;
		return 1;
	}
	/* A key missing, or a delay and a time together: the general parser says why not. */
	if ((seen & (KEY_BIT(KEY_INDEX_UID) | KEY_BIT(KEY_TYPE))) !=
	    (KEY_BIT(KEY_INDEX_UID) | KEY_BIT(KEY_TYPE)) ||
	    ((seen & KEY_BIT(KEY_DELAY)) && (seen & KEY_BIT(KEY_NOT_BEFORE))))
		return 1;
	return line_task(&l, b, t);
}

int
batch_parse(const char *text, size_t len, struct batch **out, size_t *line, char *why,
    size_t whylen)
{
	struct batch *b = calloc(1, sizeof(*b));
	/* The strict check bounds a whole line's nesting; json-c must not stop short of it. */
	json_tokener *tok = json_tokener_new_ex(DETAILS_DEPTH_MAX + 1);
	int64_t now = clock_now();	/* what every line's delay counts from */
	int rc = 0;

	*line = 0;
	if (b == NULL || tok == NULL) {
		rc = ENOMEM;
		goto fail;
	}
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)((nl ? nl : end) - p);
		const char *q = p;
		++*line;
		while (q < p + ll && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		if (q < p + ll) {
			if (b->n == b->cap) {
				size_t cap = b->cap ? b->cap * 2 : 1024;
				struct task *nt = realloc(b->tasks, cap * sizeof(*nt));
				if (nt == NULL) {
					rc = ENOMEM;
					goto fail;
				}
				b->tasks = nt;
				b->cap = cap;
			}
			rc = fast_line(p, ll, now, b, &b->tasks[b->n]);
			if (rc == 1)
				rc = parse_line(tok, p, ll, now, b, &b->tasks[b->n], why, whylen);
			if (rc != 0)
				goto fail;
			b->n++;
		}
		p += ll + 1;
	}
	json_tokener_free(tok);
	*out = b;
	return 0;
fail:
	json_tokener_free(tok);
	batch_free(b);
	return rc;
}

struct task *
batch_tasks(struct batch *b)
{
	return b->tasks;
}

size_t
batch_count(const struct batch *b)
{
	return b->n;
}

void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	while (b->chunks) {
		struct chunk *next = b->chunks->next;
		free(b->chunks);
		b->chunks = next;
	}
	free(b->tasks);
	free(b);
}
