/* The record format: round trips for every status, and every damaged record refused. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/codec.h"
#include "lmtasks/error.h"
#include "lmtasks/task.h"

#define STR(s) ((struct task_str){ (s), sizeof(s) - 1 })
#define NOSTR ((struct task_str){ NULL, 0 })

static struct task
base_task(enum task_status status)
{
	struct task t;

	memset(&t, 0, sizeof(t));
	t.uid = 7;
	t.status = status;
	t.enqueued_at = INT64_C(1628605757000000);
	t.canceled_by = TASK_NO_UID;
	t.index_uid = STR("movies");
	t.type = STR("documentAddition");
	t.details = STR("{\"receivedDocuments\":79000}");
	t.error_type = TASK_ERR_INVALID_REQUEST;
	return t;
}

static struct task
enqueued(void)
{
	return base_task(TASK_ENQUEUED);
}

static struct task
processing(void)
{
	struct task t = base_task(TASK_PROCESSING);

	t.started_at = INT64_C(1628605758123456);
	t.lease_until = INT64_C(1628605818123456);
	t.lease_ms = 60000;
	t.requeue = 1;
	return t;
}

static struct task
succeeded(void)
{
	struct task t = base_task(TASK_SUCCEEDED);

	t.type = STR("settingsUpdate");
	t.details = STR("{\"rankingRules\":[\"typo\",\"words\"]}");
	t.started_at = INT64_C(1628605758000000);
	t.finished_at = INT64_C(1628605759250000);
	return t;
}

static struct task
failed(void)
{
	struct task t = base_task(TASK_FAILED);

	t.started_at = INT64_C(1628605758000000);
	t.finished_at = INT64_C(1628605758184408);
	t.error_code = STR("index_not_found");
	t.error_message = STR("Index `movies` not found. \xc3\xa9\n\"quoted\"");
	t.error_type = TASK_ERR_AUTH;
	return t;
}

static struct task
canceled(void)
{
	struct task t = base_task(TASK_CANCELED);

	t.started_at = INT64_C(1628605758000000);
	t.finished_at = INT64_C(1628605760000000);
	t.canceled_by = 12;
	return t;
}

static struct task
null_index(void)
{
	struct task t = base_task(TASK_SUCCEEDED);

	t.index_uid = NOSTR;
	t.type = STR("taskCancelation");
	t.details = STR("{\"matchedTasks\":2,\"canceledTasks\":1,\"originalFilter\":\"?uids=1,2\"}");
	t.started_at = t.finished_at = t.enqueued_at;
	return t;
}

static void
expect_str(struct task_str got, struct task_str want, const char *what)
{
	cr_assert_eq(got.ptr == NULL, want.ptr == NULL, "%s: null-ness differs", what);
	cr_assert_eq(got.len, want.len, "%s: length %zu, want %zu", what, got.len, want.len);
	if (want.len)
		cr_assert(memcmp(got.ptr, want.ptr, want.len) == 0, "%s: bytes differ", what);
}

static void
expect_same(const struct task *got, const struct task *want)
{
	cr_assert_eq(got->status, want->status, "status");
	cr_assert_eq(got->enqueued_at, want->enqueued_at, "enqueued_at");
	cr_assert_eq(got->started_at, want->started_at, "started_at");
	cr_assert_eq(got->finished_at, want->finished_at, "finished_at");
	cr_assert_eq(got->canceled_by, want->canceled_by, "canceled_by");
	cr_assert_eq(got->lease_until, want->lease_until, "lease_until");
	cr_assert_eq(got->lease_ms, want->lease_ms, "lease_ms");
	cr_assert_eq(got->requeue, want->requeue, "requeue");
	cr_assert_eq(got->lease_expired, want->lease_expired, "lease_expired");
	expect_str(got->index_uid, want->index_uid, "index_uid");
	expect_str(got->type, want->type, "type");
	expect_str(got->details, want->details, "details");
	expect_str(got->custom_metadata, want->custom_metadata, "custom_metadata");
	/* A failed task's error, or the last attempt's of a scheduled one. */
	if (want->status == TASK_FAILED || (want->error_code.ptr && task_has_sched(want))) {
		cr_assert_eq(got->error_type, want->error_type, "error_type");
		expect_str(got->error_code, want->error_code, "error_code");
		expect_str(got->error_message, want->error_message, "error_message");
	} else {
		cr_assert_eq(got->error_code.len, 0, "error_code on a task that did not fail");
	}
}

