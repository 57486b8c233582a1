/* Details JSON: parsed and validated by json-c once, stored as compact text. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/task.h"

int
details_parse(json_tokener *tok, const char *text, size_t len, json_object **out,
    const char **why)
{
	json_object *obj;
	size_t end;

	if (len > TASK_DETAILS_MAX) {
		*why = "it is larger than 16 MiB";
		return LMT_EINVAL;
	}
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
	json_tokener *tok = json_tokener_new();

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
