/* The worker's list pages: kept per snapshot, found by the whole key, least recently used
 * dropped first, nothing kept past the budget or from another snapshot. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/pagecache.h"

static pagecache *pc;

static void
fini(void)
{
	pagecache_free(pc);
	pc = NULL;
}

TestSuite(pagecache, .fini = fini);

/* The page under key in snapshot, as a string ("" when there is none). */
static const char *
got(uint64_t snapshot, const char *key)
{
	static char buf[4096];
	size_t len;
	const char *p = pagecache_get(pc, snapshot, key, strlen(key), &len);

	if (p == NULL)
		return "";
	cr_assert_lt(len, sizeof(buf));
	memcpy(buf, p, len);
	buf[len] = '\0';
	return buf;
}

/* Puts the page twice, as two asks of the same page do: the second put keeps it. */
static void
put(uint64_t snapshot, const char *key, const char *page)
{
	cr_assert_eq(pagecache_put(pc, snapshot, key, strlen(key), page, strlen(page)), 0);
	cr_assert_eq(pagecache_put(pc, snapshot, key, strlen(key), page, strlen(page)), 0);
}

Test(pagecache, zero_budget_is_no_cache)
{
	cr_assert_eq(pagecache_new(0, &pc), 0);
	cr_assert_null(pc);
	cr_assert_eq(pagecache_count(pc), 0);
}

Test(pagecache, a_page_is_found_by_its_whole_key_in_its_snapshot)
{
	cr_assert_eq(pagecache_new(4096, &pc), 0);
	put(7, "t?limit=2", "[1,2]");
	cr_assert_str_eq(got(7, "t?limit=2"), "[1,2]");
	cr_assert_str_eq(got(7, "t?limit=20"), "");
	cr_assert_str_eq(got(7, "t?limit="), "");
	cr_assert_str_eq(got(7, "i?limit=2"), "");
	cr_assert_eq(pagecache_count(pc), 1);
}

Test(pagecache, a_page_put_once_is_not_kept)
{
	cr_assert_eq(pagecache_new(4096, &pc), 0);
	cr_assert_eq(pagecache_put(pc, 7, "t?from=9", 8, "[9]", 3), 0);
	cr_assert_eq(pagecache_count(pc), 0);
	cr_assert_str_eq(got(7, "t?from=9"), "");
	cr_assert_eq(pagecache_put(pc, 7, "t?from=8", 8, "[8]", 3), 0);
	cr_assert_eq(pagecache_put(pc, 7, "t?from=9", 8, "[9]", 3), 0);
	cr_assert_eq(pagecache_count(pc), 1);
	cr_assert_str_eq(got(7, "t?from=9"), "[9]");
	cr_assert_str_eq(got(7, "t?from=8"), "");
	/* A new snapshot forgets what was put once. */
	cr_assert_eq(pagecache_put(pc, 8, "t?from=8", 8, "[8]", 3), 0);
	cr_assert_eq(pagecache_count(pc), 0);
}

Test(pagecache, another_snapshot_empties_it)
{
	cr_assert_eq(pagecache_new(4096, &pc), 0);
	put(7, "a", "old a");
	put(7, "b", "old b");
	cr_assert_eq(pagecache_count(pc), 2);
	/* A write made snapshot 8: nothing of 7 may answer, not even once 7 is asked again. */
	cr_assert_str_eq(got(8, "a"), "");
	cr_assert_eq(pagecache_count(pc), 0);
	put(8, "a", "new a");
	cr_assert_str_eq(got(7, "a"), "");
	cr_assert_str_eq(got(8, "a"), "");
}

Test(pagecache, the_least_recently_used_go_first)
{
	/* Room for five pages of 199 bytes with their one-byte keys, not six. */
	char page[200];

	cr_assert_eq(pagecache_new(1000, &pc), 0);
	memset(page, 'x', 199);
	page[199] = '\0';
	put(1, "a", page);
	put(1, "b", page);
	put(1, "c", page);
	put(1, "d", page);
	put(1, "e", page);
	cr_assert_eq(pagecache_count(pc), 5);
	cr_assert_str_eq(got(1, "a"), page);	/* a is used: b is now the oldest */
	put(1, "f", page);
	cr_assert_eq(pagecache_count(pc), 5);
	cr_assert_str_eq(got(1, "b"), "");
	cr_assert_str_eq(got(1, "a"), page);
	cr_assert_str_eq(got(1, "c"), page);
	cr_assert_str_eq(got(1, "f"), page);
}

Test(pagecache, a_page_over_a_quarter_of_the_budget_is_not_kept)
{
	char page[300];

	cr_assert_eq(pagecache_new(1000, &pc), 0);
	memset(page, 'y', sizeof(page) - 1);
	page[sizeof(page) - 1] = '\0';
	put(1, "big", page);
	cr_assert_eq(pagecache_count(pc), 0);
	cr_assert_str_eq(got(1, "big"), "");
	page[240] = '\0';
	put(1, "big", page);
	cr_assert_eq(pagecache_count(pc), 1);
}

Test(pagecache, at_most_thirty_two_pages)
{
	char key[16];

	cr_assert_eq(pagecache_new(1 << 20, &pc), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		put(3, key, key);
	}
	cr_assert_eq(pagecache_count(pc), 32);
	cr_assert_str_eq(got(3, "k7"), "");
	cr_assert_str_eq(got(3, "k8"), "k8");
	cr_assert_str_eq(got(3, "k39"), "k39");
}