/* Encodes t into a malloc'd buffer; *len gets its size. */
static unsigned char *
encode(const struct task *t, size_t *len)
{
	size_t size = codec_size(t);
	unsigned char *buf = malloc(size + 1);

	cr_assert_not_null(buf);
	*len = codec_encode(t, buf);
	cr_assert_eq(*len, size, "codec_encode wrote %zu bytes, codec_size said %zu", *len, size);
	return buf;
}

static void
round_trip(const struct task *t)
{
	size_t len;
	unsigned char *buf = encode(t, &len);
	struct task got;

	memset(&got, 0xa5, sizeof(got));
	got.uid = 424242;
	cr_assert_eq(codec_decode(buf, len, &got), 0, "a fresh record must decode");
	cr_assert_eq(got.uid, 424242, "decode must leave the uid alone");
	expect_same(&got, t);
	/* The strings point into the buffer, as the header promises. */
	if (got.index_uid.ptr)
		cr_assert(got.index_uid.ptr >= (const char *)buf &&
		    got.index_uid.ptr < (const char *)buf + len);
	cr_assert(got.details.ptr >= (const char *)buf && got.details.ptr < (const char *)buf + len);
	free(buf);
}

/* The record's checksum (FNV-1a of bytes 0-3 and 8-end, little-endian at 4), recomputed
 * so that a test can change a field and still reach the check behind the checksum. */
static void
reseal(unsigned char *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		if (i >= 4 && i < 8)
			continue;
		h = (h ^ p[i]) * 16777619u;
	}
	for (int i = 0; i < 4; i++)
		p[4 + i] = (unsigned char)(h >> (8 * i));
}

static struct task (*const every[])(void) = {
	enqueued, processing, succeeded, failed, canceled, null_index,
};
#define NEVERY (sizeof(every) / sizeof(every[0]))

Test(codec, round_trip_enqueued)
{
	struct task t = enqueued();
	round_trip(&t);
}

Test(codec, round_trip_processing)
{
	struct task t = processing();
	round_trip(&t);
}

/* Put back in the queue by an expired lease: enqueued again, with the mark. */
Test(codec, round_trip_requeued_after_lease)
{
	struct task t = enqueued();

	t.requeue = 1;
	t.lease_expired = 1;
	round_trip(&t);
}

Test(codec, round_trip_succeeded)
{
	struct task t = succeeded();
	round_trip(&t);
}

Test(codec, round_trip_failed_with_error)
{
	struct task t = failed();
	round_trip(&t);
}

Test(codec, round_trip_canceled_with_canceled_by)
{
	struct task t = canceled();
	round_trip(&t);
}

Test(codec, round_trip_canceled_while_enqueued)
{
	struct task t = base_task(TASK_CANCELED);

	t.finished_at = INT64_C(1628605760000000);
	t.canceled_by = 0;
	round_trip(&t);
}

Test(codec, round_trip_null_index)
{
	struct task t = null_index();
	size_t len;
	unsigned char *buf = encode(&t, &len);
	struct task got;

	cr_assert_eq(codec_decode(buf, len, &got), 0);
	cr_assert_null(got.index_uid.ptr, "a null index must stay null");
	cr_assert_eq(got.index_uid.len, 0);
	free(buf);
	round_trip(&t);
}

Test(codec, round_trip_limits)
{
	char index[TASK_INDEX_MAX], type[TASK_TYPE_MAX];
	size_t dlen = 1 << 20;
	char *details = malloc(dlen);
	struct task t = failed();

	cr_assert_not_null(details);
	memset(index, 'i', sizeof(index));
	memset(type, 'T', sizeof(type));
	type[0] = 't';
	memset(details, ' ', dlen);
	details[0] = '{';
	details[dlen - 1] = '}';
	t.index_uid = (struct task_str){ index, sizeof(index) };
	t.type = (struct task_str){ type, sizeof(type) };
	t.details = (struct task_str){ details, dlen };
	t.started_at = 1;
	t.finished_at = INT64_C(253402300799999999);	/* 9999-12-31T23:59:59.999999Z */
	t.canceled_by = TASK_NO_UID - 1;
	round_trip(&t);
	free(details);
}

