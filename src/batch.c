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

#define WHY_PRIORITY "priority must be a whole number from -1000000 to 1000000 (higher is " \
	"claimed first; 0 the default)"
#define WHY_DELAY "delay must be a number of seconds or a duration like 30s, 5m, 2h or 1d, " \
	"up to 3650 days"
#define WHY_NOT_BEFORE "notBefore must be a time like 2026-01-02T03:04:05Z (RFC 3339) or a " \
	"date, after 1970"

_Static_assert(TASK_PRIORITY_MIN == -1000000 && TASK_PRIORITY_MAX == 1000000 &&
    TASK_DELAY_MAX_DAYS == 3650, "the messages above say the bounds");

/* notBefore's text as a time a record can hold; 0, or LMT_EINVAL. */
static int
not_before_parse(const char *s, size_t len, int64_t *us)
{
	int date_only;

	if (timefmt_parse(s, len, us, &date_only) != 0 || *us <= 0 || *us > TASK_TIME_MAX)
		return LMT_EINVAL;
	return 0;
}

/* A line's delay (a JSON number of seconds, or a duration string) in µs; 0, or LMT_EINVAL. */
static int
delay_json(json_object *v, int64_t *us)
{
	if (json_object_is_type(v, json_type_string))
		return timefmt_parse_delay(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v), TASK_DELAY_MAX, us);
	if (json_object_is_type(v, json_type_int)) {
		int64_t sec = json_object_get_int64(v);
		if (sec < 0 || sec > TASK_DELAY_MAX / 1000000)
			return LMT_EINVAL;
		*us = sec * 1000000;
		return 0;
	}
	if (json_object_is_type(v, json_type_double)) {
		double sec = json_object_get_double(v);
		if (!(sec >= 0) || sec * 1e6 > (double)TASK_DELAY_MAX)
			return LMT_EINVAL;
		*us = (int64_t)(sec * 1e6 + 0.5);
		return 0;
	}
	return LMT_EINVAL;
}

/* One line into t, a delay counted from now; 0, LMT_EINVAL with why, or ENOMEM. */
static int
parse_line(json_tokener *tok, const char *line, size_t len, int64_t now, struct batch *b,
    struct task *t, char *why, size_t whylen)
{
	json_object *obj, *idx = NULL, *type = NULL, *det = NULL, *meta = NULL;
	json_object *prio = NULL, *delay = NULL, *nbf = NULL, *attempts = NULL, *backoff = NULL;
	int64_t priority = 0, not_before = 0, us, max_attempts = 0;
	uint32_t backoff_ms = 0;
	const char *err, *ds = "{}";
	size_t dl = 2;
	int rc = LMT_EINVAL;

