/* libFuzzer target: the request path and the whole request without a store.
 *
 * The input is up to six NUL-separated fields: REQUEST_METHOD, REQUEST_URI,
 * SCRIPT_NAME, PATH_INFO, QUERY_STRING, HTTP_AUTHORIZATION (a missing field is
 * NULL).  The first byte holds flags (master key configured, send it).  Checked:
 * route_path(), route_parse() (both decoding modes, and on the raw input),
 * text_unescape() against a reference decoder, quote_text()'s output, and
 * api_handle() with no store: a known status, a JSON body, a matching Content-Length.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/error.h"
#include "lmtasks/render.h"
#include "lmtasks/quote.h"
#include "lmtasks/text.h"
#include "lmtasks/route.h"

#define MASTER_KEY "fuzz-master-key-0123456789"

/* A failed invariant: say which and abort, so libFuzzer keeps the input. */

static unsigned char master[AUTH_HASH_BYTES];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (auth_init() != 0)
		abort();
	auth_hash(MASTER_KEY, strlen(MASTER_KEY), master);
	fuzz_json_init();
	return 0;
}

/* Parses len bytes as exactly one strict, UTF-8 JSON value; returns it (caller puts) or NULL. */
/* An error answer: status, a code, a type, a UTF-8 message, and a body json-c reads back. */
static void
check_error(const struct api_error *e, int status)
{
	struct printbuf *pb = printbuf_new();
	json_object *o, *v;

	CHECK(pb != NULL);
	CHECK(e->status == status);
	CHECK(e->code != NULL && e->type != NULL);
	CHECK(task_utf8_valid(e->message, strlen(e->message)));
	CHECK(strlen(e->message) < sizeof(e->message));
	CHECK(api_error_render(pb, e) == 0);
	o = parse_json(pb->buf, (size_t)pb->bpos);
	CHECK(o != NULL);
	CHECK(json_object_object_get_ex(o, "message", &v));
	CHECK(strcmp(json_object_get_string(v), e->message) == 0);
	json_object_put(o);
	printbuf_free(pb);
}

static int
is_digit_string(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return 1;
}

/* What a successful parse promises. */
static void
check_route(const struct route *r)
{
	switch (r->kind) {
	case ROUTE_INDEX_TASKS:
	case ROUTE_INDEX_TASK:
		CHECK(r->index_len >= 1 && r->index_len <= TASK_INDEX_MAX);
		CHECK(task_index_uid_valid(r->index, r->index_len));
		CHECK(r->index[r->index_len] == '\0');
		if (r->kind == ROUTE_INDEX_TASK)
			CHECK(r->uid != TASK_NO_UID);
		break;
	case ROUTE_TASK:
	case ROUTE_BATCH:
		CHECK(r->uid != TASK_NO_UID);
		break;
	case ROUTE_TASKS:
	case ROUTE_HEALTH:
	case ROUTE_TASKS_STREAM:
	case ROUTE_BATCHES:
	case ROUTE_METRICS:
		break;
	default:
		CHECK(!"unknown route kind");
	}
}

/* Parses path in one mode and checks the outcome; returns the status. */
static int
parse_one(const char *path, size_t len, int decoded, struct route *r)
{
	struct api_error err;
	int rc = route_parse(path, len, decoded, r, &err);

	CHECK(rc == 0 || rc == 400 || rc == 404);
	if (rc == 0)
		check_route(r);
	else
		check_error(&err, rc);
	return rc;
}

/* The reference decoder: %XX with two hex digits, '+' as a space when plus is set. */
static long
ref_unescape(const char *s, size_t len, int plus, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			char hex[3] = { 0, 0, 0 };
			char *end;
			if (len - i < 3 || !strchr("0123456789abcdefABCDEF", s[i + 1]) || !s[i + 1] ||
			    !strchr("0123456789abcdefABCDEF", s[i + 2]) || !s[i + 2])
				return -1;
			hex[0] = s[i + 1];
			hex[1] = s[i + 2];
			out[n++] = (char)strtoul(hex, &end, 16);
			i += 2;
		} else {
			out[n++] = plus && s[i] == '+' ? ' ' : s[i];
		}
	}
	return (long)n;
}

/* A uid route's {uid} segment, when it needs no decoding, is the decimal of r->uid. */
static void
check_uid_segment(const char *path, size_t len, const struct route *r)
{
	char want[24];
	const char *seg;
	size_t sl;

	if (len > 1 && path[len - 1] == '/')
		len--;
	seg = path + len;
	while (seg > path && seg[-1] != '/')
		seg--;
	sl = (size_t)(path + len - seg);
	if (!is_digit_string(seg, sl))
		return;		/* escaped digits: decoded first */
	while (sl > 1 && *seg == '0') {
		seg++;
		sl--;
	}
	snprintf(want, sizeof(want), "%llu", (unsigned long long)r->uid);
	CHECK(strlen(want) == sl && memcmp(want, seg, sl) == 0);
}

static void
check_quote(const char *s, size_t len, size_t outsz)
{
	char out[256];
	const char *q = quote_text(s, len, out, outsz);
	size_t n = strlen(q);

	CHECK(q == out);
	CHECK(n < outsz);
	CHECK(task_utf8_valid(q, n));
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)q[i] >= 0x20 && q[i] != 0x7f);
	/* Short printable ASCII comes back unchanged. */
	if (len + 9 <= outsz) {
		int plain = 1;
		for (size_t i = 0; i < len; i++)
			plain &= (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f;
		if (plain)
			CHECK(n == len && memcmp(q, s, len) == 0);
	}
}