/* Times the writer cannot make are refused: a duration would overflow on them. */
Test(codec, out_of_range_times_refused)
{
	static const int64_t bad[] = { -5, INT64_MIN, INT64_C(253402300800000000), INT64_MAX };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct task t = failed(), got;
		size_t len;
		t.started_at = bad[i];
		unsigned char *buf = encode(&t, &len);
		cr_assert_eq(codec_decode(buf, len, &got), LMT_ECORRUPT, "started_at %lld",
		    (long long)bad[i]);
		free(buf);
	}
}

/* Names outside their alphabets are refused: the renderer prints the code in a link. */
Test(codec, names_outside_their_alphabets_refused)
{
	struct task t = failed(), got;
	size_t len;
	unsigned char *buf;

	t.error_code = (struct task_str){ "bad\"code", 8 };
	buf = encode(&t, &len);
	cr_assert_eq(codec_decode(buf, len, &got), LMT_ECORRUPT);
	free(buf);
	t = failed();
	t.index_uid = (struct task_str){ "a b", 3 };
	buf = encode(&t, &len);
	cr_assert_eq(codec_decode(buf, len, &got), LMT_ECORRUPT);
	free(buf);
}

Test(codec, record_starts_with_version)
{
	struct task t = enqueued();
	size_t len;
	unsigned char *buf = encode(&t, &len);

	cr_assert_eq(buf[0], CODEC_VERSION);
	free(buf);
}

Test(codec, every_truncation_refused)
{
	for (size_t k = 0; k < NEVERY; k++) {
		struct task t = every[k](), got;
		size_t len;
		unsigned char *buf = encode(&t, &len);

		for (size_t cut = 0; cut < len; cut++) {
			/* A copy of exactly cut bytes, so a read past it is an error under ASan. */
			unsigned char *short_buf = malloc(cut ? cut : 1);
			cr_assert_not_null(short_buf);
			memcpy(short_buf, buf, cut);
			cr_expect_eq(codec_decode(short_buf, cut, &got), LMT_ECORRUPT,
			    "task %zu cut to %zu of %zu bytes must be refused", k, cut, len);
			free(short_buf);
		}
		free(buf);
	}
}

Test(codec, every_flipped_byte_detected)
{
	static const unsigned char masks[] = { 0x01, 0x10, 0x80, 0xff };

	for (size_t k = 0; k < NEVERY; k++) {
		struct task t = every[k](), got;
		size_t len;
		unsigned char *buf = encode(&t, &len);

		for (size_t i = 0; i < len; i++) {
			for (size_t m = 0; m < sizeof(masks); m++) {
				buf[i] ^= masks[m];
				cr_expect_eq(codec_decode(buf, len, &got), LMT_ECORRUPT,
				    "task %zu, byte %zu ^ 0x%02x must be detected", k, i, masks[m]);
				buf[i] ^= masks[m];
			}
		}
		cr_assert_eq(codec_decode(buf, len, &got), 0, "the restored record decodes again");
		free(buf);
	}
}

Test(codec, extra_trailing_byte_refused)
{
	for (size_t k = 0; k < NEVERY; k++) {
		struct task t = every[k](), got;
		size_t len;
		unsigned char *buf = encode(&t, &len);

		buf[len] = '}';
		cr_expect_eq(codec_decode(buf, len + 1, &got), LMT_ECORRUPT, "task %zu + 1 byte", k);
		/* Also with a checksum that covers the extra byte: the lengths must add up. */
		reseal(buf, len + 1);
		cr_expect_eq(codec_decode(buf, len + 1, &got), LMT_ECORRUPT,
		    "task %zu + 1 byte, resealed", k);
		free(buf);
	}
}

Test(codec, reseal_matches_the_codec)
{
	struct task t = failed(), got;
	size_t len;
	unsigned char *buf = encode(&t, &len);

	/* Guards the tests below: a resealed, unchanged record still decodes. */
	memset(buf + 4, 0, 4);
	reseal(buf, len);
	cr_assert_eq(codec_decode(buf, len, &got), 0);
	free(buf);
}

