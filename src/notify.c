/* Webhook delivery: a batch from the change log, gzip through zlib, the POSTs through
 * libcurl's multi interface on the event loop (redis's ae.c with libcurl's
 * CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION: curl says which sockets to watch
 * and when its next timeout is due; the loop calls curl_multi_socket_action()). */
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
	if ((rc = store_read_follow(s, &txn)) != 0)
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
		if (!json_object_is_type(val, json_type_string)) {
			rc = LMT_ECORRUPT;	/* add keeps strings: a damaged record */
			break;
		}
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
	if (rc == LMT_ECORRUPT) {
		curl_slist_free_all(list);
		return rc;
	}
	if (rc != 0)
		goto oom;
	*out = list;
	return 0;
oom:
	curl_slist_free_all(list);
	return ENOMEM;
}

int
notify_url_mask(const char *url, char **out)
{
	CURLU *u = curl_url();
	char *pw = NULL, *full = NULL;
	size_t n;
	int rc = ENOMEM;

	if (u == NULL)
		return ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		curl_url_cleanup(u);
		return webhook_mask(url, strlen(url), url, strlen(url), out, &n);
	}
	if (curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) != CURLUE_OK) {
		curl_url_cleanup(u);	/* none: shown as given */
		return (*out = strdup(url)) != NULL ? 0 : ENOMEM;
	}
	if (curl_url_set(u, CURLUPART_PASSWORD, "***", 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK && (*out = strdup(full)) != NULL)
		rc = 0;
	curl_free(pw);
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

/* One POST under way, on its own easy handle. */
struct post {
	uint64_t id;		/* the webhook's */
	CURL *c;
	struct curl_slist *headers;
	unsigned char *gz;	/* the body */
	char *shown;		/* the URL, its password masked */
	char err[CURL_ERROR_SIZE];
	struct post *next;
};

struct notify_multi {
	event_loop *el;
	CURLM *m;
	uint64_t timer;		/* libcurl's next timeout on el; 0: none */
	notify_done_fn *done;
	void *ctx;
	struct post *posts;	/* under way */
};

/* Frees p, whose handle is out of the multi handle. */
static void
post_free(struct post *p)
{
	if (p == NULL)
		return;
	if (p->c)
		curl_easy_cleanup(p->c);
	curl_slist_free_all(p->headers);
	free(p->gz);
	free(p->shown);
	free(p);
}

/* Takes p out of the multi handle and the list, and frees it. */
static void
post_end(notify_multi *m, struct post *p)
{
	for (struct post **pp = &m->posts; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	curl_multi_remove_handle(m->m, p->c);
	post_free(p);
}

/* Each POST that ended: its handle and memory given back, then done() told. */
static void
finished(notify_multi *m)
{
	char why[WEBHOOK_URL_MAX + CURL_ERROR_SIZE + 64];
	struct post *p;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURLcode cc = msg->data.result;
		long status = 0;
		char *priv;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		p = (struct post *)(void *)priv;
		curl_easy_getinfo(p->c, CURLINFO_RESPONSE_CODE, &status);
		int ok = cc == CURLE_OK && status >= 200 && status < 300;
		if (!ok && status)
			snprintf(why, sizeof(why), "POST %s: HTTP status %ld", p->shown, status);
		else if (!ok)
			snprintf(why, sizeof(why), "POST %s: %s", p->shown,
			    p->err[0] ? p->err : curl_easy_strerror(cc));
		uint64_t id = p->id;
		post_end(m, p);
		m->done(m->ctx, id, ok, ok ? NULL : why);
	}
}

/* A socket of libcurl's is ready. */
static void
on_ready(event_loop *el, int fd, unsigned what, void *ctx)
{
	notify_multi *m = ctx;
	int running;

	(void)el;
	curl_multi_socket_action(m->m, fd, (what & EVENT_READ ? CURL_CSELECT_IN : 0) |
	    (what & EVENT_WRITE ? CURL_CSELECT_OUT : 0), &running);
	finished(m);
}

/* libcurl's word on a socket: what to wait for, or nothing more. */
static int
on_socket(CURL *e, curl_socket_t fd, int what, void *ctx, void *sockp)
{
	notify_multi *m = ctx;

	(void)e;
	(void)sockp;
	event_fd_del(m->el, fd);
	if (what == CURL_POLL_REMOVE)
		return 0;
	return event_fd_add(m->el, fd, (what & CURL_POLL_IN ? EVENT_READ : 0) |
	    (what & CURL_POLL_OUT ? EVENT_WRITE : 0), on_ready, m) == 0 ? 0 : -1;
}

/* libcurl's timeout came.  This timer ends here: libcurl asks for the next one. */
static int64_t
on_timeout(event_loop *el, void *ctx)
{
	notify_multi *m = ctx;
	int running;

	(void)el;
	m->timer = 0;
	curl_multi_socket_action(m->m, CURL_SOCKET_TIMEOUT, 0, &running);
	finished(m);
	return EVENT_NOMORE;
}

/* libcurl's word on its next timeout: in ms, -1 none. */
static int
on_timer(CURLM *multi, long ms, void *ctx)
{
	notify_multi *m = ctx;

	(void)multi;
	if (ms < 0) {
		if (m->timer)
			event_timer_del(m->el, m->timer);
		m->timer = 0;
		return 0;
	}
	if (m->timer && event_timer_move(m->el, m->timer, (int64_t)ms * 1000) == 0)
		return 0;
	return event_timer_add(m->el, (int64_t)ms * 1000, on_timeout, m, &m->timer) == 0 ? 0 : -1;
}

int
notify_multi_new(event_loop *el, notify_done_fn *done, void *ctx, notify_multi **out)
{
	notify_multi *m = calloc(1, sizeof(*m));

	if (m == NULL || (m->m = curl_multi_init()) == NULL) {
		free(m);
		return ENOMEM;
	}
	m->el = el;
	m->done = done;
	m->ctx = ctx;
	curl_multi_setopt(m->m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m->m, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m->m, CURLMOPT_TIMERDATA, m);
	*out = m;
	return 0;
}

void
notify_multi_free(notify_multi *m)
{
	if (m == NULL)
		return;
	while (m->posts)
		post_end(m, m->posts);
	curl_multi_cleanup(m->m);
	if (m->timer)
		event_timer_del(m->el, m->timer);
	free(m);
}

/* The receiver's answer is not read: its status says everything. */
static size_t
discard(char *ptr, size_t size, size_t n, void *ctx)
{
	(void)ptr;
	(void)ctx;
	return size * n;
}

/* p's easy handle: a POST of its body (len bytes) to url, redirects not followed. */
static void
post_setup(struct post *p, const char *url, size_t len)
{
	CURL *c = p->c;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->gz);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "lmtasks/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, NOTIFY_POST_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->err);
	curl_easy_setopt(c, CURLOPT_PRIVATE, p);
}

