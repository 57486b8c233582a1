/* A growing list of uids, for the walks that collect first and change after. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "ops_uids.h"

/* Doubling from 256: a list grows in few steps however many tasks match. */
int
ops_uids_add(struct ops_uids *l, uint64_t uid)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = uid;
	return 0;
}

/* Frees what the list holds and empties it. */
void
ops_uids_free(struct ops_uids *l)
{
	free(l->v);
	*l = (struct ops_uids){ NULL, 0, 0 };
}
