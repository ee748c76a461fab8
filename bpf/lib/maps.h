// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* maps.h — maps shared by the steering and observe objects. The loader pins every map
 * by name, so the second object to load reuses the first one's map: one definition
 * here, one map in the kernel. */
#ifndef SY_BPF_MAPS_H
#define SY_BPF_MAPS_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SY_MAX_MIGRATIONS);
	__type(key, __u32);
	__type(value, struct sy_migration);
} sy_migrations SEC(".maps");

#include "lib/socks.h"
#include "switchyard/index.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SY_SIDE_STATS_ENTRIES);
	__type(key, __u32);
	__type(value, struct sy_side_stats);
} sy_side_stats SEC(".maps");

#endif
