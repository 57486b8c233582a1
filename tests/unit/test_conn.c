/* The FastCGI framing (conn.c) fed bytes through conn_feed, with no socket: requests
 * announced with their parameters however the bytes are cut, management records answered,
 * the protocol's refusals sent, every broken record failing the connection with its reason,
 * and answers framed as records of at most 65535 bytes. */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <fastcgi.h>

#include "lmtasks/conn.h"

static conn *c;

static void
init(void)
{
	cr_assert_eq(conn_new(-1, 1000, &c), 0);
}

static void
fini(void)
{
	conn_free(c);
	c = NULL;
}

TestSuite(conn, .init = init, .fini = fini);

/* Bytes being built into records. */
struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		cr_assert_not_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Appends one record of type for request rid with n bytes of content and pad padding. */
static void
rec(struct buf *b, int type, unsigned rid, const void *p, size_t n, unsigned pad)
{
	unsigned char h[FCGI_HEADER_LEN] = {
		FCGI_VERSION_1, (unsigned char)type, (unsigned char)(rid >> 8), (unsigned char)rid,
		(unsigned char)(n >> 8), (unsigned char)n, (unsigned char)pad, 0
	};
	static const unsigned char zeros[255];

	cr_assert_leq(n, 65535);
	put(b, h, sizeof(h));
	if (n > 0)
		put(b, p, n);
	put(b, zeros, pad);
}

static void
begin(struct buf *b, unsigned rid, int role, int flags)
{
	unsigned char body[8] = { (unsigned char)(role >> 8), (unsigned char)role,
		(unsigned char)flags };

	rec(b, FCGI_BEGIN_REQUEST, rid, body, sizeof(body), 0);
}

/* Appends one name-value pair in FastCGI's encoding (1- or 4-byte lengths). */
static void
pair(struct buf *b, const char *name, const char *val)
{
	size_t len[2] = { strlen(name), strlen(val) };

	for (int i = 0; i < 2; i++) {
		if (len[i] < 0x80) {
			unsigned char l = (unsigned char)len[i];
			put(b, &l, 1);
		} else {
			unsigned char l[4] = { (unsigned char)(0x80 | len[i] >> 24),
				(unsigned char)(len[i] >> 16), (unsigned char)(len[i] >> 8),
				(unsigned char)len[i] };
			put(b, l, 4);
		}
	}
	put(b, name, len[0]);
	put(b, val, len[1]);
}

/* A whole GET request rid, keep-conn as asked. */
static void
request(struct buf *b, unsigned rid, int keep)
{
	struct buf pv = { 0 };

	begin(b, rid, FCGI_RESPONDER, keep ? FCGI_KEEP_CONN : 0);
	pair(&pv, "REQUEST_METHOD", "GET");
	pair(&pv, "SERVER_SOFTWARE", "test");
	pair(&pv, "REQUEST_URI", "/tasks?limit=2");
	pair(&pv, "QUERY_STRING", "limit=2");
	pair(&pv, "HTTP_AUTHORIZATION", "Bearer k");
	pair(&pv, "LMTASKS_DB", "/srv/tasks");
	pair(&pv, "REQUEST_METHOD", "POST");	/* the first of a name wins */
	rec(b, FCGI_PARAMS, rid, pv.p, pv.len, 3);
	rec(b, FCGI_PARAMS, rid, NULL, 0, 0);
	rec(b, FCGI_STDIN, rid, "x=1", 3, 5);
	rec(b, FCGI_STDIN, rid, NULL, 0, 0);
	free(pv.p);
}

static void
check_params(void)
{
	cr_assert_str_eq(conn_param(c, CONN_METHOD), "GET");
	cr_assert_str_eq(conn_param(c, CONN_REQUEST_URI), "/tasks?limit=2");
	cr_assert_str_eq(conn_param(c, CONN_QUERY_STRING), "limit=2");
	cr_assert_str_eq(conn_param(c, CONN_AUTHORIZATION), "Bearer k");
	cr_assert_str_eq(conn_param(c, CONN_LMTASKS_DB), "/srv/tasks");
	cr_assert_null(conn_param(c, CONN_PATH_INFO));
	cr_assert_null(conn_param(c, CONN_IF_NONE_MATCH));
}

