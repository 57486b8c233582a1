/* lmtasks compact and POST /tasks/compact: the data file compacted and swapped in under
 * running readers (store_compact.c says how). */
#include "config.h"

#include "lmtasks/error.h"
#include "ops_internal.h"

int
ops_compact(store *s, struct ops_compact_result *r)
{
	r->pre_size = r->post_size = 0;
	r->swapped = 0;
	return store_compact(s, &r->pre_size, &r->post_size, &r->swapped);
}
