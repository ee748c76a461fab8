/* fsutil.h — small filesystem helpers shared by the daemon's parts. */
#ifndef SY_FSUTIL_H
#define SY_FSUTIL_H

#include <sys/types.h>

/* mkdir -p: parents 0755, the last component `mode`. 0 or a negative errno. */
int sy_mkdir_p(const char *path, mode_t mode);

#endif