/* The whole request, answered without a store (as when the store cannot be opened). */
static void
check_api(const struct api_request *rq, int with_master, int key_sent)
{
	static const int known[] = { 200, 400, 401, 403, 404, 405, 414, 431, 503 };
	struct api_reader rd = { NULL, LMT_ENOSTORE, "/nonexistent", NULL, NULL, NULL };
	struct api_response rs;
	struct printbuf *body = printbuf_new();
	char head[256], *end;
	int found = 0;

	CHECK(body != NULL);
	rd.master = with_master ? master : NULL;
	api_handle(rq, &rd, body, &rs);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		found |= rs.status == known[i];
	CHECK(found);
	CHECK(rs.status != 200);		/* no store: nothing to answer 200 with */
	/* A master key and no right key: refusals, or answers that come before the key
	 * (unknown route, method, too long) or need the store to check an API key (503). */
	if (with_master && !key_sent)
		CHECK(rs.status == 401 || rs.status == 403 || rs.status == 404 ||
		    rs.status == 405 || rs.status == 414 || rs.status == 431 || rs.status == 503);
	/* The master key itself: never refused. */
	if (with_master && key_sent)
		CHECK(rs.status != 401 && rs.status != 403 && rs.status != 431);
	json_object *o = parse_json(body->buf, (size_t)body->bpos);
	CHECK(o != NULL);
	CHECK(json_object_is_type(o, json_type_object));
	json_object_put(o);
	CHECK(task_utf8_valid(rs.log, strlen(rs.log)));
	size_t hl = api_headers(&rs, (size_t)body->bpos, head, sizeof(head));
	CHECK(hl > 0 && hl < sizeof(head));
	const char *clp = strstr(head, "\r\nContent-Length: ");
	CHECK(clp != NULL);
	CHECK(strtol(clp + 18, &end, 10) == body->bpos && strncmp(end, "\r\n", 2) == 0);
	CHECK(hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0);
	CHECK((rs.status == 405) == (rs.allow != NULL));
	printbuf_free(body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
	char path[ROUTE_PATH_MAX], *copy, *dec, *ref;
	struct api_error err;
	struct route r, r2;
	size_t len, nf = 0;
	int decoded, rc;
	unsigned flags;

	if (size < 1 || size > 70000)
		return 0;
	flags = data[0];

	/* The raw input as a path: route_parse() takes a length, so NULs and all. */
	parse_one((const char *)data + 1, size - 1, 0, &r);
	parse_one((const char *)data + 1, size - 1, 1, &r);

	/* Escapes, against the reference decoder. */
	dec = malloc(size);
	ref = malloc(size);
	CHECK(dec && ref);
	for (int plus = 0; plus < 2; plus++) {
		long a = text_unescape((const char *)data, size, plus, dec);
		long b = ref_unescape((const char *)data, size, plus, ref);
		CHECK(a == b);
		CHECK(a <= (long)size);
		if (a > 0)
			CHECK(memcmp(dec, ref, (size_t)a) == 0);
	}
	free(dec);
	free(ref);

	check_quote((const char *)data, size, 128);
	check_quote((const char *)data, size, 9 + flags % 64);

	/* Split into the CGI parameters. */
	copy = malloc(size + 1);
	CHECK(copy != NULL);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	for (char *p = copy; nf < 6 && p <= copy + size - 1; p += strlen(p) + 1)
		f[nf++] = p;
	if (flags & 0x80)
		f[2] = NULL;	/* no SCRIPT_NAME */
	if (flags & 0x40)
		f[3] = NULL;	/* no PATH_INFO */

	rc = route_path(f[1], f[2], f[3], path, &len, &decoded, &err);
	CHECK(rc == 0 || rc == 414);
	if (rc == 0) {
		CHECK(len < ROUTE_PATH_MAX && path[len] == '\0' && strlen(path) == len);
		CHECK(decoded == 0 || decoded == 1);
		int a = parse_one(path, len, decoded, &r);
		int b = parse_one(path, len, !decoded, &r2);
		/* With nothing to decode, both modes agree (segments short enough to decode). */
		if (memchr(path, '%', len) == NULL && len <= TASK_INDEX_MAX * 3) {
			CHECK(a == b);
			if (a == 0) {
				CHECK(r.kind == r2.kind);
				if (r.kind == ROUTE_TASK || r.kind == ROUTE_INDEX_TASK)
					CHECK(r.uid == r2.uid);
			}
		}
		if (a == 0 && (r.kind == ROUTE_TASK || r.kind == ROUTE_INDEX_TASK))
			check_uid_segment(path, len, &r);
	} else {
		check_error(&err, 414);
	}

	/* The request as a whole. */
	struct api_request rq = { f[0], f[1], f[2], f[3], f[4], f[5] };
	int with_master = (flags & 1) != 0, key_sent = 0;
	char auth[128];
	if (with_master && (flags & 2)) {
		snprintf(auth, sizeof(auth), "%s %s", flags & 4 ? "bearer" : "Bearer", MASTER_KEY);
		rq.authorization = auth;
		key_sent = 1;
	}
	if (rq.query_string && strlen(rq.query_string) > 4096 && !(flags & 8))
		rq.query_string = NULL;	/* mostly short ones: the long case is one branch */
	check_api(&rq, with_master, key_sent);

	free(copy);
	return 0;
}
