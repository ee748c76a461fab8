// SPDX-License-Identifier: Apache-2.0
/* registry_pb.h — a registry set as the store keeps it (switchyard.v1.State) and back.
 * Only the registry uses this: the store sees messages, the registry sees sets. */
#ifndef SY_REGISTRY_PB_H
#define SY_REGISTRY_PB_H

#include <stddef.h>
#include <stdint.h>

#include "registry/migration.h"
#include "switchyard/v1/state.pb-c.h"

/* st borrows strings from s: free with sy_mset_pb_free (also after a failure). */
int sy_mset_to_pb(const struct sy_migration_state *s, size_t n, uint64_t revision, Switchyard__V1__State *st);
void sy_mset_pb_free(Switchyard__V1__State *st);

/* A new set from a stored state (derived fields and health left for the registry);
 * -EBADMSG with err->msg when a migration is inconsistent. */
int sy_mset_from_pb(const Switchyard__V1__State *st, struct sy_migration_state **out, size_t *n,
		    struct sy_spec_err *err);

#endif