/* One record of the output at *at: its type, request id, content; moves *at past it. */
static const unsigned char *
out_rec(size_t *at, int *type, unsigned *rid, size_t *len)
{
	const unsigned char *p = conn_output(c) + *at;

	cr_assert_geq(conn_pending(c) - *at, FCGI_HEADER_LEN, "a record header cut short");
	cr_assert_eq(p[0], FCGI_VERSION_1);
	*type = p[1];
	*rid = (unsigned)p[2] << 8 | p[3];
	*len = (size_t)p[4] << 8 | p[5];
	cr_assert_geq(conn_pending(c) - *at - FCGI_HEADER_LEN, *len + p[6],
	    "a record's content cut short");
	*at += FCGI_HEADER_LEN + *len + p[6];
	return p + FCGI_HEADER_LEN;
}

/* Checks the output is exactly one FCGI_END_REQUEST for rid with status, and drops it. */
static void
expect_end(unsigned rid, int status)
{
	size_t at = 0, len;
	int type;
	unsigned r;
	const unsigned char *p = out_rec(&at, &type, &r, &len);

	cr_assert_eq(type, FCGI_END_REQUEST);
	cr_assert_eq(r, rid);
	cr_assert_eq(len, 8);
	cr_assert_eq(p[4], status);
	cr_assert_eq(at, conn_pending(c), "more output than one end record");
	conn_drop_output(c);
}

static enum conn_state
feed(struct buf *b)
{
	return conn_feed(c, b->p, b->len, 2000);
}

Test(conn, a_whole_request_is_announced_with_its_params)
{
	struct buf b = { 0 };

	request(&b, 1, 1);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	check_params();
	cr_assert_eq(conn_deadline(c), 0, "a whole request has no deadline");
	free(b.p);
}

Test(conn, a_request_cut_into_single_bytes_frames_the_same)
{
	struct buf b = { 0 };

	request(&b, 7, 1);
	for (size_t i = 0; i + 1 < b.len; i++)
		cr_assert_eq(conn_feed(c, b.p + i, 1, 2000), CONN_MORE, "byte %zu", i);
	cr_assert_null(conn_param(c, CONN_METHOD), "no request before its last byte");
	cr_assert_eq(conn_feed(c, b.p + b.len - 1, 1, 2000), CONN_REQUEST);
	check_params();
	cr_assert_eq(conn_pending(c), 0);
	free(b.p);
}

Test(conn, a_request_sent_early_is_framed_after_the_answer)
{
	struct buf b = { 0 };
	size_t at = 0, len;
	int type;
	unsigned rid;

	request(&b, 1, 1);
	request(&b, 2, 1);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	cr_assert_eq(conn_answer(c, "Status: 200\r\n\r\n", 15, "{}", 2, 3000), CONN_FLUSH);
	out_rec(&at, &type, &rid, &len);
	cr_assert_eq(rid, 1);
	conn_drop_output(c);
	cr_assert_eq(conn_feed(c, NULL, 0, 3000), CONN_REQUEST);
	check_params();
	free(b.p);
}

Test(conn, get_values_is_answered_with_the_names_asked)
{
	struct buf b = { 0 }, q = { 0 };
	size_t at = 0, len;
	int type;
	unsigned rid;

	pair(&q, FCGI_MPXS_CONNS, "");
	pair(&q, "NO_SUCH_NAME", "");
	pair(&q, FCGI_MAX_CONNS, "");
	rec(&b, FCGI_GET_VALUES, 0, q.p, q.len, 0);
	cr_assert_eq(feed(&b), CONN_FLUSH);
	const unsigned char *p = out_rec(&at, &type, &rid, &len);
	cr_assert_eq(type, FCGI_GET_VALUES_RESULT);
	cr_assert_eq(rid, 0);
	cr_assert_eq(at, conn_pending(c));
	const char want[] = "\x0f\x01" FCGI_MPXS_CONNS "0" "\x0e\x04" FCGI_MAX_CONNS "1024";
	cr_assert_eq(len, sizeof(want) - 1);
	cr_assert_arr_eq(p, want, len);
	free(b.p);
	free(q.p);
}

