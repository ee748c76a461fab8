// SPDX-License-Identifier: Apache-2.0
/* spec_yaml.h — the YAML → spec reader on a document model/yaml.h already parsed
 * (the daemon parses its config file once: the spec and the exporters' telemetry:
 * section read the same document). sy_spec_load_file/buf (spec.h) parse and read. */
#ifndef SY_SPEC_YAML_H
#define SY_SPEC_YAML_H

#include "model/spec.h"
#include "model/yaml.h"

/* The `migrations:` of a parsed document, validated. 0, or a negative errno with
 * "FILE:LINE: what" in err->msg. */
int sy_spec_from_yaml(struct sy_yaml *y, struct sy_spec *out, struct sy_spec_err *err);

#endif
