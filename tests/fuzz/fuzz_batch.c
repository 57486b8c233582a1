/* libFuzzer target: NDJSON batches for `lmtasks enqueue --batch`.
 *
 * A batch that parses must hold tasks a writer may store: valid index uids and types,
 * enqueued, details a compact JSON object, a priority and a time in their bounds; one task
 * per non-blank line.  A refused
 * batch must name a line (1-based, within the input) and say why, in one NUL-terminated
 * string that fits whylen.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"

#include "lmtasks/batch.h"
#include "lmtasks/error.h"
#include "lmtasks/task.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_json_init();
	return 0;
}

/* The lines that hold something other than blanks (what batch_parse() skips). */
static size_t
count_lines(const char *s, size_t len, size_t *nonblank)
{
	size_t lines = 0;

	*nonblank = 0;
	for (const char *p = s, *end = s + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		int blank = 1;
		lines++;
		for (const char *q = p; q < e; q++)
			blank &= *q == ' ' || *q == '\t' || *q == '\r';
		*nonblank += !blank;
		p = e + 1;
	}
	return lines;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct batch *b = NULL;
	size_t line = 12345, nonblank, lines;
	char why[256];
	char *copy;
	int rc;

	if (size > (1u << 20))
		return 0;
	/* An exact-size heap copy: no NUL after it, so a read past the end is caught. */
	copy = malloc(size ? size : 1);
	CHECK(copy != NULL);
	memcpy(copy, text, size);
	lines = count_lines(copy, size, &nonblank);
	memset(why, 'x', sizeof(why));
	/* A small whylen now and then: the reason must still be cut, not overflow. */
	size_t whylen = size > 0 && data[0] == '\n' ? 7 : sizeof(why) - 16;
	rc = batch_parse(copy, size, &b, &line, why, whylen);
	CHECK(rc == 0 || rc == LMT_EINVAL || rc == ENOMEM);
	if (rc == 0) {
		struct task *t = batch_tasks(b);
		CHECK(batch_count(b) == nonblank);
		for (size_t i = 0; i < batch_count(b); i++) {
			CHECK(t[i].status == TASK_ENQUEUED);
			CHECK(t[i].index_uid.ptr != NULL &&
			    task_index_uid_valid(t[i].index_uid.ptr, t[i].index_uid.len));
			CHECK(task_type_valid(t[i].type.ptr, t[i].type.len));
			CHECK(t[i].details.ptr != NULL && t[i].details.len >= 2);
			CHECK(t[i].details.len <= TASK_DETAILS_MAX);
			json_tokener_reset(tok);
			json_object *o = json_tokener_parse_ex(tok, t[i].details.ptr,
			    (int)t[i].details.len);
			CHECK(o != NULL && json_tokener_get_error(tok) == json_tokener_success);
			CHECK(json_tokener_get_parse_end(tok) == t[i].details.len);
			CHECK(json_object_is_type(o, json_type_object));
			/* Compact: what the store keeps is json-c's plain form of itself. */
			size_t cl;
			const char *c = json_object_to_json_string_length(o,
			    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &cl);
			CHECK(cl == t[i].details.len && memcmp(c, t[i].details.ptr, cl) == 0);
			json_object_put(o);
			CHECK(t[i].started_at == 0 && t[i].finished_at == 0);
			/* A schedule a record can hold. */
			CHECK(t[i].priority >= TASK_PRIORITY_MIN && t[i].priority <= TASK_PRIORITY_MAX);
			CHECK(t[i].not_before >= 0 && t[i].not_before <= TASK_TIME_MAX);
		}
		batch_free(b);
	} else if (rc == LMT_EINVAL) {
		CHECK(line >= 1 && line <= lines);
		CHECK(memchr(why, '\0', whylen) != NULL);
		CHECK(why[0] != '\0');
		CHECK(why[whylen] == 'x');	/* nothing written past whylen */
	}
	free(copy);
	return 0;
}
