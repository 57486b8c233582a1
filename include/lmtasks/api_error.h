/* An error answer of the HTTP API (status, Meilisearch code and type, message), filled by the
 * modules that check a request (route, auth), made from a query's refusal (query, compat),
 * and rendered by the api. */
#ifndef LMTASKS_API_ERROR_H
#define LMTASKS_API_ERROR_H

#include <json-c/printbuf.h>

struct api_error {
	int status;
	const char *code;
	const char *type;
	char message[1536];
};

/* Fills e and returns e->status; the message is formatted like printf. */
__attribute__((format(printf, 5, 6)))
int api_error_set(struct api_error *e, int status, const char *code, const char *type,
    const char *fmt, ...);

struct query_error;
/* Fills e with the 400 of a refused query parameter (query_parse(), compat_check_types());
 * returns 400. */
int api_error_query(struct api_error *e, const struct query_error *why);

/* Appends e's error body ({"message","code","type","link"}) to pb; 0 or ENOMEM. */
int api_error_render(struct printbuf *pb, const struct api_error *e);

#endif