int
notify_multi_start(void *ctx, const struct webhook *w, const char *url, const void *body,
    size_t len, char *why, size_t whylen)
{
	notify_multi *m = ctx;
	struct post *p = calloc(1, sizeof(*p));
	size_t gzlen;
	int rc = ENOMEM;

	if (p != NULL && (rc = notify_gzip(body, len, &p->gz, &gzlen)) == 0 &&
	    (rc = notify_headers(w, &p->headers)) == 0 &&
	    (rc = notify_url_mask(url, &p->shown)) == 0)
		rc = (p->c = curl_easy_init()) != NULL ? 0 : ENOMEM;
	if (rc == 0) {
		p->id = w->id;
		post_setup(p, url, gzlen);
		if (curl_multi_add_handle(m->m, p->c) != CURLM_OK)
			rc = ENOMEM;
	}
	if (rc != 0) {
		snprintf(why, whylen, "%s", lmt_strerror(rc));
		post_free(p);
		return -1;
	}
	p->next = m->posts;
	m->posts = p;
	return 0;
}

void
notify_multi_cancel(void *ctx, uint64_t id)
{
	notify_multi *m = ctx;

	for (struct post *p = m->posts; p; p = p->next) {
		if (p->id == id) {
			post_end(m, p);
			return;
		}
	}
}
