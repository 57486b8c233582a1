/* Task details and NDJSON lines: JSON text checked and normalised once, on the write side. */
#ifndef LMTASKS_DETAILS_H
#define LMTASKS_DETAILS_H

#include <stddef.h>

#include <json-c/json.h>

/* Details (and a whole NDJSON line) may nest this many levels deep; a tokener made for
 * them must allow one more than that (json-c counts the value inside the deepest level),
 * json-c's default being 32. */
#define DETAILS_DEPTH_MAX 64

/*
 * Parses len bytes as exactly one JSON value (UTF-8 checked, nothing but white
 * space after it) with a tokener the caller owns and may reuse.  On success *out
 * holds a new reference (json_object_put() it); on failure *why is a static
 * sentence saying what is wrong, and the result is LMT_EINVAL.
 */
int details_parse(json_tokener *tok, const char *text, size_t len, json_object **out,
    const char **why);

/* Checks that text starts with one strict JSON value; returns the position after it and
 * the white space that follows, or NULL when it is not JSON. */
const char *details_strict_end(const char *text, size_t len);

/*
 * Parses text as a JSON object and writes its compact form to *out (malloc'd,
 * NUL-terminated, *outlen bytes; the caller frees it).  Returns 0 or LMT_EINVAL
 * with *why as above.
 */
int details_normalize(const char *text, size_t len, char **out, size_t *outlen, const char **why);

/*
 * Merges the keys of the object add into the object base (add wins) and writes the
 * compact result to *out as details_normalize() does.
 */
int details_merge(const char *base, size_t baselen, const char *add, size_t addlen, char **out,
    size_t *outlen, const char **why);

/* Returns obj's compact text, borrowed from obj (valid until obj is released). */
const char *details_compact(json_object *obj, size_t *len);

#endif
