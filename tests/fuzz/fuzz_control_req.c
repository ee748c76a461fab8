// SPDX-License-Identifier: Apache-2.0
/* fuzz_control_req.c — every Control request type decoded from the same bytes, and the
 * MigrationSpec inside converted and validated exactly as ApplyMigration does (spec_pb.c
 * then the one validator). No crash, no leak, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "model/spec.h"
#include "model/spec_pb.h"
#include "switchyard/v1/control.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const ProtobufCMessageDescriptor *descs[] = {
		&switchyard__v1__apply_migration_request__descriptor,
		&switchyard__v1__get_migration_request__descriptor,
		&switchyard__v1__list_migrations_request__descriptor,
		&switchyard__v1__delete_migration_request__descriptor,
		&switchyard__v1__set_ratio_request__descriptor,
		&switchyard__v1__pin_request__descriptor,
		&switchyard__v1__unpin_request__descriptor,
		&switchyard__v1__status_request__descriptor,
	};

	for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
		ProtobufCMessage *m = protobuf_c_message_unpack(descs[i], NULL, size, data);

		if (!m)
			continue;
		if (descs[i] == &switchyard__v1__apply_migration_request__descriptor) {
			Switchyard__V1__ApplyMigrationRequest *r = (void *)m;
			struct sy_migration_spec s;
			struct sy_spec_err err;

			if (r->spec && sy_spec_from_pb(r->spec, &s, &err) == 0) {
				sy_migration_spec_validate(&s, &err);
				sy_migration_spec_free(&s);
			}
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return 0;
}
