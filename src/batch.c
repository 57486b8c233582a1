/* NDJSON lines to tasks, with their strings in a few large chunks rather than a malloc each. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lmtasks/batch.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"

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

/* One line into t; 0, LMT_EINVAL with why, or ENOMEM. */
static int
parse_line(json_tokener *tok, const char *line, size_t len, struct batch *b, struct task *t,
    char *why, size_t whylen)
{
	json_object *obj, *idx = NULL, *type = NULL, *det = NULL;
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
		else {
			snprintf(why, whylen, "unknown key `%.64s` (expected indexUid, type, details)", key);
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
	rc = 0;
out:
	json_object_put(obj);
	return rc;
}

int
batch_parse(const char *text, size_t len, struct batch **out, size_t *line, char *why,
    size_t whylen)
{
	struct batch *b = calloc(1, sizeof(*b));
	json_tokener *tok = json_tokener_new();
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
			if ((rc = parse_line(tok, p, ll, b, &b->tasks[b->n], why, whylen)) != 0)
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
