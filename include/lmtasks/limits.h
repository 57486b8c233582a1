/* Limits that more than one tier enforces: the transport sizes its buffers by them, the HTTP
 * application refuses what is past them.  Nothing but constants. */
#ifndef LMTASKS_LIMITS_H
#define LMTASKS_LIMITS_H

#define LMT_QUERY_MAX 65536	/* a longer query string is refused (414) */

#endif
