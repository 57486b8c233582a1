/* Webhook delivery: a batch from the change log, gzip through zlib, a POST through libcurl. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <zlib.h>

#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/notify.h"
#include "lmtasks/render.h"

/* Appends task uid, when it finished at this change and q matches it, as one line. */
static int
add_task(store *s, MDB_txn *txn, const struct query *q, const struct feed_entry *e, int v1,
    struct notify_batch *b)
{
	struct task t;
	int rc;

	if (e->status == FEED_REMOVED || !task_status_terminal((enum task_status)e->status))
		return 0;
	if ((rc = store_get(s, txn, e->uid, &t)) == MDB_NOTFOUND)
		return 0;	/* deleted since it finished: nothing left to send */
	if (rc != 0)
		return rc;
	if (!query_match(q, &t))
		return 0;
	if (render_task_as(b->body, &t, v1) != 0 || printbuf_memappend(b->body, "\n", 1) < 0)
		return ENOMEM;
	b->ntasks++;
	return 0;
}

int
notify_collect(store *s, const struct webhook *w, const struct query *q, size_t max_tasks,
    size_t max_bytes, struct notify_batch *b)
{
	struct feed_entry e;
	feed_iter *it = NULL;
	uint64_t first, last;
	enum compat_level level = COMPAT_V025;
	MDB_txn *txn;
	int rc;

	printbuf_reset(b->body);
	b->from = b->to = w->cursor;
	b->missed = b->ntasks = 0;
	if ((rc = store_txn_begin(s, MDB_RDONLY, &txn)) != 0)
		return rc;
	/* The tasks as GET /tasks/UID serves them: in v1's layout in a compat v1 store. */
	if ((rc = compat_read(s, txn, &level)) != 0)
		goto out;
	rc = feed_iter_open(s, txn, w->cursor, &it);
	if (rc == LMT_EPRUNED) {
		/* Pruned past the cursor: what is gone is gone; go on from the oldest kept. */
		if ((rc = feed_bounds(s, txn, &first, &last)) != 0)
			goto out;
		b->from = b->to = first - 1;
		b->missed = b->from - w->cursor;
		rc = feed_iter_open(s, txn, b->from, &it);
	}
	if (rc != 0)
		goto out;
	for (size_t scanned = 0; scanned < NOTIFY_SCAN_MAX && b->ntasks < max_tasks &&
	    (size_t)b->body->bpos < max_bytes; scanned++) {
		if ((rc = feed_iter_next(it, &e)) != 0)
			break;
		if ((rc = add_task(s, txn, q, &e, level == COMPAT_V1, b)) != 0)
			break;
		b->to = e.seq;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	feed_iter_close(it);
	mdb_txn_abort(txn);
	return rc;
}

int
notify_gzip(const void *in, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z = { 0 };
	unsigned char *buf;
	int rc;

	/* 15 + 16: a gzip header and trailer around the deflate stream. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return ENOMEM;
	size_t cap = deflateBound(&z, (uLong)len);
	if ((buf = malloc(cap)) == NULL) {
		deflateEnd(&z);
		return ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return ENOMEM;
	}
	*out = buf;
	*outlen = cap - z.avail_out;
	return 0;
}

int
notify_headers(const struct webhook *w, struct curl_slist **out)
{
	struct curl_slist *list = NULL, *l;
	json_object *obj;
	char *line;
	int rc = 0;

	*out = NULL;
	/* Expect: none, so that a receiver that does not answer 100 costs no second. */
	static const char *const own[] = { "Content-Type: application/x-ndjson",
	    "Content-Encoding: gzip", "Expect:" };
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		if ((l = curl_slist_append(list, own[i])) == NULL)
			goto oom;
		list = l;
	}
	json_tokener *tok = json_tokener_new();
	if (tok == NULL)
		goto oom;
	obj = json_tokener_parse_ex(tok, w->headers.ptr, (int)w->headers.len);
	json_tokener_free(tok);
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		curl_slist_free_all(list);
		return LMT_ECORRUPT;
	}
	json_object_object_foreach(obj, name, val) {
		const char *v = json_object_get_string(val);
		size_t n = strlen(name) + strlen(v) + 3;
		if ((line = malloc(n)) == NULL) {
			rc = ENOMEM;
			break;
		}
		snprintf(line, n, "%s: %s", name, v);
		l = curl_slist_append(list, line);
		free(line);
		if (l == NULL) {
			rc = ENOMEM;
			break;
		}
		list = l;
	}
	json_object_put(obj);
	if (rc != 0)
		goto oom;
	*out = list;
	return 0;
oom:
	curl_slist_free_all(list);
	return ENOMEM;
}

/* The receiver's answer is not read: its status says everything. */
static size_t
discard(char *ptr, size_t size, size_t n, void *ctx)
{
	(void)ptr;
	(void)ctx;
	return size * n;
}

int
notify_post(CURL *c, const char *url, struct curl_slist *headers, const void *body,
    size_t len, long timeout_ms, long *status, char *err)
{
	CURLcode cc;

	*status = 0;
	err[0] = '\0';
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "lmtasks/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		if (err[0] == '\0')
			snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(cc));
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	return *status >= 200 && *status < 300 ? 0 : -1;
}

int
notify_send(void *curl, const struct webhook *w, const char *url, const void *body,
    size_t len, char *why, size_t whylen)
{
	struct curl_slist *headers = NULL;
	unsigned char *gz = NULL;
	size_t gzlen;
	char err[CURL_ERROR_SIZE];
	long status;
	int rc;

	if ((rc = notify_gzip(body, len, &gz, &gzlen)) != 0 ||
	    (rc = notify_headers(w, &headers)) != 0) {
		snprintf(why, whylen, "%s", lmt_strerror(rc));
		free(gz);
		return -1;
	}
	rc = notify_post(curl, url, headers, gz, gzlen, NOTIFY_POST_TIMEOUT_MS, &status, err);
	if (rc != 0 && status)
		snprintf(why, whylen, "POST %s: HTTP status %ld", url, status);
	else if (rc != 0)
		snprintf(why, whylen, "POST %s: %s", url, err);
	curl_slist_free_all(headers);
	free(gz);
	return rc;
}