Test(codec, wrong_version_refused)
{
	static const unsigned char versions[] = { 0, CODEC_VERSION + 1, CODEC_VERSION_META,
	    CODEC_VERSION_BATCH_META + 1, CODEC_VERSION + 16, 0xff };
	struct task t = succeeded(), got;
	size_t len;
	unsigned char *buf = encode(&t, &len);

	for (size_t i = 0; i < sizeof(versions); i++) {
		buf[0] = versions[i];
		reseal(buf, len);
		cr_expect_eq(codec_decode(buf, len, &got), LMT_ECORRUPT, "version %u", versions[i]);
	}
	free(buf);
}

/* Encodes t as it is (the encoder does not validate) and expects the decoder to refuse it. */
static void
expect_refused(const struct task *t, const char *what)
{
	size_t len;
	unsigned char *buf = encode(t, &len);
	struct task got;

	cr_expect_eq(codec_decode(buf, len, &got), LMT_ECORRUPT, "%s must be refused", what);
	free(buf);
}

Test(codec, impossible_values_refused)
{
	char index[TASK_INDEX_MAX + 1];
	struct task t;

	t = enqueued();
	t.status = TASK_NSTATUS;
	expect_refused(&t, "a status past the last");
	t = failed();
	t.error_type = TASK_NERRTYPE;
	expect_refused(&t, "an error type past the last");
	t = enqueued();
	t.type = STR("");
	expect_refused(&t, "an empty type");
	t = enqueued();
	memset(index, 'i', sizeof(index));
	t.index_uid = (struct task_str){ index, sizeof(index) };
	expect_refused(&t, "a 401-byte index");
}

Test(codec, details_must_be_an_object)
{
	struct task t = enqueued();

	t.details = STR("[1,2]");
	expect_refused(&t, "details [1,2]");
	t.details = STR("{\"a\":1");
	expect_refused(&t, "details without a closing brace");
	t.details = STR("\"a\":1}");
	expect_refused(&t, "details without an opening brace");
	t.details = STR("{");
	expect_refused(&t, "one-byte details");
	t.details = STR("");
	expect_refused(&t, "empty details");
}

/* Custom metadata (Meilisearch's customMetadata): versions 3 and 4, only when there is some. */
Test(codec, custom_metadata_round_trips_in_its_versions)
{
	static const struct { int batch; const char *meta; unsigned char version; } cases[] = {
		{ 0, NULL, CODEC_VERSION }, { 1, NULL, CODEC_VERSION_BATCH },
		{ 0, "ticket-42 \xc3\xa9 \"q\"", CODEC_VERSION_META },
		{ 1, "ticket-42", CODEC_VERSION_BATCH_META }, { 0, "", CODEC_VERSION_META },
	};

	for (size_t k = 0; k < NEVERY; k++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct task t = every[k](), got;
			size_t len;

			t.has_batch = (unsigned)cases[i].batch;
			t.batch_uid = 99;
			if (cases[i].meta)
				t.custom_metadata = (struct task_str){ cases[i].meta, strlen(cases[i].meta) };
			unsigned char *buf = encode(&t, &len);
			cr_assert_eq(buf[0], cases[i].version, "task %zu case %zu: version %u", k, i,
			    buf[0]);
			cr_assert_eq(codec_decode(buf, len, &got), 0, "task %zu case %zu", k, i);
			expect_same(&got, &t);
			cr_assert_eq(got.has_batch, t.has_batch);
			cr_assert_eq(got.batch_uid, t.has_batch ? 99u : 0u);
			/* Every cut and every extra byte is refused. */
			for (size_t cut = 0; cut < len; cut++)
				cr_expect_eq(codec_decode(buf, cut, &got), LMT_ECORRUPT, "cut %zu", cut);
			free(buf);
		}
	}
}

/* A record written before custom metadata existed (0.1.0, 0.2.0: versions 1 and 2) has
 * none; the bytes are the ones those releases wrote (the format did not change). */
Test(codec, records_of_earlier_releases_have_no_metadata)
{
	struct task t = succeeded(), got;
	size_t len;
	unsigned char *buf = encode(&t, &len);

	cr_assert_eq(buf[0], CODEC_VERSION);
	memset(&got, 0xa5, sizeof(got));
	cr_assert_eq(codec_decode(buf, len, &got), 0);
	cr_assert_null(got.custom_metadata.ptr);
	free(buf);
}

