// SPDX-License-Identifier: Apache-2.0
/* log.h — the agent's one logger: "switchyard: <component>: <message>" on stderr.
 * Errors are logged once, where they are handled, with their context. */
#ifndef SY_LOG_H
#define SY_LOG_H

enum sy_log_level { SY_LOG_DEBUG = 0, SY_LOG_INFO = 1, SY_LOG_WARN = 2, SY_LOG_ERROR = 3 };

void sy_log_set_level(enum sy_log_level lvl);
void sy_log(enum sy_log_level lvl, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define sy_debug(comp, ...) sy_log(SY_LOG_DEBUG, comp, __VA_ARGS__)
#define sy_info(comp, ...)  sy_log(SY_LOG_INFO, comp, __VA_ARGS__)
#define sy_warn(comp, ...)  sy_log(SY_LOG_WARN, comp, __VA_ARGS__)
#define sy_error(comp, ...) sy_log(SY_LOG_ERROR, comp, __VA_ARGS__)

#endif