Test(conn, an_unknown_management_type_is_answered_unknown_type)
{
	struct buf b = { 0 };
	size_t at = 0, len;
	int type;
	unsigned rid;

	rec(&b, 42, 0, "ab", 2, 0);
	cr_assert_eq(feed(&b), CONN_FLUSH);
	const unsigned char *p = out_rec(&at, &type, &rid, &len);
	cr_assert_eq(type, FCGI_UNKNOWN_TYPE);
	cr_assert_eq(rid, 0);
	cr_assert_eq(len, 8);
	cr_assert_eq(p[0], 42);
	cr_assert_eq(at, conn_pending(c));
	free(b.p);
}

Test(conn, a_second_begin_on_a_busy_connection_is_refused_cant_mpx)
{
	struct buf b = { 0 };

	begin(&b, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	begin(&b, 2, FCGI_RESPONDER, FCGI_KEEP_CONN);
	cr_assert_eq(feed(&b), CONN_FLUSH);
	expect_end(2, FCGI_CANT_MPX_CONN);
	free(b.p);
}

Test(conn, a_role_other_than_responder_is_refused_unknown_role)
{
	struct buf b = { 0 };

	begin(&b, 3, FCGI_AUTHORIZER, FCGI_KEEP_CONN);
	cr_assert_eq(feed(&b), CONN_FLUSH);
	expect_end(3, FCGI_UNKNOWN_ROLE);
	/* Kept: the next request on the connection is served. */
	b.len = 0;
	request(&b, 4, 1);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	check_params();
	free(b.p);
}

Test(conn, a_refused_role_without_keep_conn_closes_after_the_refusal)
{
	struct buf b = { 0 };

	begin(&b, 3, FCGI_FILTER, 0);
	cr_assert_eq(feed(&b), CONN_FLUSH);
	expect_end(3, FCGI_UNKNOWN_ROLE);
	cr_assert_eq(conn_feed(c, NULL, 0, 2000), CONN_CLOSE);
	cr_assert_str_eq(conn_why(c), "");
	free(b.p);
}

Test(conn, abort_is_answered_request_complete)
{
	struct buf b = { 0 };

	begin(&b, 5, FCGI_RESPONDER, FCGI_KEEP_CONN);
	rec(&b, FCGI_ABORT_REQUEST, 5, NULL, 0, 0);
	cr_assert_eq(feed(&b), CONN_FLUSH);
	expect_end(5, FCGI_REQUEST_COMPLETE);
	/* The request is gone: a new one may begin. */
	b.len = 0;
	request(&b, 6, 1);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	free(b.p);
}

/* Feeds b and checks the connection fails with why, and stays failed. */
static void
expect_fail(struct buf *b, const char *why)
{
	cr_assert_eq(feed(b), CONN_CLOSE);
	cr_assert_str_eq(conn_why(c), why);
	cr_assert_eq(conn_feed(c, "x", 1, 2000), CONN_CLOSE);
	cr_assert_str_eq(conn_why(c), why);
	free(b->p);
}

Test(conn, params_after_their_end_fail)
{
	struct buf b = { 0 };

	begin(&b, 1, FCGI_RESPONDER, 0);
	rec(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	rec(&b, FCGI_PARAMS, 1, "\x01\x01" "ab", 4, 0);
	expect_fail(&b, "FCGI_PARAMS after the end of the parameters");
}

Test(conn, stdin_before_the_end_of_params_fails)
{
	struct buf b = { 0 };

	begin(&b, 1, FCGI_RESPONDER, 0);
	rec(&b, FCGI_PARAMS, 1, "\x01\x01" "ab", 4, 0);
	rec(&b, FCGI_STDIN, 1, "x", 1, 0);
	expect_fail(&b, "request body before the end of the parameters");
}

Test(conn, a_params_length_past_the_records_end_fails)
{
	struct buf b = { 0 };

	begin(&b, 1, FCGI_RESPONDER, 0);
	rec(&b, FCGI_PARAMS, 1, "\x01\x09" "ab", 4, 0);	/* a value of 9 bytes, 1 there */
	rec(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	expect_fail(&b, "malformed request parameters (a length past the record's end)");
}

Test(conn, params_over_the_limit_fail)
{
	static unsigned char big[65535];
	struct buf b = { 0 };
	enum conn_state st = CONN_MORE;
	size_t sent = 0;

	begin(&b, 1, FCGI_RESPONDER, 0);
	cr_assert_eq(feed(&b), CONN_MORE);
	while (st == CONN_MORE) {
		b.len = 0;
		rec(&b, FCGI_PARAMS, 1, big, sizeof(big), 0);
		st = feed(&b);
		sent += sizeof(big);
		cr_assert_leq(sent, CONN_PARAMS_MAX + sizeof(big), "the limit was not applied");
	}
	cr_assert_gt(sent, CONN_PARAMS_MAX);
	cr_assert_eq(st, CONN_CLOSE);
	cr_assert_str_eq(conn_why(c), "request parameters larger than the limit");
	free(b.p);
}

Test(conn, a_body_over_the_limit_fails)
{
	static unsigned char big[65535];
	struct buf b = { 0 };
	enum conn_state st = CONN_MORE;
	size_t sent = 0;

	begin(&b, 1, FCGI_RESPONDER, 0);
	rec(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	cr_assert_eq(feed(&b), CONN_MORE);
	while (st == CONN_MORE) {
		b.len = 0;
		rec(&b, FCGI_STDIN, 1, big, sizeof(big), 0);
		st = feed(&b);
		sent += sizeof(big);
		cr_assert_leq(sent, CONN_STDIN_MAX + sizeof(big), "the limit was not applied");
	}
	cr_assert_gt(sent, CONN_STDIN_MAX);
	cr_assert_eq(st, CONN_CLOSE);
	cr_assert_str_eq(conn_why(c), "a request body larger than the limit");
	free(b.p);
}

Test(conn, a_record_of_an_unknown_type_fails)
{
	struct buf b = { 0 };

	begin(&b, 1, FCGI_RESPONDER, 0);
	rec(&b, FCGI_GET_VALUES_RESULT, 1, NULL, 0, 0);
	expect_fail(&b, "a record of a type a web server does not send");
}

Test(conn, a_record_of_another_version_fails)
{
	struct buf b = { 0 };

	begin(&b, 1, FCGI_RESPONDER, 0);
	b.p[0] = 2;
	expect_fail(&b, "not a FastCGI connection (a record of another version)");
}

Test(conn, without_keep_conn_the_connection_closes_after_the_answer)
{
	struct buf b = { 0 };

	request(&b, 1, 0);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	cr_assert_eq(conn_answer(c, "Status: 204\r\n\r\n", 15, "", 0, 3000), CONN_FLUSH);
	cr_assert_gt(conn_pending(c), 0);
	conn_drop_output(c);
	cr_assert_eq(conn_flush(c, 3000), CONN_CLOSE);
	cr_assert_str_eq(conn_why(c), "");
	free(b.p);
}

Test(conn, with_keep_conn_the_connection_waits_after_the_answer)
{
	struct buf b = { 0 };

	request(&b, 1, 1);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	cr_assert_eq(conn_answer(c, "Status: 204\r\n\r\n", 15, "", 0, 3000), CONN_FLUSH);
	conn_drop_output(c);
	cr_assert_eq(conn_flush(c, 3000), CONN_MORE);
	cr_assert_null(conn_param(c, CONN_METHOD), "the answered request is forgotten");
	free(b.p);
}

Test(conn, an_answer_larger_than_one_record_is_framed_in_records)
{
	struct buf b = { 0 };
	const char head[] = "Status: 200\r\nContent-Type: text/plain\r\n\r\n";
	size_t head_len = sizeof(head) - 1, body_len = 3 * 65535 + 1000, got = 0, at = 0;
	char *bodyb = malloc(body_len), *all = malloc(head_len + body_len);
	int ends = 0, empty_stdout = 0;

	cr_assert_not_null(bodyb);
	cr_assert_not_null(all);
	for (size_t i = 0; i < body_len; i++)
		bodyb[i] = (char)('a' + i % 26);
	request(&b, 9, 1);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	cr_assert_eq(conn_answer(c, head, head_len, bodyb, body_len, 3000), CONN_FLUSH);
	while (at < conn_pending(c)) {
		size_t len;
		int type;
		unsigned rid;
		const unsigned char *p = out_rec(&at, &type, &rid, &len);
		cr_assert_eq(rid, 9);
		cr_assert_eq(ends, 0, "a record after FCGI_END_REQUEST");
		if (type == FCGI_STDOUT && len == 0) {
			empty_stdout++;
		} else if (type == FCGI_STDOUT) {
			cr_assert_eq(empty_stdout, 0, "FCGI_STDOUT after its end");
			cr_assert_leq(got + len, head_len + body_len);
			memcpy(all + got, p, len);
			got += len;
		} else {
			cr_assert_eq(type, FCGI_END_REQUEST);
			cr_assert_eq(len, 8);
			cr_assert_eq(p[4], FCGI_REQUEST_COMPLETE);
			ends++;
		}
	}
	cr_assert_eq(empty_stdout, 1);
	cr_assert_eq(ends, 1);
	cr_assert_eq(got, head_len + body_len);
	cr_assert_arr_eq(all, head, head_len);
	cr_assert_arr_eq(all + head_len, bodyb, body_len);
	free(bodyb);
	free(all);
	free(b.p);
}

Test(conn, an_answer_without_a_request_fails)
{
	cr_assert_eq(conn_answer(c, "", 0, "", 0, 3000), CONN_CLOSE);
	cr_assert_str_eq(conn_why(c), "an answer without a request");
}

/* What an idle kept connection may hold: every buffer at its normal size. */
#define KEPT (CONN_IN_KEEP + 2 * CONN_PARAMS_KEEP + CONN_OUT_KEEP)

Test(conn, a_64k_record_grows_the_input_buffer_until_it_has_drained)
{
	static unsigned char big[65535];
	struct buf b = { 0 };

	rec(&b, FCGI_STDIN, 9, big, sizeof(big), 0);	/* of no request: ignored */
	request(&b, 1, 1);
	cr_assert_eq(conn_feed(c, b.p, sizeof(big), 2000), CONN_MORE);
	cr_assert_gt(conn_buffers(c), sizeof(big), "the record is buffered until it is whole");
	cr_assert_eq(conn_feed(c, b.p + sizeof(big), b.len - sizeof(big), 2000), CONN_REQUEST);
	cr_assert_eq(conn_answer(c, "Status: 200\r\n\r\n", 15, "{}", 2, 2000), CONN_FLUSH);
	conn_drop_output(c);
	cr_assert_eq(conn_flush(c, 2000), CONN_MORE);
	cr_assert_leq(conn_buffers(c), KEPT, "after the answer the buffers hold %zu bytes",
	    conn_buffers(c));
	free(b.p);
}

Test(conn, large_parameters_are_given_back_after_the_answer)
{
	struct buf b = { 0 }, pv = { 0 };
	char *q = malloc(60001);

	cr_assert_not_null(q);
	memset(q, 'q', 60000);
	q[60000] = '\0';
	begin(&b, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	pair(&pv, "REQUEST_METHOD", "GET");
	pair(&pv, "QUERY_STRING", q);
	rec(&b, FCGI_PARAMS, 1, pv.p, pv.len, 0);
	rec(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	rec(&b, FCGI_STDIN, 1, NULL, 0, 0);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	cr_assert_eq(strlen(conn_param(c, CONN_QUERY_STRING)), 60000);
	cr_assert_gt(conn_buffers(c), 2 * 60000, "the pairs and the values were kept");
	cr_assert_eq(conn_answer(c, "Status: 200\r\n\r\n", 15, "{}", 2, 2000), CONN_FLUSH);
	conn_drop_output(c);
	cr_assert_eq(conn_flush(c, 2000), CONN_MORE);
	cr_assert_leq(conn_buffers(c), KEPT, "after the answer the buffers hold %zu bytes",
	    conn_buffers(c));
	free(q);
	free(pv.p);
	free(b.p);
}

Test(conn, a_large_answer_kept_is_given_back_once_taken)
{
	struct buf b = { 0 };
	char *body = calloc(1, 30000);

	cr_assert_not_null(body);
	request(&b, 1, 1);
	cr_assert_eq(feed(&b), CONN_REQUEST);
	cr_assert_eq(conn_answer(c, "Status: 200\r\n\r\n", 15, body, 30000, 2000), CONN_FLUSH);
	cr_assert_gt(conn_buffers(c), 30000, "the answer is kept until the peer takes it");
	conn_drop_output(c);
	cr_assert_eq(conn_flush(c, 2000), CONN_MORE);
	cr_assert_leq(conn_buffers(c), KEPT, "once taken the buffers hold %zu bytes",
	    conn_buffers(c));
	free(body);
	free(b.p);
}

/* A stream whose peer takes nothing: the write deadline runs from when the peer last took
 * bytes; more output (a keep-alive) does not move it, bytes taken do. */
Test(conn, the_write_deadline_runs_from_the_last_bytes_taken)
{
	struct buf b = { 0 };
	int sv[2];
	conn *k;
	static char big[1 << 20], sink[1 << 16];
	const int64_t s = 1000000;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(conn_new(sv[0], 0, &k), 0);
	request(&b, 1, 1);
	cr_assert_eq(conn_feed(k, b.p, b.len, 0), CONN_REQUEST);
	cr_assert_eq(conn_stream_begin(k, "Status: 200\r\n\r\n", 15, NULL, 0, 0), CONN_MORE);
	cr_assert_eq(conn_deadline(k), 0, "all sent: no deadline");
	for (int i = 0; i < 4; i++)
		cr_assert_eq(conn_stream_write(k, big, sizeof(big)), 0);
	cr_assert_eq(conn_flush(k, 10 * s), CONN_FLUSH);
	cr_expect_eq(conn_deadline(k), 10 * s + CONN_WRITE_DEADLINE_US);
	cr_assert_eq(conn_stream_write(k, ": keep-alive\n\n", 14), 0);
	cr_assert_eq(conn_flush(k, 26 * s), CONN_FLUSH);
	cr_expect_eq(conn_deadline(k), 10 * s + CONN_WRITE_DEADLINE_US,
	    "a keep-alive the peer does not take leaves the deadline where it was");
	cr_assert_gt(read(sv[1], sink, sizeof(sink)), 0);
	cr_assert_eq(conn_flush(k, 30 * s), CONN_FLUSH);
	cr_expect_eq(conn_deadline(k), 30 * s + CONN_WRITE_DEADLINE_US,
	    "bytes taken move it");
	conn_free(k);
	close(sv[1]);
	free(b.p);
}

/* A stream whose peer reads about as fast as events come: its output never drains to
 * nothing, yet the buffer stays about the size of what is pending, not of all it sent. */
Test(conn, output_read_as_it_comes_keeps_the_buffer_bounded)
{
	struct buf b = { 0 };
	int sv[2], small = 4096;
	conn *k;
	static char ev[1000], sink[4096];
	size_t most = 0;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	cr_assert_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(conn_new(sv[0], 0, &k), 0);
	request(&b, 1, 1);
	cr_assert_eq(conn_feed(k, b.p, b.len, 0), CONN_REQUEST);
	cr_assert_eq(conn_stream_begin(k, "Status: 200\r\n\r\n", 15, NULL, 0, 0), CONN_MORE);
	while (conn_pending(k) < 16384) {	/* the socket is full, 16 KiB wait */
		cr_assert_eq(conn_stream_write(k, ev, sizeof(ev)), 0);
		conn_flush(k, 0);
	}
	for (int i = 0; i < 5000; i++) {
		cr_assert_eq(conn_stream_write(k, ev, sizeof(ev)), 0);
		conn_flush(k, 0);
		/* The peer reads only once 32 KiB wait: some always do. */
		while (conn_pending(k) > 32768) {
			cr_assert_gt(read(sv[1], sink, sizeof(sink)), 0);
			conn_flush(k, 0);
		}
		cr_assert_gt(conn_pending(k), 0, "the output drained at event %d", i);
		if (conn_buffers(k) > most)
			most = conn_buffers(k);
	}
	cr_expect_leq(most, 256 * 1024, "5 MB sent through %zu bytes of buffers", most);
	conn_free(k);
	close(sv[1]);
	free(b.p);
}
