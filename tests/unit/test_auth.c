/* Keys: the master key file, key records, patterns, and request decisions against a real
 * store in a temp directory. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/timefmt.h"
#include "tmpstore.h"

#define STR(s) ((struct task_str){ (s), sizeof(s) - 1 })

static void
setup(void)
{
	tmpstore_setup();
	cr_assert_eq(auth_init(), 0);
}

TestSuite(auth, .init = setup, .fini = tmpstore_teardown);

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(auth, the_master_key_file_is_its_trimmed_first_line)
{
	unsigned char a[AUTH_HASH_BYTES], b[AUTH_HASH_BYTES];

	write_file(tmpstore_path("k1"), "  0123456789abcdef-key \t\nsecond line\n");
	cr_assert_eq(auth_master_load(tmpstore_path("k1"), a), 0);
	auth_hash("0123456789abcdef-key", 20, b);
	cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
	write_file(tmpstore_path("k2"), "short\n");
	cr_assert_eq(auth_master_load(tmpstore_path("k2"), a), LMT_EINVAL);
	cr_assert_eq(auth_master_load(tmpstore_path("missing"), a), ENOENT);
}

Test(auth, hashes_differ_by_key_and_not_by_call)
{
	unsigned char a[AUTH_HASH_BYTES], b[AUTH_HASH_BYTES], c[AUTH_HASH_BYTES];

	auth_hash("key-one", 7, a);
	auth_hash("key-one", 7, b);
	auth_hash("key-two", 7, c);
	cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
	cr_assert_neq(memcmp(a, c, sizeof(a)), 0);
}

Test(auth, patterns)
{
	struct auth_grant g = { .all = 0, .n = 2, .patterns = { STR("movies"), STR("bo*") } };

	cr_assert(auth_pattern_valid("*", 1));
	cr_assert(auth_pattern_valid("mov*", 4));
	cr_assert_not(auth_pattern_valid("m*v", 3));
	cr_assert_not(auth_pattern_valid("", 0));
	cr_assert(auth_allows(&g, STR("movies")));
	cr_assert(auth_allows(&g, STR("books")));
	cr_assert(auth_allows(&g, STR("bo")));
	cr_assert_not(auth_allows(&g, STR("movie")));
	cr_assert_not(auth_allows(&g, (struct task_str){ NULL, 0 }), "the store's own tasks");
	g.all = 1;
	cr_assert(auth_allows(&g, (struct task_str){ NULL, 0 }));
}

Test(auth, key_records_round_trip_and_reject_garbage)
{
	struct auth_key k = { .uid = { 1, 2, 3 }, .created_at = 1000, .expires_at = 2000,
	    .description = STR("ci"), .nindexes = 2, .indexes = { STR("a"), STR("b*") } }, d;
	unsigned char buf[256];
	size_t n = auth_key_encode(&k, NULL);

	cr_assert_lt(n, sizeof(buf));
	cr_assert_eq(auth_key_encode(&k, buf), n);
	cr_assert_eq(auth_key_decode(buf, n, &d), 0);
	cr_assert_eq(d.created_at, 1000);
	cr_assert_eq(d.expires_at, 2000);
	cr_assert_eq(d.nindexes, 2);
	cr_assert(d.indexes[1].len == 2 && memcmp(d.indexes[1].ptr, "b*", 2) == 0);
	cr_assert(d.description.len == 2 && memcmp(d.description.ptr, "ci", 2) == 0);
	cr_assert_eq(memcmp(d.uid, k.uid, 16), 0);
	for (size_t cut = 0; cut < n; cut++)
		cr_assert_eq(auth_key_decode(buf, cut, &d), LMT_ECORRUPT, "cut at %zu", cut);
	buf[0] ^= 0xff;
	cr_assert_eq(auth_key_decode(buf, n, &d), LMT_ECORRUPT);
}

Test(auth, uids_print_as_uuids)
{
	unsigned char u[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7 };
	char out[37];

	auth_uid_format(u, out);
	cr_assert_str_eq(out, "12345678-9abc-def0-0001-020304050607");
}

Test(auth, requests_against_a_store)
{
	struct auth_key k = { .all = 0, .nindexes = 1, .indexes = { STR("movies") } };
	struct auth_key old = { .all = 1 };
	unsigned char master[AUTH_HASH_BYTES];
	char secret[AUTH_KEY_CHARS + 1], expired[AUTH_KEY_CHARS + 1], header[128];
	struct auth_grant g;
	struct api_error err;
	MDB_txn *txn;
	store *s;
	int64_t now = clock_now();

	cr_assert_eq(store_open(tmpstore_path("db"), STORE_CREATE, 0600, &s), 0);
	cr_assert_eq(ops_key_create(s, &k, secret), 0);
	old.expires_at = now + 1000000;
	cr_assert_eq(ops_key_create(s, &old, expired), 0);
	auth_hash("the-master-key-0123", 19, master);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);

	cr_assert_eq(auth_check(s, txn, NULL, NULL, now, &g, &err), 0, "no master key: open");
	cr_assert(g.all);
	cr_assert_eq(auth_check(s, txn, master, NULL, now, &g, &err), 401);
	cr_assert_str_eq(err.code, "missing_authorization_header");
	cr_assert_eq(auth_check(s, txn, master, "Basic abc", now, &g, &err), 401);
	cr_assert_eq(auth_check(s, txn, master, "Bearer nope", now, &g, &err), 403);
	cr_assert_str_eq(err.code, "invalid_api_key");
	cr_assert_eq(auth_check(s, txn, master, "bearer  the-master-key-0123 ", now, &g, &err), 0);
	cr_assert(g.all);
	cr_assert_eq(g.actions, AUTH_ALL, "the master key may do everything");
	snprintf(header, sizeof(header), "Bearer %s", secret);
	cr_assert_eq(auth_check(s, txn, master, header, now, &g, &err), 0);
	cr_assert_not(g.all);
	cr_assert_eq(g.actions, AUTH_TASKS_GET, "a key made without actions reads");
	cr_assert(auth_allows(&g, STR("movies")));
	cr_assert_not(auth_allows(&g, STR("books")));
	snprintf(header, sizeof(header), "Bearer %s", expired);
	cr_assert_eq(auth_check(s, txn, master, header, now, &g, &err), 0);
	cr_assert_eq(auth_check(s, txn, master, header, now + 2000000, &g, &err), 403,
	    "an expired key is refused");
	char longh[AUTH_HEADER_MAX + 16];
	memset(longh, 'a', sizeof(longh) - 1);
	longh[sizeof(longh) - 1] = '\0';
	cr_assert_eq(auth_check(s, txn, master, longh, now, &g, &err), 431);
	mdb_txn_abort(txn);
	store_close(s);
}

/* A key record as lmtasks 0.1.0 wrote it (version 1, no actions): read as read access. */
Test(auth, version_1_records_read_as_tasks_get)
{
	struct auth_key k = { .uid = { 9 }, .created_at = 5, .nindexes = 1,
	    .indexes = { STR("movies") }, .actions = AUTH_TASKS_CANCEL }, d;
	unsigned char buf[256];
	size_t n = auth_key_encode(&k, buf);

	cr_assert_eq(buf[0], 2, "new records are version 2");
	cr_assert_eq(auth_key_decode(buf, n, &d), 0);
	cr_assert_eq(d.actions, AUTH_TASKS_CANCEL);
	/* Version 1 is the same record without the last four bytes. */
	buf[0] = 1;
	cr_assert_eq(auth_key_decode(buf, n - 4, &d), 0);
	cr_assert_eq(d.actions, AUTH_ACTIONS_DEFAULT);
	cr_assert_eq(AUTH_ACTIONS_DEFAULT, AUTH_TASKS_GET);
	cr_assert_eq(d.nindexes, 1);
	cr_assert_eq(auth_key_decode(buf, n, &d), LMT_ECORRUPT, "v1 with a tail");
	buf[0] = 2;
	cr_assert_eq(auth_key_decode(buf, n - 4, &d), LMT_ECORRUPT, "v2 without its actions");
	buf[0] = 3;
	cr_assert_eq(auth_key_decode(buf, n, &d), LMT_ECORRUPT, "an unknown version");
	k.actions = 0;	/* made without actions: the default is stored */
	n = auth_key_encode(&k, buf);
	cr_assert_eq(auth_key_decode(buf, n, &d), 0);
	cr_assert_eq(d.actions, AUTH_ACTIONS_DEFAULT);
}

