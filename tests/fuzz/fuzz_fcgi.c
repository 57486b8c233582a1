/* libFuzzer target: whole FastCGI connections, records and all, through the responder's
 * connection handler (conn.c) and on to the API with no store.
 *
 * The first byte sets how the rest is cut into reads (1 to 256 bytes each), as a socket
 * may deliver it.  Checked: a request is announced only with NUL-ended parameters within
 * the limits, every answer is well-framed records (version 1, known types, lengths that
 * add up, one FCGI_END_REQUEST per answer), buffered input and output stay bounded, and a
 * closed connection stays closed.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fastcgi.h>

#include "fuzz.h"

#include "lmtasks/api.h"
#include "lmtasks/conn.h"
#include "lmtasks/error.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* Walks the buffered output record by record; returns how many FCGI_END_REQUESTs. */
static int
check_output(conn *c)
{
	const unsigned char *p = conn_output(c);
	size_t n = conn_pending(c), i = 0;
	int ends = 0;

	while (i < n) {
		CHECK(n - i >= FCGI_HEADER_LEN);
		CHECK(p[i] == FCGI_VERSION_1);
		int type = p[i + 1];
		size_t len = (size_t)p[i + 4] << 8 | p[i + 5];
		CHECK(type == FCGI_STDOUT || type == FCGI_END_REQUEST ||
		    type == FCGI_GET_VALUES_RESULT || type == FCGI_UNKNOWN_TYPE);
		CHECK(n - i - FCGI_HEADER_LEN >= len + p[i + 6]);
		if (type == FCGI_END_REQUEST) {
			CHECK(len == 8);
			ends++;
		}
		i += FCGI_HEADER_LEN + len + p[i + 6];
	}
	conn_drop_output(c);
	return ends;
}

/* Answers the request c holds as the responder would, with no store (503 or a refusal). */
static enum conn_state
answer(conn *c, struct printbuf *body)
{
	struct api_request rq = {
		conn_param(c, CONN_METHOD), conn_param(c, CONN_REQUEST_URI),
		conn_param(c, CONN_SCRIPT_NAME), conn_param(c, CONN_PATH_INFO),
		conn_param(c, CONN_QUERY_STRING), conn_param(c, CONN_AUTHORIZATION),
		conn_param(c, CONN_IF_NONE_MATCH),
	};
	struct api_reader rd = { NULL, LMT_ENOSTORE, "/nonexistent", NULL, NULL, NULL };
	struct api_response rs;
	size_t total = 0;
	char head[256];

	for (int k = 0; k < CONN_NPARAMS; k++) {
		const char *v = conn_param(c, (enum conn_param)k);
		if (v)
			total += strlen(v);
	}
	CHECK(total <= CONN_PARAMS_MAX);
	printbuf_reset(body);
	api_handle(&rq, &rd, body, &rs);
	CHECK(rs.status != 200);
	size_t hl = api_headers(&rs, (size_t)body->bpos, head, sizeof(head));
	return conn_answer(c, head, hl, body->buf, rs.head ? 0 : (size_t)body->bpos, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct printbuf *body = printbuf_new();
	conn *c;
	size_t i = 1, step;
	int requests = 0, ends = 0;

	if (size < 1 || body == NULL || conn_new(-1, 0, &c) != 0) {
		printbuf_free(body);
		return 0;
	}
	step = (size_t)data[0] + 1;
	while (i < size) {
		size_t n = size - i < step ? size - i : step;
		enum conn_state st = conn_feed(c, data + i, n, 0);
		i += n;
		/* Answer, send, and frame what was sent ahead, until the input is needed. */
		for (int rounds = 0; st != CONN_MORE && st != CONN_CLOSE; rounds++) {
			CHECK(rounds < 100000);
			if (st == CONN_REQUEST) {
				requests++;
				st = answer(c, body);
			}
			CHECK(conn_pending(c) <= 8 * 65536 + CONN_PARAMS_MAX);
			ends += check_output(c);
			if (st != CONN_CLOSE)
				st = conn_feed(c, NULL, 0, 0);
		}
		if (st == CONN_CLOSE) {
			CHECK(conn_feed(c, NULL, 0, 0) == CONN_CLOSE);	/* closed stays closed */
			break;
		}
	}
	ends += check_output(c);
	CHECK(ends >= requests);
	conn_free(c);
	printbuf_free(body);
	return 0;
}
