/* HTTP errors: one struct filled where a request is checked, one body for it. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "lmtasks/api_error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"

int
api_error_set(struct api_error *e, int status, const char *code, const char *type,
    const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	e->code = code;
	e->type = type;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return status;
}

/* The body is render_error()'s, so the CLI and HTTP spell errors alike. */
int
api_error_render(struct printbuf *pb, const struct api_error *e)
{
	return render_error(pb, e->message, e->code, e->type);
}

/* A refused parameter is the client's mistake: 400, with the query's code and message. */
int
api_error_query(struct api_error *e, const struct query_error *why)
{
	return api_error_set(e, 400, why->code, "invalid_request", "%s", why->message);
}
