/* A fresh store per test, on tmpstore.h: tmpdb_setup() / tmpdb_teardown() as a Criterion
 * suite's .init / .fini (or called from the suite's own) give each test `s`, a store
 * created as "db" in the temporary directory and open for writing. */
#ifndef LMTASKS_TESTS_TMPDB_H
#define LMTASKS_TESTS_TMPDB_H

#include <criterion/criterion.h>

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

#endif
