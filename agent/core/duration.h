/* duration.h — the one reader of durations, for options, config files and the CLI:
 * "250ms", "1.5s", "5m", "1h"; a bare number is milliseconds. */
#ifndef SY_DURATION_H
#define SY_DURATION_H

#include <stdint.h>

/* 0 and *ms (rounded), or -EINVAL (not a duration), -ERANGE (over a week). */
int sy_duration_ms(const char *s, uint64_t *ms);

#endif
