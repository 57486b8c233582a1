/* A handful of rendered list pages per worker (pagecache.h).  Pollers ask the same page
 * again and again; between two writes the answer cannot change, because it is a function
 * of the read snapshot and the request alone.  So the key is the request, the snapshot is
 * the cache's generation, and a new snapshot empties it: nothing kept can be stale. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/pagecache.h"

#define SLOTS 32
#define SEEN 128	/* hashes of keys put once and not kept yet, a slot each */

struct entry {
	uint64_t hash;
	uint64_t used;		/* the cache's clock at the last get or put */
	size_t klen, len;
	char *mem;		/* key, then page */
};

struct pagecache {
	size_t budget, held;
	uint64_t snapshot, clock;
	size_t n;
	struct entry e[SLOTS];
	uint64_t seen[SEEN];
};

/* Eight bytes a step: keys are a validator and a query string, tens of bytes long. */
static uint64_t
hash_of(const char *key, size_t klen)
{
	uint64_t h = klen * 0x9e3779b97f4a7c15u, w;
	size_t i = 0;

	for (; i + 8 <= klen; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, key + i, klen - i);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
	return h ^ h >> 29;
}

static void
drop(pagecache *pc, size_t i)
{
	pc->held -= pc->e[i].klen + pc->e[i].len;
	free(pc->e[i].mem);
	pc->e[i] = pc->e[--pc->n];
}

/* A new snapshot: what was kept answers requests that can no longer be asked. */
static void
adopt(pagecache *pc, uint64_t snapshot)
{
	if (pc->snapshot == snapshot)
		return;
	while (pc->n > 0)
		drop(pc, pc->n - 1);
	memset(pc->seen, 0, sizeof(pc->seen));
	pc->snapshot = snapshot;
}

int
pagecache_new(size_t budget, pagecache **pc)
{
	*pc = NULL;
	if (budget == 0)
		return 0;
	if ((*pc = calloc(1, sizeof(**pc))) == NULL)
		return ENOMEM;
	(*pc)->budget = budget;
	return 0;
}

void
pagecache_free(pagecache *pc)
{
	if (pc == NULL)
		return;
	while (pc->n > 0)
		drop(pc, pc->n - 1);
	free(pc);
}

const char *
pagecache_get(pagecache *pc, uint64_t snapshot, const char *key, size_t klen, size_t *len)
{
	uint64_t h = hash_of(key, klen);

	adopt(pc, snapshot);
	for (size_t i = 0; i < pc->n; i++) {
		struct entry *e = &pc->e[i];
		if (e->hash != h || e->klen != klen || memcmp(e->mem, key, klen) != 0)
			continue;
		e->used = ++pc->clock;
		*len = e->len;
		return e->mem + klen;
	}
	return NULL;
}

int
pagecache_put(pagecache *pc, uint64_t snapshot, const char *key, size_t klen,
    const char *page, size_t len)
{
	size_t need = klen + len;
	char *mem;

	adopt(pc, snapshot);
	if (need > pc->budget / 4)
		return 0;
	/* Kept on its second put: a page asked once (a client paging through a list) costs
	 * no copy and pushes no page out that pollers ask again. */
	uint64_t h = hash_of(key, klen);
	uint64_t *seen = &pc->seen[h % SEEN];
	if (*seen != h) {
		*seen = h;
		return 0;
	}
	*seen = 0;
	/* The least recently used go until the page fits; the last one's memory is reused. */
	mem = NULL;
	while (pc->n > 0 && (pc->n == SLOTS || pc->held + need > pc->budget)) {
		size_t old = 0;
		for (size_t i = 1; i < pc->n; i++)
			if (pc->e[i].used < pc->e[old].used)
				old = i;
		free(mem);
		mem = pc->e[old].mem;
		pc->e[old].mem = NULL;
		drop(pc, old);
	}
	char *grown = realloc(mem, need);
	if (grown == NULL) {
		free(mem);
		return ENOMEM;
	}
	mem = grown;
	memcpy(mem, key, klen);
	memcpy(mem + klen, page, len);
	pc->e[pc->n++] = (struct entry){ h, ++pc->clock, klen, len, mem };
	pc->held += need;
	return 0;
}

size_t
pagecache_count(const pagecache *pc)
{
	return pc ? pc->n : 0;
}
