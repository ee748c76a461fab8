// SPDX-License-Identifier: Apache-2.0
/* spec_transform.c — the validator's part for `transform:` and `version_field:`: the
 * script must compile in the transform sandbox (its own FILE:LINE in the message), a
 * mirror that writes back to legacy needs reverse_key (a rollback would otherwise lose
 * the writes made on target), and a transform names target keys itself, so it does not
 * go with `rewrite:`. See docs/transforms.md. */
#include <errno.h>
#include <string.h>

#include "model/spec.h"
#include "transform/transform.h"

int sy_spec_check_transform(const struct sy_migration_spec *m, struct sy_spec_err *err, int *line)
{
	struct sy_transform *t = NULL;
	char why[SY_TRANSFORM_ERR_MAX + PATH_MAX];
	int e;

	for (const char *p = m->version_field; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return sy_spec_fail(err, "version_field: must not hold control characters");
	if (!m->transform.script[0])
		return 0;
	if (m->transform.line)
		*line = m->transform.line;
	if (m->transform.script[0] != '/')
		return sy_spec_fail(err, "transform.script: \"%s\" must be an absolute path",
				    m->transform.script);
	if (m->n_rewrite)
		return sy_spec_fail(err,
				    "transform: a transform names the target keys itself; drop rewrite:");
	e = sy_transform_load(m->transform.script, m->name, NULL, &t, why, sizeof(why));
	if (e) {
		sy_spec_err_set(err, "transform.script: %s", why);
		return e == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	if (m->mirror != SY_MIRROR_OFF && m->mirror != SY_MIRROR_FORWARD &&
	    !sy_transform_has(t, SY_TF_REVERSE_KEY)) {
		sy_spec_err_set(
			err,
			"transform: mirror: %s writes target's changes back to legacy, and %s defines "
			"no reverse_key(k) (a rollback would lose them); add it or set mirror: forward",
			sy_mirror_name(m->mirror), m->transform.script);
		sy_transform_free(t);
		return -EINVAL;
	}
	sy_transform_free(t);
	return 0;
}