Test(auth, actions_parse_list_and_permit)
{
	const char *names[AUTH_ACTIONS_MAX];
	struct auth_grant g = { .all = 1 };
	struct api_error err;
	unsigned a;

	cr_assert_eq(auth_actions_parse("tasks.get,tasks.delete", &a), 0);
	cr_assert_eq(a, AUTH_TASKS_GET | AUTH_TASKS_DELETE);
	cr_assert_eq(auth_actions_list(a, names), 2);
	cr_assert_str_eq(names[0], "tasks.get");
	cr_assert_str_eq(names[1], "tasks.delete");
	cr_assert_eq(auth_actions_parse("*", &a), 0);
	cr_assert_eq(auth_actions_list(a, names), 1);
	cr_assert_str_eq(names[0], "*");
	static const char *const bad[] = {
		"x", "tasks.get,", "", "tasks.get,,tasks.cancel", "tasks", "batches.get",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(auth_actions_parse(bad[i], &a), LMT_EINVAL, "`%s`", bad[i]);

	g.actions = AUTH_TASKS_GET;
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_GET, &err), 0);
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_CANCEL, &err), 403);
	cr_assert_str_eq(err.code, "invalid_api_key");
	cr_assert_str_eq(err.type, "auth");
	cr_assert_str_eq(err.message, "The provided API key is invalid.");
	g.actions = AUTH_TASKS_CANCEL;
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_GET, &err), 403, "cancel does not read");
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_DELETE, &err), 403);
	g.actions = AUTH_TASKS_ALL;
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_DELETE, &err), 0);
	g.actions = AUTH_ALL;
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_CANCEL, &err), 0);
}