	if (details_parse(tok, line, len, &obj, &err) != 0) {
		snprintf(why, whylen, "not valid JSON: %s", err);
		return LMT_EINVAL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(why, whylen, "not a JSON object");
		goto out;
	}
	json_object_object_foreach(obj, key, val) {
		if (strcmp(key, "indexUid") == 0)
			idx = val;
		else if (strcmp(key, "type") == 0)
			type = val;
		else if (strcmp(key, "details") == 0)
			det = val;
		else if (strcmp(key, "customMetadata") == 0)
			meta = val;
		else if (strcmp(key, "priority") == 0)
			prio = val;
		else if (strcmp(key, "delay") == 0)
			delay = val;
		else if (strcmp(key, "notBefore") == 0)
			nbf = val;
		else if (strcmp(key, "maxAttempts") == 0)
			attempts = val;
		else if (strcmp(key, "backoff") == 0)
			backoff = val;
		else {
			snprintf(why, whylen, "unknown key `%.64s` (expected indexUid, type, details, "
			    "customMetadata, priority, delay, notBefore, maxAttempts, backoff)", key);
			goto out;
		}
	}
	if (!json_object_is_type(idx, json_type_string) ||
	    !task_index_uid_valid(json_object_get_string(idx), (size_t)json_object_get_string_len(idx))) {
		snprintf(why, whylen, "indexUid must be a string of 1 to 400 characters among "
		    "A-Z a-z 0-9 - and _");
		goto out;
	}
	if (!json_object_is_type(type, json_type_string) ||
	    !task_type_valid(json_object_get_string(type), (size_t)json_object_get_string_len(type))) {
		snprintf(why, whylen, "type must be a camelCase word of up to 64 letters and digits");
		goto out;
	}
	if (det && !json_object_is_type(det, json_type_null)) {
		if (!json_object_is_type(det, json_type_object)) {
			snprintf(why, whylen, "details must be a JSON object");
			goto out;
		}
		ds = details_compact(det, &dl);
	}
	if (meta && !json_object_is_type(meta, json_type_null) &&
	    (!json_object_is_type(meta, json_type_string) ||
	    (size_t)json_object_get_string_len(meta) > TASK_METADATA_MAX ||
	    !task_utf8_valid(json_object_get_string(meta), (size_t)json_object_get_string_len(meta)))) {
		snprintf(why, whylen, "customMetadata must be a string of up to %u bytes of UTF-8",
		    TASK_METADATA_MAX);
		goto out;
	}
	if (prio && !json_object_is_type(prio, json_type_null)) {
		if (!json_object_is_type(prio, json_type_int) ||
		    (priority = json_object_get_int64(prio)) < TASK_PRIORITY_MIN ||
		    priority > TASK_PRIORITY_MAX) {
			snprintf(why, whylen, WHY_PRIORITY);
			goto out;
		}
	}
	if (delay && json_object_is_type(delay, json_type_null))
		delay = NULL;
	if (nbf && json_object_is_type(nbf, json_type_null))
		nbf = NULL;
	if (delay && nbf) {
		snprintf(why, whylen, "delay and notBefore do not go together");
		goto out;
	}
	if (delay) {
		if (delay_json(delay, &us) != 0) {
			snprintf(why, whylen, WHY_DELAY);
			goto out;
		}
		not_before = us ? now + us : 0;
	}
	if (nbf && (!json_object_is_type(nbf, json_type_string) ||
	    not_before_parse(json_object_get_string(nbf), (size_t)json_object_get_string_len(nbf),
	    &not_before) != 0)) {
		snprintf(why, whylen, WHY_NOT_BEFORE);
		goto out;
	}
	if (attempts && !json_object_is_type(attempts, json_type_null) &&
	    (!json_object_is_type(attempts, json_type_int) ||
	    (max_attempts = json_object_get_int64(attempts)) < 1 || max_attempts > TASK_ATTEMPTS_MAX)) {
		snprintf(why, whylen, "maxAttempts must be a number of attempts from 1 to %d",
		    TASK_ATTEMPTS_MAX);
		goto out;
	}
	/* A duration as the command line writes it ("30s"), or a number of seconds. */
	if (backoff && !json_object_is_type(backoff, json_type_null) &&
	    (!(json_object_is_type(backoff, json_type_string) ||
	    json_object_is_type(backoff, json_type_int) ||
	    json_object_is_type(backoff, json_type_double)) ||
	    retry_parse_duration(json_object_get_string(backoff), &backoff_ms) != 0)) {
		snprintf(why, whylen, "backoff must be a duration from 1ms to %us, like \"30s\", "
		    "\"1.5m\" or \"500ms\", or a number of seconds", RETRY_BACKOFF_MAX_MS / 1000);
		goto out;
	}
	size_t il = (size_t)json_object_get_string_len(idx), tl = (size_t)json_object_get_string_len(type);
	char *ip = keep(b, json_object_get_string(idx), il);
	char *tp = keep(b, json_object_get_string(type), tl);
	char *dp = keep(b, ds, dl);
	if (!ip || !tp || !dp) {
		snprintf(why, whylen, "out of memory");
		rc = ENOMEM;
		goto out;
	}
	task_init(t, ip, il, tp, tl, dp, dl);
	t->priority = (int32_t)priority;
	t->not_before = not_before;
	t->max_attempts = (uint16_t)max_attempts;
	t->backoff_ms = backoff_ms;
	if (meta && json_object_is_type(meta, json_type_string)) {
		size_t ml = (size_t)json_object_get_string_len(meta);
		/* A chunk never starts empty: an empty string still points somewhere. */
		char *mp = ml ? keep(b, json_object_get_string(meta), ml) : (char *)"";
		if (mp == NULL) {
			snprintf(why, whylen, "out of memory");
			rc = ENOMEM;
			goto out;
		}
		t->custom_metadata = (struct task_str){ mp, ml };
	}
	rc = 0;
out:
	json_object_put(obj);
	return rc;
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
 * The common line, {"indexUid":"…","type":"…","details":{…}} in plain compact JSON (and
 * "priority", "delay", "notBefore" where they are plain), without building a json-c tree.
 * Returns 0 with t filled, 1 when the line is not of that plain form (the general parser
 * then decides, and words any error), or ENOMEM.
 */
static int
fast_line(const char *line, size_t len, int64_t now, struct batch *b, struct task *t)
{
	const char *p = line, *end = line + len;
	struct task_str idx = { NULL, 0 }, type = { NULL, 0 }, det = { "{}", 2 }, str;
	int32_t priority = 0;
	int64_t not_before = 0, us;
	int seen = 0;

	if (details_strict_end(line, len) != end)
		return 1;
	p = skip_spaces(p, end);
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
		if ((ve = details_strict_end(v, (size_t)(end - v))) == NULL)
			return 1;
		/* details_strict_end passed the white space after the value: step back. */
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r' || ve[-1] == '\n'))
			ve--;
		int which = key.len == 8 && memcmp(key.ptr, "indexUid", 8) == 0 ? 1 :
		    key.len == 4 && memcmp(key.ptr, "type", 4) == 0 ? 2 :
		    key.len == 7 && memcmp(key.ptr, "details", 7) == 0 ? 4 :
		    key.len == 8 && memcmp(key.ptr, "priority", 8) == 0 ? 8 :
		    key.len == 5 && memcmp(key.ptr, "delay", 5) == 0 ? 16 :
		    key.len == 9 && memcmp(key.ptr, "notBefore", 9) == 0 ? 32 : 0;
		if (which == 0 || (seen & which))
			return 1;
		/* A delay and a time together: the general parser says why not. */
		if ((which | seen) & 16 && (which | seen) & 32)
			return 1;
		if (which == 8 && fast_priority(v, ve, &priority) != 0)
			return 1;
		if (which == 16) {
			str = (struct task_str){ v, (size_t)(ve - v) };	/* 90, 1.5 */
			if (*v == '"' && !plain_string(v, ve, &str))	/* "5m" */
				return 1;
			if (timefmt_parse_delay(str.ptr, str.len, TASK_DELAY_MAX, &us) != 0)
				return 1;
			not_before = us ? now + us : 0;
		}
		if (which == 32 && (!plain_string(v, ve, &str) ||
		    not_before_parse(str.ptr, str.len, &not_before) != 0))
			return 1;
		seen |= which;
		if (which == 1 && !plain_string(v, ve, &idx))
			return 1;
		if (which == 2 && !plain_string(v, ve, &type))
			return 1;
		if (which == 4) {
			if ((size_t)(ve - v) == 4 && memcmp(v, "null", 4) == 0)
				;
			else if (*v == '{' && already_compact(v, (size_t)(ve - v)) &&
			    task_utf8_valid(v, (size_t)(ve - v)))
				det = (struct task_str){ v, (size_t)(ve - v) };
			else
				return 1;
		}
		p = skip_spaces(ve, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}' && skip_spaces(p + 1, end) == end)
			break;
		return 1;
	}
	if (!idx.ptr || !type.ptr || !task_index_uid_valid(idx.ptr, idx.len) ||
	    !task_type_valid(type.ptr, type.len))
		return 1;
	char *ip = keep(b, idx.ptr, idx.len), *tp = keep(b, type.ptr, type.len);
	char *dp = keep(b, det.ptr, det.len);
	if (!ip || !tp || !dp)
		return ENOMEM;
	task_init(t, ip, idx.len, tp, type.len, dp, det.len);
	t->priority = priority;
	t->not_before = not_before;
	return 0;
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
