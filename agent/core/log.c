// SPDX-License-Identifier: Apache-2.0
/* log.c — see log.h. One line per call, written with a single write(2) so lines from
 * the daemon never interleave mid-line in a journal. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum sy_log_level min_level = SY_LOG_INFO;

void sy_log_set_level(enum sy_log_level lvl)
{
	min_level = lvl;
}

void sy_log(enum sy_log_level lvl, const char *component, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};
	char line[1024];
	va_list ap;
	int n;

	if (lvl < min_level)
		return;
	n = snprintf(line, sizeof(line), "switchyard: %s%s%s: ", lvl >= SY_LOG_WARN ? names[lvl] : "",
		     lvl >= SY_LOG_WARN ? ": " : "", component);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
