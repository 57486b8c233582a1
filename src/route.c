/* The tasks API's paths: /tasks, /tasks/{uid}, /indexes/{i}/tasks[/{uid}], /health. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lmtasks/quote.h"
#include "lmtasks/route.h"
#include "lmtasks/text.h"

#define LINK_TYPE "invalid_request"

int
route_path(const char *request_uri, const char *script_name, const char *path_info,
    char *buf, size_t *len, int *decoded, struct api_error *err)
{
	const char *p;
	size_t n;

	*decoded = 0;
	if (request_uri && *request_uri) {
		p = request_uri;
		n = strcspn(p, "?");
		/* Mounted under a prefix with the path split off: drop the prefix, when it is
		 * whole path segments and leaves a path; else trust PATH_INFO (a rewrite). */
		if (path_info && *path_info && script_name && *script_name) {
			size_t sl = strlen(script_name);
			if (n > sl && memcmp(p, script_name, sl) == 0 && p[sl] == '/') {
				p += sl;
				n -= sl;
			} else {
				p = path_info;
				n = strlen(p);
				*decoded = 1;
			}
		}
	} else {
		p = path_info && *path_info ? path_info : script_name ? script_name : "";
		n = strlen(p);
		*decoded = 1;
	}
	if (n >= ROUTE_PATH_MAX)
		return api_error_set(err, 414, "bad_request", LINK_TYPE,
		    "The request path is %zu bytes long; the limit is %d.", n, ROUTE_PATH_MAX - 1);
	memcpy(buf, p, n);
	buf[n] = '\0';
	*len = n;
	return 0;
}

/* Splits path into at most 5 segments; returns the count, or -1 for too many or empty ones. */
static int
split(const char *path, size_t len, const char *seg[5], size_t seglen[5])
{
	int n = 0;
	size_t i = 0;

	if (len == 0 || path[0] != '/')
		return -1;
	if (len > 1 && path[len - 1] == '/')
		len--;		/* one trailing slash is ignored */
	if (len == 1)
		return 0;
	while (i < len) {
		size_t start = ++i;
		while (i < len && path[i] != '/')
			i++;
		if (i == start || n == 5)
			return -1;
		seg[n] = path + start;
		seglen[n++] = i - start;
	}
	return n;
}

static int
seg_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static int
parse_uid(const char *s, size_t len, uint64_t *uid, struct api_error *err)
{
	char q[128];
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > (UINT64_MAX - 1 - d) / 10) {
			return api_error_set(err, 400, "invalid_task_uids", LINK_TYPE,
			    "Task uid `%s` is invalid. It should only contain numeric characters.",
			    quote_text(s, len, q, sizeof(q)));
		}
		v = v * 10 + d;
	}
	*uid = v;
	return 0;
}

static int
bad_index(const char *s, size_t len, struct api_error *err)
{
	char q[128];

	return api_error_set(err, 400, "invalid_index_uid", LINK_TYPE, "`%s` is not a valid "
	    "index uid. Index uid can be an integer or a string containing only alphanumeric "
	    "characters, hyphens (-) and underscores (_), and can not be more than 400 bytes.",
	    quote_text(s, len, q, sizeof(q)));
}

/* Decodes the n segments into buf (unless decoded), pointing seg at the copies.  Returns 0,
 * -1 for a path that can name no route, or 400 with err filled. */
static int
decode(const char *seg[5], size_t seglen[5], int n, int decoded,
    char buf[5][TASK_INDEX_MAX * 3 + 1], struct api_error *err)
{
	char q[128];

	for (int i = 0; i < n; i++) {
		long dl;
		if (decoded) {
			if (seglen[i] > TASK_INDEX_MAX * 3)
				return -1;
			memcpy(buf[i], seg[i], seglen[i]);
			dl = (long)seglen[i];
		} else if (seglen[i] > TASK_INDEX_MAX * 3) {
			/* Longer than any index uid could be, even escaped. */
			if (i == 1 && n >= 3 && seg_is(seg[0], seglen[0], "indexes"))
				return bad_index(seg[i], seglen[i], err);
			return -1;
		} else if ((dl = text_unescape(seg[i], seglen[i], 0, buf[i])) < 0) {
			return api_error_set(err, 400, "bad_request", LINK_TYPE,
			    "The request path has a malformed percent-escape in `%s`.",
			    quote_text(seg[i], seglen[i], q, sizeof(q)));
		}
		seg[i] = buf[i];
		seglen[i] = (size_t)dl;
	}
	return 0;
}

int
route_parse(const char *path, size_t len, int decoded, struct route *r, struct api_error *err)
{
	const char *seg[5];
	size_t seglen[5];
	char buf[5][TASK_INDEX_MAX * 3 + 1];
	char q[128];
	int n = split(path, len, seg, seglen), rc;

	/* A route without an index has an empty one: the page cache keys on it. */
	r->kind = ROUTE_NONE;
	r->index[0] = '\0';
	r->index_len = 0;
	if (n <= 0 || (rc = decode(seg, seglen, n, decoded, buf, err)) < 0)
		goto not_found;
	if (rc != 0)
		return rc;

	if (n == 1 && seg_is(seg[0], seglen[0], "health")) {
		r->kind = ROUTE_HEALTH;
		return 0;
	}
	if (n == 1 && seg_is(seg[0], seglen[0], "metrics")) {
		r->kind = ROUTE_METRICS;
		return 0;
	}
	if (seg_is(seg[0], seglen[0], "tasks") && n == 2 && seg_is(seg[1], seglen[1], "stream")) {
		r->kind = ROUTE_TASKS_STREAM;
		return 0;
	}
	if (seg_is(seg[0], seglen[0], "tasks") && n <= 2) {
		r->kind = n == 1 ? ROUTE_TASKS : ROUTE_TASK;
		return n == 2 ? parse_uid(seg[1], seglen[1], &r->uid, err) : 0;
	}
	if (seg_is(seg[0], seglen[0], "batches") && n <= 2) {
		r->kind = n == 1 ? ROUTE_BATCHES : ROUTE_BATCH;
		if (n == 2 && parse_uid(seg[1], seglen[1], &r->uid, err) != 0)
			return api_error_set(err, 400, "invalid_batch_uids", LINK_TYPE,
			    "Batch uid `%s` is invalid. It should only contain numeric characters.",
			    quote_text(seg[1], seglen[1], q, sizeof(q)));
		return 0;
	}
	if (seg_is(seg[0], seglen[0], "indexes") && (n == 3 || n == 4) &&
	    seg_is(seg[2], seglen[2], "tasks")) {
		if (!task_index_uid_valid(seg[1], seglen[1]))
			return bad_index(seg[1], seglen[1], err);
		memcpy(r->index, seg[1], seglen[1]);
		r->index[seglen[1]] = '\0';
		r->index_len = seglen[1];
		r->kind = n == 3 ? ROUTE_INDEX_TASKS : ROUTE_INDEX_TASK;
		return n == 4 ? parse_uid(seg[3], seglen[3], &r->uid, err) : 0;
	}
not_found:
	return route_not_found(path, len, err);
}

int
route_not_found(const char *path, size_t len, struct api_error *err)
{
	char q[128];

	return api_error_set(err, 404, "not_found", LINK_TYPE, "Route `%s` not found.",
	    quote_text(path, len, q, sizeof(q)));
}
