/* What the fuzz targets share: libFuzzer's entry points, the invariant check, and a
 * strict JSON parser to hold the library's output to. */
#ifndef LMTASKS_FUZZ_H
#define LMTASKS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: invariant failed: %s\n", \
    __FILE__, __LINE__, #cond); abort(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_tokener *tok;

/* Makes the strict tokener; called from LLVMFuzzerInitialize(). */
static inline void
fuzz_json_init(void)
{
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
}

/* Parses exactly len bytes as one JSON value; NULL when they are not. */
static inline json_object *
parse_json(const char *s, size_t len)
{
	json_object *o;

	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

#endif
