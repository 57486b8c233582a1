/* Statuses, transitions and name validation: the rules of SPEC §1. */
#include "config.h"

#include <string.h>

#include "lmtasks/error.h"
#include "lmtasks/task.h"

static const char *const status_names[TASK_NSTATUS] = {
	"enqueued", "processing", "succeeded", "failed", "canceled",
};

static const char *const error_type_names[TASK_NERRTYPE] = {
	"invalid_request", "internal", "auth",
};

const char *
task_status_name(enum task_status s)
{
	if ((unsigned)s >= TASK_NSTATUS)
		return NULL;
	return status_names[s];
}

int
task_status_parse(const char *s, size_t len, enum task_status *out)
{
	for (int i = 0; i < TASK_NSTATUS; i++) {
		if (strlen(status_names[i]) == len && memcmp(status_names[i], s, len) == 0) {
			*out = (enum task_status)i;
			return 0;
		}
	}
	return LMT_EINVAL;
}

const char *
task_error_type_name(enum task_error_type t)
{
	if ((unsigned)t >= TASK_NERRTYPE)
		return NULL;
	return error_type_names[t];
}

int
task_error_type_parse(const char *s, enum task_error_type *out)
{
	for (int i = 0; i < TASK_NERRTYPE; i++) {
		if (strcmp(error_type_names[i], s) == 0) {
			*out = (enum task_error_type)i;
			return 0;
		}
	}
	return LMT_EINVAL;
}

int
task_status_terminal(enum task_status s)
{
	return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_CANCELED;
}

int
task_transition_allowed(enum task_status from, enum task_status to)
{
	switch (from) {
	case TASK_ENQUEUED:
		return to == TASK_PROCESSING || to == TASK_CANCELED;
	case TASK_PROCESSING:
		return to == TASK_SUCCEEDED || to == TASK_FAILED || to == TASK_CANCELED;
	default:
		return 0;
	}
}

/* Character classes of the names, one lookup per byte (decoding checks them on every read). */
enum { C_ALNUM = 1, C_INDEX = 2, C_CODE = 4 };

static const unsigned char classes[256] = {
#define R(a, b, v) [a] = v, [a + 1] = v, [a + 2] = v, [a + 3] = v, [a + 4] = v, [a + 5] = v, \
	[a + 6] = v, [a + 7] = v, [a + 8] = v, [a + 9] = v
	R('0', 0, C_ALNUM | C_INDEX | C_CODE),
	R('A', 0, C_ALNUM | C_INDEX), R('A' + 10, 0, C_ALNUM | C_INDEX),
	['U'] = C_ALNUM | C_INDEX, ['V'] = C_ALNUM | C_INDEX, ['W'] = C_ALNUM | C_INDEX,
	['X'] = C_ALNUM | C_INDEX, ['Y'] = C_ALNUM | C_INDEX, ['Z'] = C_ALNUM | C_INDEX,
	R('a', 0, C_ALNUM | C_INDEX | C_CODE), R('a' + 10, 0, C_ALNUM | C_INDEX | C_CODE),
	['u'] = C_ALNUM | C_INDEX | C_CODE, ['v'] = C_ALNUM | C_INDEX | C_CODE,
	['w'] = C_ALNUM | C_INDEX | C_CODE, ['x'] = C_ALNUM | C_INDEX | C_CODE,
	['y'] = C_ALNUM | C_INDEX | C_CODE, ['z'] = C_ALNUM | C_INDEX | C_CODE,
	['_'] = C_INDEX | C_CODE, ['-'] = C_INDEX,
#undef R
};

/* Whether every byte of s has class c. */
static int
all_of(const char *s, size_t len, unsigned c)
{
	unsigned acc = c;

	for (size_t i = 0; i < len; i++)
		acc &= classes[(unsigned char)s[i]];
	return acc == c;
}

int
task_index_uid_valid(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > TASK_INDEX_MAX)
		return 0;
	return all_of(s, len, C_INDEX);
}

int
task_index_match(struct task_str pat, struct task_str index)
{
	if (pat.len == 1 && pat.ptr[0] == '*')
		return 1;
	if (index.ptr == NULL)
		return 0;
	if (pat.len > 0 && pat.ptr[pat.len - 1] == '*')
		return index.len >= pat.len - 1 && memcmp(index.ptr, pat.ptr, pat.len - 1) == 0;
	return index.len == pat.len && memcmp(index.ptr, pat.ptr, pat.len) == 0;
}

int
task_type_valid(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > TASK_TYPE_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	return all_of(s + 1, len - 1, C_ALNUM);
}

int
task_error_code_valid(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > TASK_CODE_MAX)
		return 0;
	return all_of(s, len, C_CODE);
}

int
task_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + len;

	while (s < end) {
		unsigned char c = *s;
		size_t n;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if ((size_t)(end - s) <= n)
			return 0;
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		/* Overlong forms, surrogates and code points past U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

void
task_init(struct task *t, const char *index, size_t ilen, const char *type, size_t tlen,
    const char *details, size_t dlen)
{
	memset(t, 0, sizeof(*t));
	t->status = TASK_ENQUEUED;
	t->canceled_by = TASK_NO_UID;
	t->error_type = TASK_ERR_INTERNAL;
	t->index_uid.ptr = index;
	t->index_uid.len = ilen;
	t->type.ptr = type;
	t->type.len = tlen;
	t->details.ptr = details;
	t->details.len = dlen;
}

int
task_progress_valid(uint32_t done, uint32_t total, const char *step, size_t len)
{
	return total > 0 && done <= total && len <= TASK_STEP_MAX &&
	    (len == 0 || (step != NULL && task_utf8_valid(step, len)));
}

/* The whole percentage point a report stands at (0 to 100). */
static uint32_t
point(const struct task *t)
{
	return (uint32_t)((uint64_t)t->progress_done * 100 / t->progress_total);
}

int
task_progress_moved(const struct task *prev, const struct task *next)
{
	if (next->progress_total == 0)
		return prev->progress_total != 0;
	if (prev->progress_total == 0 || point(prev) != point(next))
		return 1;
	return prev->progress_step.len != next->progress_step.len ||
	    (next->progress_step.len &&
	     memcmp(prev->progress_step.ptr, next->progress_step.ptr, next->progress_step.len) != 0);
}
