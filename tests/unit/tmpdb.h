/* A fresh store per test, on tmpstore.h: tmpdb_setup() / tmpdb_teardown() as a Criterion
 * suite's .init / .fini (or called from the suite's own) give each test `s`, a store
 * created as "db" in the temporary directory and open for writing; tmpdb_add() and
 * tmpdb_change() write tasks into it. */
#ifndef LMTASKS_TESTS_TMPDB_H
#define LMTASKS_TESTS_TMPDB_H

#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/ops.h"
#include "lmtasks/store.h"
#include "tmpstore.h"

static store *s;

/* Creates the directory and the store in it; the test fails when either cannot be made. */
static void
tmpdb_setup(void)
{
	tmpstore_setup();
	cr_assert_eq(store_open(tmpstore_path("db"), STORE_CREATE, 0600, &s), 0);
}

/* Closes the store and removes the directory. */
static void
tmpdb_teardown(void)
{
	store_close(s);
	s = NULL;
	tmpstore_teardown();
}

/* Enqueues one documentAddition task of index; returns its uid. */
__attribute__((unused))
static uint64_t
tmpdb_add(const char *index)
{
	struct task t;

	task_init(&t, index, strlen(index), "documentAddition", 16, "{}", 2);
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), 0);
	return t.uid;
}

/* Applies one change to task uid (a failure says "boom", "broke"); the test fails unless
 * it is accepted. */
__attribute__((unused))
static void
tmpdb_change(enum ops_change_kind kind, uint64_t uid)
{
	struct ops_change ch = { .kind = kind, .uid = uid, .code = "boom", .message = "broke",
	    .etype = TASK_ERR_INTERNAL };
	struct ops_change_result r = { 0 };

	cr_assert_eq(ops_change(s, &ch, &r), 0);
	ops_task_free(&r.out);
}

#endif