Test(codec, bad_custom_metadata_refused)
{
	struct task t = enqueued(), got;
	size_t len;

	t.custom_metadata = STR("ok\xff");
	expect_refused(&t, "metadata that is not UTF-8");
	t.custom_metadata = STR("ok");
	unsigned char *buf = encode(&t, &len);
	/* Its length (a u32 at 22) says one byte more than there is. */
	buf[22] = 3;
	reseal(buf, len);
	cr_expect_eq(codec_decode(buf, len, &got), LMT_ECORRUPT);
	free(buf);
}

/* Scheduling (versions 5 to 16): a delay, a priority, attempts and a retry policy, with the
 * last attempt's error on a task that is not failed; and a worker's progress. */
Test(codec, scheduling_and_progress_round_trip)
{
	for (size_t k = 0; k < NEVERY; k++) {
		for (unsigned x = 0; x < 16; x++) {
			struct task t = every[k](), got;
			size_t len;

			t.has_batch = (x & 1) != 0;
			t.batch_uid = t.has_batch ? 7 : 0;
			if (x & 2)
				t.custom_metadata = STR("m");
			if (x & 4) {
				t.not_before = INT64_C(1767225600000000);
				t.priority = -5;
				t.attempts = 2;
				t.max_attempts = 5;
				t.backoff_ms = 1500;
				if (t.status != TASK_FAILED) {
					t.error_code = STR("worker_failed");
					t.error_message = STR("exit 3");
					t.error_type = TASK_ERR_INTERNAL;
				}
			}
			if (x & 8) {
				t.progress_done = 40;
				t.progress_total = 100;
				t.progress_step = STR("indexing \xc3\xa9");
			}
			unsigned char *buf = encode(&t, &len);
			cr_assert_eq(buf[0], CODEC_VERSION + x, "task %zu x %u: version %u", k, x, buf[0]);
			cr_assert_eq(codec_decode(buf, len, &got), 0, "task %zu x %u", k, x);
			expect_same(&got, &t);
			cr_assert_eq(got.not_before, t.not_before);
			cr_assert_eq(got.priority, t.priority);
			cr_assert_eq(got.attempts, t.attempts);
			cr_assert_eq(got.max_attempts, t.max_attempts);
			cr_assert_eq(got.backoff_ms, t.backoff_ms);
			cr_assert_eq(got.progress_done, t.progress_done);
			cr_assert_eq(got.progress_total, t.progress_total);
			cr_assert_eq(got.progress_step.len, t.progress_step.len);
			if (t.progress_step.len)
				cr_assert(memcmp(got.progress_step.ptr, t.progress_step.ptr,
				    t.progress_step.len) == 0);
			cr_assert_eq(got.error_code.ptr != NULL, t.error_code.ptr != NULL &&
			    (t.status == TASK_FAILED || (x & 4)), "task %zu x %u: error", k, x);
			for (size_t cut = 0; cut < len; cut++)
				cr_expect_eq(codec_decode(buf, cut, &got), LMT_ECORRUPT, "cut %zu", cut);
			free(buf);
		}
	}
}

/* A task without scheduling that is not failed never carries an error; progress must be
 * a fraction of a positive total; a step is UTF-8. */
Test(codec, impossible_scheduling_and_progress_refused)
{
	struct task t = enqueued();

	t.progress_total = 10;
	t.progress_done = 11;
	expect_refused(&t, "progress past its total");
	t.progress_done = 1;
	t.progress_step = STR("\xff");
	expect_refused(&t, "a step that is not UTF-8");
	t = enqueued();
	t.max_attempts = TASK_ATTEMPTS_MAX + 1;
	expect_refused(&t, "max attempts over the limit");
	t = enqueued();
	t.not_before = -1;
	expect_refused(&t, "a negative not-before");

	/* An error on an enqueued task is kept only with scheduling: without it the encoder
	 * writes none, and a record that has one anyway is refused. */
	size_t len;
	struct task got;
	t = enqueued();
	t.error_code = STR("x");
	t.error_message = STR("y");
	unsigned char *buf = encode(&t, &len);
	cr_assert_eq(codec_decode(buf, len, &got), 0);
	cr_assert_null(got.error_code.ptr);
	buf[2] |= 1 << 6;	/* F_ERROR, the six bytes it announces missing */
	reseal(buf, len);
	cr_assert_eq(codec_decode(buf, len, &got), LMT_ECORRUPT);
	free(buf);
}
