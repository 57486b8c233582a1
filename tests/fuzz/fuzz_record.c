/* libFuzzer target: stored task records, as the responder reads them from LMDB.
 *
 * The input is decoded as it is, and again with its checksum recomputed, so that
 * the fuzzer explores the layout behind the checksum too.  A record that decodes
 * must hold a task that keeps the decoder's promises (lengths, flags, strings inside
 * the record), re-encode to a record that decodes to the same fields and re-encodes
 * to itself, and render without failing.  Rendering copies the stored details
 * verbatim, so only a record whose details are a JSON object and whose strings are
 * UTF-8 (all the writer can store) must render to JSON that json-c reads back, with
 * SPEC §1's keys in order.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"

#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "lmtasks/render.h"
#include "lmtasks/task.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_json_init();
	return 0;
}

/* The record's checksum, as src/codec.c's layout comment defines it: FNV-1a of every
 * byte but bytes 4..7. */
static uint32_t
fnv1a(const unsigned char *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		if (i >= 4 && i < 8)
			continue;
		h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

static int
inside(struct task_str s, const void *buf, size_t len)
{
	const char *b = buf;

	return s.ptr == NULL || (s.ptr >= b && s.ptr + s.len <= b + len);
}

static int
str_eq(struct task_str a, struct task_str b)
{
	return (a.ptr == NULL) == (b.ptr == NULL) && a.len == b.len &&
	    (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void
check_decoded(const struct task *t, const void *buf, size_t len)
{
	CHECK((unsigned)t->status < TASK_NSTATUS);
	CHECK(inside(t->index_uid, buf, len) && inside(t->type, buf, len) &&
	    inside(t->details, buf, len) && inside(t->error_code, buf, len) &&
	    inside(t->error_message, buf, len));
	CHECK(t->index_uid.ptr == NULL ? t->index_uid.len == 0 :
	    t->index_uid.len >= 1 && t->index_uid.len <= TASK_INDEX_MAX);
	CHECK(t->type.ptr != NULL && t->type.len >= 1 && t->type.len <= TASK_TYPE_MAX);
	CHECK(t->details.ptr != NULL && t->details.len >= 2 && t->details.ptr[0] == '{' &&
	    t->details.ptr[t->details.len - 1] == '}');
	CHECK((t->status == TASK_FAILED) == (t->error_code.ptr != NULL));
	if (t->status == TASK_FAILED)
		CHECK(t->error_code.len >= 1 && t->error_code.len <= TASK_CODE_MAX &&
		    t->error_message.ptr != NULL && (unsigned)t->error_type < TASK_NERRTYPE);
}

static void
check_same(const struct task *a, const struct task *b)
{
	CHECK(a->status == b->status);
	CHECK(a->enqueued_at == b->enqueued_at && a->started_at == b->started_at &&
	    a->finished_at == b->finished_at);
	CHECK(a->canceled_by == b->canceled_by);
	CHECK(a->lease_until == b->lease_until);
	/* A lease's length means nothing without a lease: the encoder drops it then. */
	if (a->lease_until != 0)
		CHECK(a->lease_ms == b->lease_ms);
	CHECK(a->requeue == b->requeue && a->lease_expired == b->lease_expired);
	CHECK(str_eq(a->index_uid, b->index_uid) && str_eq(a->type, b->type) &&
	    str_eq(a->details, b->details));
	CHECK(a->status == b->status);
	if (a->status == TASK_FAILED)
		CHECK(str_eq(a->error_code, b->error_code) &&
		    str_eq(a->error_message, b->error_message) && a->error_type == b->error_type);
}

/* Encodes t, checks the size, decodes it back: the same fields, and a fixed point. */
static void
check_roundtrip(const struct task *t, size_t len)
{
	struct task t2, t3;
	size_t n = codec_size(t), n2;
	unsigned char *buf = malloc(n ? n : 1), *buf2;

	CHECK(buf != NULL);
	CHECK(n <= len);	/* flags the fields do not need are dropped, nothing is added */
	CHECK(codec_encode(t, buf) == n);
	t2.uid = t3.uid = t->uid;
	CHECK(codec_decode(buf, n, &t2) == 0);
	check_decoded(&t2, buf, n);
	check_same(t, &t2);
	n2 = codec_size(&t2);
	CHECK(n2 == n);
	buf2 = malloc(n2);
	CHECK(buf2 != NULL);
	CHECK(codec_encode(&t2, buf2) == n2 && memcmp(buf, buf2, n) == 0);
	CHECK(codec_decode(buf2, n2, &t3) == 0);
	check_same(&t2, &t3);
	free(buf2);
	free(buf);
}

/* Whether a writer could have stored t: details a JSON object, strings UTF-8. */
static int
storable(const struct task *t)
{
	json_object *d;

	if ((t->index_uid.ptr && !task_utf8_valid(t->index_uid.ptr, t->index_uid.len)) ||
	    !task_utf8_valid(t->type.ptr, t->type.len) ||
	    (t->error_code.ptr && !task_utf8_valid(t->error_code.ptr, t->error_code.len)) ||
	    (t->error_message.ptr && t->error_message.len &&
	     !task_utf8_valid(t->error_message.ptr, t->error_message.len)))
		return 0;
	/* The error code is printed inside the link's URL string unescaped: the writer keeps it
	 * to [a-z0-9_]. */
	if (t->error_code.ptr && !task_error_code_valid(t->error_code.ptr, t->error_code.len))
		return 0;
	if ((d = parse_json(t->details.ptr, t->details.len)) == NULL)
		return 0;
	int ok = json_object_is_type(d, json_type_object);
	json_object_put(d);
	return ok;
}

static void
check_render(const struct task *t)
{
	static const char *const order[] = { "uid", "indexUid", "status", "type", "canceledBy",
	    "details", "error", "duration", "enqueuedAt", "startedAt", "finishedAt" };
	struct printbuf *pb = printbuf_new();
	json_object *o;
	size_t k = 0;

	CHECK(pb != NULL);
	CHECK(render_task(pb, t) == 0);
	if (!storable(t)) {
		printbuf_free(pb);
		return;
	}
	o = parse_json(pb->buf, (size_t)pb->bpos);
	CHECK(o != NULL && json_object_is_type(o, json_type_object));
	json_object_object_foreach(o, key, val) {
		(void)val;
		while (k < sizeof(order) / sizeof(order[0]) && strcmp(order[k], key) != 0)
			k++;
		CHECK(k < sizeof(order) / sizeof(order[0]));	/* known key, in order */
	}
	json_object *v;
	CHECK(json_object_object_get_ex(o, "canceledBy", &v) == (t->status == TASK_CANCELED));
	CHECK(json_object_object_get_ex(o, "error", &v) == (t->status == TASK_FAILED));
	CHECK(json_object_object_get_ex(o, "uid", &v) &&
	    (uint64_t)json_object_get_uint64(v) == t->uid);
	CHECK(json_object_object_get_ex(o, "status", &v) &&
	    strcmp(json_object_get_string(v), task_status_name(t->status)) == 0);
	json_object_put(o);
	printbuf_free(pb);
}

static void
one(const unsigned char *buf, size_t len, uint64_t uid)
{
	struct task t;

	memset(&t, 0xa5, sizeof(t));
	t.uid = uid;
	int rc = codec_decode(buf, len, &t);
	CHECK(rc == 0 || rc == LMT_ECORRUPT);
	if (rc != 0)
		return;
	CHECK(t.uid == uid);	/* the uid is the key, not part of the record */
	check_decoded(&t, buf, len);
	check_roundtrip(&t, len);
	check_render(&t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy;
	uint32_t h;

	if (size > (1u << 20))
		return 0;
	/* An exact-size heap copy, so that ASan sees any read past the record. */
	copy = malloc(size ? size : 1);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	one(copy, size, size);
	if (size >= 8) {
		h = fnv1a(copy, size);
		for (int i = 0; i < 4; i++)
			copy[4 + i] = (unsigned char)(h >> (8 * i));
		one(copy, size, UINT64_MAX - 1);
	}
	free(copy);
	return 0;
}
