/* abi.h — the structs shared by the kernel programs (bpf/) and the agent.
 *
 * This header is the ABI between switchyardd and the pinned maps: a pinned map
 * outlives the daemon that created it, so a changed layout must bump
 * SY_ABI_VERSION (the agent refuses to adopt maps of another version).
 * Fixed-size types only, explicit padding, a size check per struct.
 */
#ifndef SWITCHYARD_ABI_H
#define SWITCHYARD_ABI_H

#ifdef __BPF__
/* vmlinux.h provides __u8 … __u64 */
#else
#include <linux/types.h>
#endif

#define SY_ABI_VERSION 1

#define SY_MAX_MIGRATIONS 64	  /* migration ids are 1..SY_MAX_MIGRATIONS-1; 0 = none */
#define SY_MAX_ENDPOINTS  8	  /* legacy and target endpoints per migration */
#define SY_MAX_ROUTES	  1024	  /* legacy and target endpoints, all migrations together */
#define SY_MAX_PINS	  65536	  /* pinned clients, all migrations together */
#define SY_MAX_SOCKETS	  1048576 /* bounds the socket storage of rewritten sockets */
#define SY_RATIO_MAX	  10000	  /* basis points */

#define SY_AF_INET  2
#define SY_AF_INET6 10

/* An ip:port. IPv4 is stored as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) so one
 * key type serves connect4, connect6 and dual-stack sockets dialling mapped addresses. */
struct sy_endpoint {
	__u8 addr[16]; /* network byte order; IPv4 as ::ffff:a.b.c.d */
	__u16 port;    /* network byte order */
	__u8 family;   /* SY_AF_INET or SY_AF_INET6: the family the operator wrote */
	__u8 pad;      /* zero */
};

enum sy_role {
	SY_ROLE_LEGACY = 0, /* connects here are steered */
	SY_ROLE_TARGET = 1, /* connects here are only recognised (observed), never steered */
};

/* routes: every endpoint of every migration → migration. Hash map, key struct
 * sy_endpoint. One lookup tells connect() whether a socket belongs to a migration at
 * all, whichever side the application dialled. */
struct sy_route {
	__u32 mig_id; /* index into the migrations array */
	__u8 role;    /* enum sy_role */
	__u8 pad[3];  /* zero */
};

enum sy_client_mode {
	SY_CLIENT_CGROUP = 0,	  /* client id = cgroup id of the connecting task */
	SY_CLIENT_CONNECTION = 1, /* client id = socket cookie: each connection decides alone */
};

/* migrations: array map indexed by mig_id. */
struct sy_migration {
	__u64 salt;	   /* mixed into the client hash: per-migration, stable for its life */
	__u32 ratio_bp;	   /* share of clients on target, 0..SY_RATIO_MAX */
	__u8 active;	   /* 0: slot free, the programs ignore routes to it */
	__u8 client_mode;  /* enum sy_client_mode */
	__u8 n_targets;	   /* valid entries in targets[] */
	__u8 healthy_mask; /* bit i set: targets[i] answers health checks */
	struct sy_endpoint targets[SY_MAX_ENDPOINTS];
};

enum sy_side {
	SY_SIDE_LEGACY = 0,
	SY_SIDE_TARGET = 1,
};

/* pins: hash map, operator overrides that win over the hash. */
struct sy_pin_key {
	__u64 cgroup_id; /* cgroup v2 id (the inode number of its directory) */
	__u32 mig_id;
	__u32 pad; /* zero */
};

struct sy_pin {
	__u8 side;   /* enum sy_side */
	__u8 pad[7]; /* zero */
};

/* Steering decisions, counted per migration in a per-CPU array indexed by mig_id. */
enum sy_decision {
	SY_DEC_LEGACY = 0,	  /* hash said legacy */
	SY_DEC_TARGET = 1,	  /* hash said target: rewritten */
	SY_DEC_PINNED_LEGACY = 2, /* a pin said legacy */
	SY_DEC_PINNED_TARGET = 3, /* a pin said target: rewritten */
	SY_DEC_FALLBACK = 4,	  /* target chosen but no healthy target (or no target of the
				   * socket's family): stayed on legacy */
	SY_DEC_MAX = 8,
};

struct sy_steer_counters {
	__u64 decisions[SY_DEC_MAX]; /* indexed by enum sy_decision */
};

/* config: one-entry array map, settings of the running agent. */
struct sy_config {
	__u32 abi_version; /* SY_ABI_VERSION of the maps' creator */
	__u32 agent_tgid;  /* the agent's process: its own sockets are never steered */
	__u64 generation;  /* bumped by the agent on every configuration change */
};

/* sk storage of every client socket of a migration (either side), created at
 * connect(): its presence is what makes a socket observed, so every other socket on
 * the host costs the observe programs one storage lookup. */
struct sy_sock {
	struct sy_endpoint dialled; /* the address the application connect()ed to */
	struct sy_endpoint actual;  /* where it was sent (== dialled unless rewritten) */
	__u32 mig_id;
	__u8 side;       /* enum sy_side */
	__u8 rewritten;  /* getpeername must report `dialled` */
	__u8 seq_init;   /* bit 0: snd_nxt valid, bit 1: rcv_nxt valid */
	__u8 pad;        /* zero */
	__u32 snd_nxt;   /* next new byte of the request stream (TCP sequence) */
	__u32 rcv_nxt;   /* next new byte of the reply stream */
	__u64 req_ns;    /* when the oldest unanswered request left, 0 when idle */
};

/* Per migration and side (index mig_id * 2 + side), per CPU: what the observe
 * programs measured. Latency is request → first reply byte, log2 buckets of
 * microseconds: bucket i counts samples in [2^i, 2^(i+1)) us (bucket 0 also < 1 us). */
#define SY_LAT_BUCKETS 32

struct sy_side_stats {
	__u64 bytes_out;  /* new request bytes (retransmissions excluded) */
	__u64 bytes_in;   /* new reply bytes */
	__u64 exchanges;  /* request bursts answered (latency samples) */
	__u64 errors;     /* answers whose first byte is a RESP error ('-') */
	__u64 sockets;    /* migration sockets opened on this side */
	__u64 lat[SY_LAT_BUCKETS];
};

#ifndef __BPF__
_Static_assert(sizeof(struct sy_endpoint) == 20, "sy_endpoint ABI");
_Static_assert(sizeof(struct sy_route) == 8, "sy_route ABI");
_Static_assert(sizeof(struct sy_migration) == 16 + 20 * SY_MAX_ENDPOINTS, "sy_migration ABI");
_Static_assert(sizeof(struct sy_pin_key) == 16, "sy_pin_key ABI");
_Static_assert(sizeof(struct sy_pin) == 8, "sy_pin ABI");
_Static_assert(sizeof(struct sy_steer_counters) == 8 * SY_DEC_MAX, "sy_steer_counters ABI");
_Static_assert(sizeof(struct sy_config) == 16, "sy_config ABI");
_Static_assert(sizeof(struct sy_sock) == 64, "sy_sock ABI");
_Static_assert(sizeof(struct sy_side_stats) == 8 * (5 + SY_LAT_BUCKETS), "sy_side_stats ABI");
#endif

#endif
