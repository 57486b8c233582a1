/* Details JSON: parsed and validated by json-c once, stored as compact text. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/task.h"

/*
 * A strict RFC 8259 check run before json-c, which accepts more than JSON (NaN,
 * Infinity, single quotes) and would store what no client can parse.  Returns the
 * position after one value, or NULL with *why set.
 */
#define DEPTH_MAX DETAILS_DEPTH_MAX

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *
strict_value(const char *p, const char *end, int depth, const char **why);

static const char *
strict_string(const char *p, const char *end, const char **why)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20) {
			*why = "a string holds a raw control character";
			return NULL;
		}
		if (c == '\\') {
			if (++p >= end)
				break;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++) {
					if (p + i >= end || !strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) {
						*why = "a string has a malformed \\u escape";
						return NULL;
					}
				}
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || !*p) {
				*why = "a string has an unknown escape";
				return NULL;
			}
		}
	}
	*why = "a string is not closed";
	return NULL;
}

static const char *
strict_number(const char *p, const char *end, const char **why)
{
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		goto bad;
	if (p < end && *p == '.') {
		if (++p >= end || *p < '0' || *p > '9')
			goto bad;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			goto bad;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return p;
bad:
	*why = "a value is not JSON (numbers like 1, -2.5e3; no NaN or Infinity)";
	return NULL;
}

static const char *
strict_container(const char *p, const char *end, int depth, const char **why)
{
	char close = *p == '{' ? '}' : ']';
	int object = *p == '{';

	if (depth >= DEPTH_MAX) {
		*why = "it nests deeper than 64 levels";
		return NULL;
	}
	p = skip_ws(p + 1, end);
	if (p < end && *p == close)
		return p + 1;
	for (;;) {
		if (object) {
			if (p >= end || *p != '"') {
				*why = "an object key is not a double-quoted string";
				return NULL;
			}
			if ((p = strict_string(p, end, why)) == NULL)
				return NULL;
			p = skip_ws(p, end);
			if (p >= end || *p != ':') {
				*why = "an object key is not followed by ':'";
				return NULL;
			}
			p = skip_ws(p + 1, end);
		}
		if ((p = strict_value(p, end, depth + 1, why)) == NULL)
			return NULL;
		p = skip_ws(p, end);
		if (p < end && *p == close)
			return p + 1;
		if (p >= end || *p != ',') {
			*why = object ? "an object is not closed or lacks a ','" :
			    "an array is not closed or lacks a ','";
			return NULL;
		}
		p = skip_ws(p + 1, end);
	}
}

static const char *
strict_value(const char *p, const char *end, int depth, const char **why)
{
	static const char *const words[] = { "true", "false", "null" };

	p = skip_ws(p, end);
	if (p >= end) {
		*why = "it ends in the middle of a value";
		return NULL;
	}
	if (*p == '{' || *p == '[')
		return strict_container(p, end, depth, why);
	if (*p == '"')
		return strict_string(p, end, why);
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(end - p) >= n && memcmp(p, words[i], n) == 0)
			return p + n;
	}
	return strict_number(p, end, why);
}

const char *
details_strict_end(const char *text, size_t len)
{
	const char *why, *after = strict_value(text, text + len, 0, &why);

	return after ? skip_ws(after, text + len) : NULL;
}

int
details_parse(json_tokener *tok, const char *text, size_t len, json_object **out,
    const char **why)
{
	json_object *obj;
	const char *after;
	size_t end;

	if (len > TASK_DETAILS_MAX) {
		*why = "it is larger than 16 MiB";
		return LMT_EINVAL;
	}
	if (skip_ws(text, text + len) == text + len) {
		*why = "it is empty";
		return LMT_EINVAL;
	}
	if ((after = strict_value(text, text + len, 0, why)) == NULL)
		return LMT_EINVAL;
	if (skip_ws(after, text + len) != text + len) {
		*why = "there is more after the first JSON value";
		return LMT_EINVAL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue || (obj == NULL && jerr == json_tokener_success)) {
		*why = len == 0 ? "it is empty" : "it ends in the middle of a value";
		return LMT_EINVAL;
	}
	if (jerr != json_tokener_success) {
		*why = json_tokener_error_desc(jerr);
		return LMT_EINVAL;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (!strchr(" \t\r\n", text[end])) {
			json_object_put(obj);
			*why = "there is more after the first JSON value";
			return LMT_EINVAL;
		}
	}
	*out = obj;
	return 0;
}

const char *
details_compact(json_object *obj, size_t *len)
{
	return json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

/* Copies obj's compact text to a new buffer, or fails unless obj is an object. */
static int
finish(json_object *obj, char **out, size_t *outlen, const char **why)
{
	size_t len;
	const char *text;

	if (!json_object_is_type(obj, json_type_object)) {
		*why = "it is not a JSON object";
		return LMT_EINVAL;
	}
	text = details_compact(obj, &len);
	if (text == NULL || (*out = malloc(len + 1)) == NULL)
		return ENOMEM;
	memcpy(*out, text, len + 1);
	*outlen = len;
	return 0;
}

static json_tokener *
new_tokener(void)
{
	json_tokener *tok = json_tokener_new_ex(DETAILS_DEPTH_MAX + 1);

	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	return tok;
}

int
details_normalize(const char *text, size_t len, char **out, size_t *outlen, const char **why)
{
	json_tokener *tok = new_tokener();
	json_object *obj;
	int rc;

	if (tok == NULL)
		return ENOMEM;
	if ((rc = details_parse(tok, text, len, &obj, why)) == 0) {
		rc = finish(obj, out, outlen, why);
		json_object_put(obj);
	}
	json_tokener_free(tok);
	return rc;
}

int
details_merge(const char *base, size_t baselen, const char *add, size_t addlen, char **out,
    size_t *outlen, const char **why)
{
	json_tokener *tok = new_tokener();
	json_object *b = NULL, *a = NULL;
	int rc;

	if (tok == NULL)
		return ENOMEM;
	if ((rc = details_parse(tok, base, baselen, &b, why)) != 0)
		goto out;
	if ((rc = details_parse(tok, add, addlen, &a, why)) != 0)
		goto out;
	if (!json_object_is_type(a, json_type_object) || !json_object_is_type(b, json_type_object)) {
		*why = "it is not a JSON object";
		rc = LMT_EINVAL;
		goto out;
	}
	json_object_object_foreach(a, key, val) {
		/* object_add takes over a reference; a keeps its own. */
		if (json_object_object_add(b, key, json_object_get(val)) != 0) {
			json_object_put(val);
			rc = ENOMEM;
			goto out;
		}
	}
	rc = finish(b, out, outlen, why);
out:
	json_object_put(a);
	json_object_put(b);
	json_tokener_free(tok);
	return rc;
}
