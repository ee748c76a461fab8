// SPDX-License-Identifier: Apache-2.0
/* decimal.h — the plain unsigned decimals of protocols and specs ("3", "65535"): digits
 * only, no sign, no spaces, a bounded count of them so the value cannot overflow. */
#ifndef SY_DECIMAL_H
#define SY_DECIMAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* The value of s[0..n), which must be 1 to max_digits (at most 18) decimal digits;
 * -EINVAL otherwise. */
static inline int64_t sy_decimal(const char *s, size_t n, size_t max_digits)
{
	int64_t v = 0;

	if (n == 0 || n > max_digits)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

#endif
