/* One explanation for every result code the library can return. */
#include "config.h"

#include <string.h>

#include <lmdb.h>

#include "lmtasks/error.h"

static const char *const messages[] = {
	[LMT_EINVAL - LMT_EINVAL] = "invalid argument",
	[LMT_ECORRUPT - LMT_EINVAL] = "corrupt record",
	[LMT_ETRANSITION - LMT_EINVAL] = "transition not allowed from the task's status",
	[LMT_ENOSTORE - LMT_EINVAL] = "not an lmtasks store",
	[LMT_ESCHEMA - LMT_EINVAL] = "the store was written by another version of lmtasks",
	[LMT_ETOOBIG - LMT_EINVAL] = "value too large",
	[LMT_ELEASE - LMT_EINVAL] = "the task's lease expired",
	[LMT_ECLAIMED - LMT_EINVAL] = "the task was claimed again",
	[LMT_ENOLEASE - LMT_EINVAL] = "the task holds no lease",
	[LMT_EDAMAGED - LMT_EINVAL] = "the store's data file is damaged (shorter than its meta pages say)",
	[LMT_EFULL - LMT_EINVAL] = "the store is past its size limit",
	[LMT_EDISKFULL - LMT_EINVAL] = "the disk is too full to keep the store's reserve",
	[LMT_EPRUNED - LMT_EINVAL] = "the change log was pruned past that sequence",
	[LMT_EREPLACED - LMT_EINVAL] = "the store's data file was replaced while the store was open",
};

const char *
lmt_strerror(int rc)
{
	if (rc >= LMT_EINVAL && rc < LMT_ELAST)
		return messages[rc - LMT_EINVAL];
	/* mdb_strerror() also covers errno values. */
	return mdb_strerror(rc);
}
