/* The list pages one responder worker rendered last, kept for the read snapshot they were
 * rendered in: a page asked again before the next write is copied, not walked again.
 * Not thread-safe: one cache per worker. */
#ifndef LMTASKS_PAGECACHE_H
#define LMTASKS_PAGECACHE_H

#include <stddef.h>
#include <stdint.h>

#define PAGECACHE_DEFAULT (512 * 1024)	/* bytes per worker */

typedef struct pagecache pagecache;

/* A cache keeping at most budget bytes of keys and pages; *pc is NULL when budget is 0.
 * @return 0, or ENOMEM */
int pagecache_new(size_t budget, pagecache **pc);

/* Frees the cache and every page in it; NULL is ignored. */
void pagecache_free(pagecache *pc);

/* The page kept under key for this snapshot; pages of any other snapshot are dropped first.
 * The bytes belong to the cache and live until its next put or free.
 * @return the page (*len bytes), or NULL */
const char *pagecache_get(pagecache *pc, uint64_t snapshot, const char *key, size_t klen,
    size_t *len);

/* Keeps a copy of page under key for this snapshot, the second time the same key is put
 * in it (a page asked once is not copied), dropping the least recently used pages to
 * make room; a page larger than a quarter of the budget is not kept.
 * @return 0 (kept or not), or ENOMEM (not kept; the cache is still usable) */
int pagecache_put(pagecache *pc, uint64_t snapshot, const char *key, size_t klen,
    const char *page, size_t len);

/* How many pages the cache holds now (for tests). */
size_t pagecache_count(const pagecache *pc);

#endif
