// SPDX-License-Identifier: Apache-2.0
/* duration.h — the one reader of durations, for the daemon's options, the config file
 * (plans, the telemetry: section) and syctl: "250ms", "1.5s", "5m", "1h", or "0".
 * A number without a unit other than 0 is refused: "500" reads as milliseconds to some
 * and as seconds to others (the daemon and syctl once disagreed). Each caller checks
 * its own range and says it in its own message. */
#ifndef SY_DURATION_H
#define SY_DURATION_H

#include <stdint.h>

/* 0 and *ms (rounded); -EINVAL not a duration, -EDOM a number without a unit ("500"),
 * -ERANGE over a week. */
int sy_duration_ms(const char *s, uint64_t *ms);

/* Words for the error of sy_duration_ms, after the value: "needs a unit: ms, s, m or h",
 * "is over a week", "is not a duration". */
const char *sy_duration_strerror(int e);

#endif
