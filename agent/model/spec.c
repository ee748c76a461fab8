// SPDX-License-Identifier: Apache-2.0
/* spec.c — see spec.h: the model's small pieces (names of enums, ratios, copies). The
 * YAML reader is spec_yaml.c, the validator spec_validate.c, the key mapper keymap.c. */
#include "model/spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sy_spec_err_set(struct sy_spec_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

int sy_spec_fail(struct sy_spec_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* ---- mirror ---------------------------------------------------------------------- */

static const char *const mirror_names[] = {"off", "forward", "reverse", "both", "auto"};

int sy_mirror_parse(const char *s, uint8_t *out)
{
	for (uint8_t i = 0; i < 5; i++)
		if (s && strcmp(s, mirror_names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

static const char *const gate_names[SY_GATES] = {"drift_rate", "error_rate", "error_ratio", "p99_ratio"};

const char *sy_restart_gate_name(int v)
{
	static const char *const names[] = {"pause", "rollback", "off"};

	return v >= 0 && v <= SY_RESTART_OFF ? names[v] : "?";
}

const char *sy_gate_name(int g)
{
	return g >= 0 && g < SY_GATES ? gate_names[g] : "?";
}

const char *sy_mirror_name(uint8_t m)
{
	return m < 5 ? mirror_names[m] : NULL;
}

uint8_t sy_mirror_effective(const struct sy_migration_spec *m)
{
	if (m->mirror != SY_MIRROR_AUTO)
		return m->mirror;
	if (m->mirror_hint)
		return m->mirror_hint > 0 ? SY_MIRROR_BOTH : SY_MIRROR_OFF;
	if (m->ratio_bp > 0)
		return SY_MIRROR_BOTH;
	for (size_t i = 0; i < m->n_pins; i++)
		if (m->pins[i].side == SY_SIDE_TARGET)
			return SY_MIRROR_BOTH;
	return SY_MIRROR_OFF;
}

/* ---- ratio ----------------------------------------------------------------------- */

int sy_ratio_parse(const char *s, uint32_t *bp)
{
	size_t n = strlen(s);
	uint64_t whole = 0, frac = 0;
	int fdigits = 0;
	const char *p = s;

	if (n == 0)
		return -EINVAL;
	if (n > 2 && strcmp(s + n - 2, "bp") == 0) {
		if (n - 2 > 6)
			return -ERANGE;
		for (size_t i = 0; i < n - 2; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			whole = whole * 10 + (uint64_t)(s[i] - '0');
		}
		if (whole > SY_RATIO_MAX)
			return -ERANGE;
		*bp = (uint32_t)whole;
		return 0;
	}
	if (strcmp(s, "0") == 0) {
		*bp = 0;
		return 0;
	}
	if (s[n - 1] != '%')
		return -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		whole = whole * 10 + (uint64_t)(*p++ - '0');
		if (whole > 1000)
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (++fdigits > 2)
				return -EINVAL; /* 1 bp = 0.01 %: finer is not representable */
			frac = frac * 10 + (uint64_t)(*p++ - '0');
		}
		if (fdigits == 1)
			frac *= 10;
	}
	if (*p != '%' || p[1] != '\0')
		return -EINVAL;
	whole = whole * 100 + frac;
	if (whole > SY_RATIO_MAX)
		return -ERANGE;
	*bp = (uint32_t)whole;
	return 0;
}

const char *sy_ratio_format(uint32_t bp, char *buf, size_t n)
{
	snprintf(buf, n, "%u.%02u%%", bp / 100, bp % 100);
	return buf;
}

/* ---- copies ---------------------------------------------------------------------- */

void sy_migration_spec_free(struct sy_migration_spec *m)
{
	free(m->pins);
	m->pins = NULL;
	m->n_pins = 0;
}

int sy_migration_spec_copy(struct sy_migration_spec *dst, const struct sy_migration_spec *src)
{
	*dst = *src;
	dst->pins = NULL;
	if (src->n_pins) {
		dst->pins = malloc(src->n_pins * sizeof(*dst->pins));
		if (!dst->pins) {
			dst->n_pins = 0;
			return -ENOMEM;
		}
		memcpy(dst->pins, src->pins, src->n_pins * sizeof(*dst->pins));
	}
	return 0;
}

void sy_spec_free(struct sy_spec *s)
{
	for (size_t i = 0; i < s->n; i++)
		sy_migration_spec_free(&s->migs[i]);
	free(s->migs);
	s->migs = NULL;
	s->n = 0;
}

bool sy_auth_spec_equal(const struct sy_auth_spec *a, const struct sy_auth_spec *b)
{
	return strcmp(a->user, b->user) == 0 && strcmp(a->password_file, b->password_file) == 0;
}
