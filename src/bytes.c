/* bytes.h is static inline throughout: the codec reads its fields through it on every
 * task a request renders, and a call per field would cost more than the field.  This unit
 * is the module's place in the build: it compiles the header on its own, so the header
 * must stand on its own includes, and it defines nothing. */
#include "config.h"

#include "lmtasks/bytes.h"
