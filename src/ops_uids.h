/* A growing list of uids, for the walks that collect first and change after (the write
 * library's own; not part of the API). */
#ifndef LMTASKS_OPS_UIDS_H
#define LMTASKS_OPS_UIDS_H

#include <stddef.h>
#include <stdint.h>

/* A zeroed one is empty; v is malloc'd, freed by ops_uids_free(). */
struct ops_uids {
	uint64_t *v;
	size_t n, cap;
};

/* Appends uid; 0 or ENOMEM (the list is kept as it was). */
int ops_uids_add(struct ops_uids *l, uint64_t uid);

/* Frees what l holds and leaves it empty. */
void ops_uids_free(struct ops_uids *l);

#endif
