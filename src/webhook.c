/* Webhook records: encoding (versioned, little-endian, every length checked) and their
 * place in the store's `webhooks` database, read side (the responder links it for
 * /metrics); webhook_write.c stores and removes them. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lmtasks/bytes.h"
#include "lmtasks/error.h"
#include "lmtasks/webhook.h"
#include "store_internal.h"

#define RECORD_VERSION 1
#define FIXED (4 + 7 * 8)	/* version, flags, reserved; seven u64 */
#define NO_STRING 0xffffffffu

size_t
webhook_encode(const struct webhook *w, unsigned char *buf)
{
	const struct task_str *strs[] = { &w->url, &w->headers, &w->filter, &w->error };
	const uint64_t nums[] = { w->cursor, (uint64_t)w->created_at, w->delivered,
	    (uint64_t)w->delivered_at, w->missed, (uint64_t)w->missed_at,
	    (uint64_t)w->failing_since };
	size_t n = FIXED;

	for (size_t i = 0; i < 4; i++)
		n += 4 + (strs[i]->ptr ? strs[i]->len : 0);
	if (buf == NULL)
		return n;
	memset(buf, 0, 4);
	buf[0] = RECORD_VERSION;
	for (size_t i = 0; i < 7; i++)
		bytes_put_u64le(buf + 4 + 8 * i, nums[i]);
	unsigned char *p = buf + FIXED;
	for (size_t i = 0; i < 4; i++) {
		if (strs[i]->ptr == NULL) {
			bytes_put_u32le(p, NO_STRING);
			p += 4;
			continue;
		}
		bytes_put_u32le(p, (uint32_t)strs[i]->len);
		memcpy(p + 4, strs[i]->ptr, strs[i]->len);
		p += 4 + strs[i]->len;
	}
	return n;
}

int
webhook_decode(uint64_t id, const void *buf, size_t len, struct webhook *w)
{
	const unsigned char *p = buf, *end = p + len;
	struct task_str *strs[] = { &w->url, &w->headers, &w->filter, &w->error };
	uint64_t nums[7];

	if (len < FIXED || p[0] != RECORD_VERSION)
		return LMT_ECORRUPT;
	for (size_t i = 0; i < 7; i++)
		nums[i] = bytes_get_u64le(p + 4 + 8 * i);
	w->id = id;
	w->cursor = nums[0];
	w->created_at = (int64_t)nums[1];
	w->delivered = nums[2];
	w->delivered_at = (int64_t)nums[3];
	w->missed = nums[4];
	w->missed_at = (int64_t)nums[5];
	w->failing_since = (int64_t)nums[6];
	p += FIXED;
	for (size_t i = 0; i < 4; i++) {
		if (end - p < 4)
			return LMT_ECORRUPT;
		uint32_t n = bytes_get_u32le(p);
		p += 4;
		if (n == NO_STRING) {
			*strs[i] = (struct task_str){ NULL, 0 };
			continue;
		}
		if ((size_t)(end - p) < n)
			return LMT_ECORRUPT;
		*strs[i] = (struct task_str){ (const char *)p, n };
		p += n;
	}
	/* Only the error may be absent. */
	return p == end && w->url.ptr && w->headers.ptr && w->filter.ptr ? 0 : LMT_ECORRUPT;
}

int
webhook_get(store *s, MDB_txn *txn, uint64_t id, struct webhook *w)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	if (!s->has_webhooks)
		return MDB_NOTFOUND;
	store_key_uid(kb, id);
	if ((rc = mdb_get(txn, s->webhooks, &k, &v)) != 0)
		return rc;
	return webhook_decode(id, v.mv_data, v.mv_size, w);
}

int
webhook_walk(store *s, MDB_txn *txn, int (*fn)(void *ctx, const struct webhook *w),
    void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	struct webhook w;
	int rc, op = MDB_FIRST;

	if (!s->has_webhooks)
		return 0;
	if ((rc = mdb_cursor_open(txn, s->webhooks, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if (k.mv_size != 8) {
			rc = LMT_ECORRUPT;
			break;
		}
		if ((rc = webhook_decode(store_uid_key(k.mv_data), v.mv_data, v.mv_size, &w)) != 0 ||
		    (rc = fn(ctx, &w)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The deliverer's own headers: a receiver must see them as Meilisearch sends them. */
static const char *const reserved[] = {
	"content-type", "content-encoding", "content-length", "host", "transfer-encoding",
};

int
webhook_header_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > 256)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("!#$%&'*+-.^_`|~", c)) || c == '\0')
			return 0;
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (strlen(reserved[i]) == len && strncasecmp(reserved[i], name, len) == 0)
			return 0;
	}
	return 1;
}

int
webhook_header_value_valid(const char *value, size_t len)
{
	if (len > 4096)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Our own parser, not libcurl's URL API: lmtasks links no libcurl, on purpose (its
 * libraries were most of the CLI's start-up), and it shows URLs in `webhook add` and
 * `webhook list`.  lmtasks-notify, which links libcurl, masks with curl_url() first. */
int
webhook_url_password(const char *url, size_t len, size_t *off, size_t *plen)
{
	const char *end = url + len, *auth = NULL, *stop, *at = NULL, *colon;

	*off = *plen = 0;
	for (const char *p = url; p + 3 <= end; p++) {
		if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
			auth = p + 3;
			break;
		}
		if (p[0] == '/' || p[0] == '?' || p[0] == '#')
			return 0;	/* a path before any "://": no authority */
	}
	if (auth == NULL)
		return 0;
	for (stop = auth; stop < end && *stop != '/' && *stop != '?' && *stop != '#'; stop++)
		if (*stop == '@')
			at = stop;	/* the last '@': one in the password is taken as is */
	if (at == NULL || (colon = memchr(auth, ':', (size_t)(at - auth))) == NULL)
		return 0;
	*off = (size_t)(colon + 1 - url);
	*plen = (size_t)(at - colon - 1);
	return 1;
}

/* Returns how much of ":PASSWORD@" (pat, n bytes) text[i..len) starts with. */
static size_t
common(const char *text, size_t i, size_t len, const char *pat, size_t n)
{
	size_t k = 0;

	while (k < n && i + k < len && text[i + k] == pat[k])
		k++;
	return k;
}

int
webhook_mask(const char *url, size_t urllen, const char *text, size_t textlen, char **out,
    size_t *outlen)
{
	static const char shown[] = ":***@";
	size_t off, plen, n = 0, k;
	char *o;

	/* Each ":" may become ":***@": at most 5 bytes for one. */
	if ((o = malloc(textlen * 5 + 1)) == NULL)
		return ENOMEM;
	if (!webhook_url_password(url, urllen, &off, &plen)) {
		memcpy(o, text, textlen);
		n = textlen;
		goto done;
	}
	const char *pat = url + off - 1;	/* ":PASSWORD@" */
	for (size_t i = 0; i < textlen; i++) {
		if (text[i] == ':' && (k = common(text, i, textlen, pat, plen + 2)) == plen + 2) {
			memcpy(o + n, shown, 5);
			n += 5;
			i += k - 1;
		} else if (text[i] == ':' && k >= 2 && i + k == textlen) {
			/* Cut at the end (a kept error has a bound): what is left of it goes. */
			memcpy(o + n, shown, 4);
			n += 4;
			break;
		} else {
			o[n++] = text[i];
		}
	}
done:
	o[n] = '\0';
	*out = o;
	*outlen = n;
	return 0;
}
