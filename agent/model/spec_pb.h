// SPDX-License-Identifier: Apache-2.0
/* spec_pb.h — the migration spec between its protobuf form (Control API, state file)
 * and struct sy_migration_spec. Parsing only: validation is spec_validate.c's.
 * Strings arrive here NUL-terminated by protobuf-c, which cuts a string at an embedded
 * NUL and keeps no length: a request carrying one is refused on its raw bytes by the
 * server transport before the unpack (rpc/pb_strings.h); the state file is our own. */
#ifndef SY_SPEC_PB_H
#define SY_SPEC_PB_H

#include "model/spec.h"
#include "switchyard/v1/migration.pb-c.h"

/* Errors name the field: "target[0]: \"x\": not a numeric …". */
int sy_spec_from_pb(const Switchyard__V1__MigrationSpec *pb, struct sy_migration_spec *out,
		    struct sy_spec_err *err);
/* Fills *pb (initialised here) with allocated copies; free with sy_spec_pb_free. */
int sy_spec_to_pb(const struct sy_migration_spec *m, Switchyard__V1__MigrationSpec *pb);
/* Frees what sy_spec_to_pb allocated (not pb itself). */
void sy_spec_pb_free(Switchyard__V1__MigrationSpec *pb);

#endif
