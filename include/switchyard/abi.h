// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
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

#define SY_ABI_VERSION 8

#define SY_MAX_MIGRATIONS 64	  /* migration ids are 1..SY_MAX_MIGRATIONS-1; 0 = none */
#define SY_MAX_ENDPOINTS  8	  /* legacy and target endpoints per migration */
#define SY_MAX_ROUTES	  1024	  /* legacy and target endpoints, all migrations together */
#define SY_MAX_PINS	  65536	  /* pinned clients, all migrations together */
#define SY_MAX_SOCKETS	  1048576 /* bounds the socket storage of rewritten sockets */
#define SY_MAX_CONNS	  65536	  /* sy_conns: migration sockets connected, no request sent yet */
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
	__u8 capture;	   /* SY_CAPTURE_* bits: whose writes go to the ring buffer */
	__u8 n_rules;	   /* key-prefix rules (sy_prefixes); 0 = the whole endpoint */
	__u8 pad[2];	   /* zero */
	__u32 sample_n;	   /* 1 in sample_n read commands has its key sent; 0 = none */
	__u32 capture_max; /* bytes of one write command captured; longer = truncated */
	__u32 pad2;	   /* zero */
};

/* sy_migration.capture: which sides' write commands are captured for the mirror. */
#define SY_CAPTURE_LEGACY 1 /* writes made on legacy (mirror forward) */
#define SY_CAPTURE_TARGET 2 /* writes made on target (mirror reverse) */

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
	__u64 generation;  /* bumped once by every agent start (fresh or adopting) */
};

/* ---- commands ------------------------------------------------------------------ */

/* The one command table is include/switchyard/commands.def; the agent loads it into
 * sy_cmds (key: the upper-case name, zero padded) for the kernel parser. */
#define SY_CMD_NAME_MAX 24

enum sy_class {
	SY_CLASS_READ = 0,
	SY_CLASS_WRITE = 1,
	SY_CLASS_OTHER = 2, /* connection, server, transaction, unknown commands */
	SY_CLASS_MAX = 4,
};

#define SY_CMDF_NONDET	    0x01 /* not safe to replay: repair instead */
#define SY_CMDF_NUMKEYS	    0x02 /* `first` is the numkeys argument, keys follow */
#define SY_CMDF_DEST1	    0x04 /* with NUMKEYS: argv[1] is a key too */
#define SY_CMDF_STREAMS	    0x08 /* keys follow the STREAMS keyword */
#define SY_CMDF_TXN_MULTI   0x10
#define SY_CMDF_TXN_EXEC    0x20
#define SY_CMDF_TXN_DISCARD 0x40
#define SY_CMDF_SELECT	    0x80
#define SY_CMDF_ADMIN	    0x100 /* never replayed */
#define SY_CMDF_SECRET	    0x200 /* may carry a credential: never captured, no key read */
#define SY_CMDF_TXN_WATCH   0x400 /* WATCH/UNWATCH: the next EXEC's outcome is unknown */

struct sy_cmd_key {
	char name[SY_CMD_NAME_MAX]; /* upper case, zero padded */
};

struct sy_cmd_info {
	__u8 class;	/* enum sy_class */
	__u8 first_key; /* argv index of the first key as the kernel sees it, 0 = none */
	__u16 flags;	/* SY_CMDF_* */
};

/* ---- key-prefix rules ------------------------------------------------------------ */

#define SY_MAX_RULES	16  /* rule 0 + up to 15 prefixes per migration */
#define SY_PREFIX_MAX	64  /* bytes of a prefix */
#define SY_KEY_MAX	128 /* bytes of a key the kernel keeps (sampling, prefix match) */
#define SY_RULE_OUTSIDE 0xff

/* sy_prefixes: LPM trie. Data = migration id (4 bytes) then the key's bytes, so one
 * lookup with prefixlen = 32 + 8 * key length finds the longest prefix of that
 * migration. Rule 0 is the whole endpoint (no prefixes) or, for a migration with
 * prefixes, its keyless commands; rule i >= 1 is prefixes[i - 1]. */
struct sy_prefix_key {
	__u32 prefixlen; /* bits */
	__u32 mig_id;
	__u8 bytes[SY_PREFIX_MAX];
};

struct sy_prefix_rule {
	__u32 rule;
};

/* Per migration, rule and side, per CPU: index sy_rule_index() (index.h). */
struct sy_rule_stats {
	__u64 cmds[SY_CLASS_MAX];  /* commands by enum sy_class */
	__u64 bytes[SY_CLASS_MAX]; /* their bytes on the wire */
};

/* ---- the request parser's state (RESP), per socket ---------------------------------- */

struct sy_resp {
	__u8 state; /* enum sy_resp_state (resp.h) */
	__u8 flags; /* SY_RESPF_* (resp.h) */
	__u8 name_len;
	__u8 key_len;
	__u8 class; /* of the current command, known after its name */
	__u8 first_key;
	__u16 cmd_flags;
	__u32 argc;	 /* arguments of the current command (RESP arrays) */
	__u32 arg;	 /* index of the argument being read */
	__u32 num;	 /* number being read, then bytes left in the bulk or inline line */
	__u32 rule;	 /* of the current command; SY_RULE_OUTSIDE = not ours */
	__u32 cmd_start; /* TCP sequence of the command's first byte */
	__u32 cap_start; /* TCP sequence of the first captured byte */
	__u32 cap_sent;	 /* captured bytes sent so far */
	__u32 cmd_seq;	 /* commands seen on this socket */
	char name[SY_CMD_NAME_MAX];
	__u8 key[SY_KEY_MAX];
};

/* ---- the reply parser's state (RESP2/RESP3), per socket ----------------------------- */

#define SY_REPLY_CODE_MAX 16

struct sy_reply {
	__u8 state;    /* enum sy_reply_state (resp_reply.h) */
	__u8 flags;    /* SY_REPLYF_* (resp_reply.h) */
	__u8 type;     /* first byte of the current top-level reply */
	__u8 kind;     /* type byte of the element being read */
	__u8 code_len; /* bytes of code[] kept; SY_REPLY_CODE_MAX + 1: the word is longer */
	__u8 pad[3];
	__u64 pending; /* elements of the current top-level reply still to read; 0 between replies */
	__u64 num;     /* number being read, then bytes left in a bulk (its "\r\n" included) */
	char code[SY_REPLY_CODE_MAX]; /* the first word of a top-level error ("ERR", "MOVED", …) */
};

/* When requests left, for the latency of each reply: requests are numbered by
 * sy_resp.cmd_seq, replies in the same order (sy_sock.replies). */
#define SY_LAT_MARKS 8

struct sy_lat_mark {
	__u32 from; /* the first request that began in this packet */
	__u32 pad;
	__u64 ns; /* when the packet left */
};

/* What connect4/6 decided for a migration client socket, in sy_conns (an LRU hash
 * keyed by socket cookie) from connect() to the socket's first request byte: creating
 * sk storage costs about 1 us, a hash update a tenth of it (docs/performance.md). The
 * egress program turns it into the socket's storage (struct sy_sock) on the first
 * packet that carries data, and deletes it; getpeername reads whichever exists. */
struct sy_conn {
	struct sy_endpoint dialled; /* the address the application connect()ed to */
	struct sy_endpoint actual;  /* where it was sent (== dialled unless rewritten) */
	__u32 mig_id;
	__u8 side;	/* enum sy_side */
	__u8 rewritten; /* getpeername must report `dialled` */
	__u8 pad[2];
};

/* sk storage of every client socket of a migration (either side), created from its
 * sy_conns entry by the first egress packet with data: its presence is what makes a
 * socket observed, so every other socket on the host costs the observe programs one
 * storage lookup per packet (and, while it has received nothing, a sy_conns lookup
 * per data packet). */
struct sy_sock {
	struct sy_conn c; /* what connect() decided: its sy_conns entry, copied whole; drain
			   * and getpeername read either place as one (sy_conn_of) */
	__u32 snd_nxt;	  /* next new byte of the request stream (TCP sequence) */
	__u32 rcv_nxt;	  /* next new byte of the reply stream */
	__u64 cookie;	  /* socket cookie, names the socket in events */
	struct sy_resp resp;
	/* The previous command's name and table entry: pipelines repeat names, and a
	 * compare is cheaper than a hash lookup. */
	char last_name[SY_CMD_NAME_MAX];
	struct sy_cmd_info last_cmd;
	/* here rather than after c, where c.pad holds nothing: beside c they would cost 8
	 * bytes of alignment padding per socket */
	__u8 last_known; /* 1: last_cmd is the table's entry, 2: unknown name, 0: none */
	__u8 snd_init;	 /* snd_nxt is valid */
	__u8 capturing;	 /* the current command's bytes go to the ring buffer */
	__u8 rcv_init;	 /* rcv_nxt is valid: a byte of its own, since egress writes
			  * snd_init from another CPU at the same time */
	struct sy_reply reply;
	__u32 replies; /* top-level replies begun (pushes excluded): the last one answers
			* request number `replies` */
	/* marks[] is a ring written by egress only (mark_w) and read by ingress only
	 * (mark_r), which may run at once on two CPUs: one writer per index. */
	__u8 mark_w;  /* marks written (mod 256): the newest is marks[(mark_w - 1) % 8] */
	__u8 mark_r;  /* marks done with: the oldest live one is marks[mark_r % 8] */
	__u8 tls;     /* its first bytes were a TLS ClientHello: ciphertext, not parsed */
	__u8 rx_lost; /* the reply stream had a gap: replies are not followed until a
		       * reply starts where the client's next request found the stream */
	/* Set while a CPU walks this socket's replies: ingress runs before TCP takes the
	 * socket's lock, so two CPUs may each hold one of its segments. */
	__u32 rx_walking;
	__u8 tx_lost; /* the request stream had a gap: commands are not followed until a
		       * packet starts with '*', as a RESP command does */
	__u8 pad3[3];
	/* Where to pick the replies up again after a gap, written by egress while
	 * rx_lost: the kernel's rcv_nxt when a request began (high half) and that
	 * request's number (low half; 0: no such point yet). One word, so that ingress
	 * on another CPU never reads half of an update. */
	__u64 rx_sync;
	struct sy_lat_mark marks[SY_LAT_MARKS];
};

/* Per migration and side (index sy_side_index(), index.h), per CPU: what the observe
 * programs measured. Latency is request → first reply byte, log2 buckets of
 * microseconds: bucket i counts samples in [2^i, 2^(i+1)) us (bucket 0 also < 1 us). */
#define SY_LAT_BUCKETS	   32
#define SY_ERR_CLASS_SLOTS 8 /* err_class[]: enum sy_reply_err (resp_reply.h), room to grow */

struct sy_side_stats {
	__u64 bytes_out; /* new request bytes (retransmissions excluded) */
	__u64 bytes_in;	 /* new reply bytes */
	__u64 exchanges; /* replies begun (latency samples): one per answered request */
	__u64 errors;	 /* replies that are RESP errors ('-', RESP3 '!'), each counted */
	__u64 sockets;	 /* migration sockets opened on this side */
	__u64 unparsed;	 /* protocol errors or limits hit: the parser resynchronised */
	__u64 outside;	 /* commands whose key is outside every prefix rule */
	__u64 captured;	 /* write commands sent to the ring buffer */
	__u64 truncated; /* of those, cut at capture_max */
	__u64 sampled;	 /* read keys sent to the ring buffer */
	__u64 ev_lost;	 /* records the ring buffer had no room for */
	__u64 lat[SY_LAT_BUCKETS];
	__u64 tls_sockets; /* sockets whose first bytes were a TLS ClientHello: not parsed */
	__u64 err_class[SY_ERR_CLASS_SLOTS]; /* `errors` by class of the first word (enum sy_reply_err) */
	__u64 gaps; /* segments that came after bytes never seen (a packet dropped before the
		     * observer, or overtaken): the parser lost its place and picked the stream
		     * up again at the next command or reply it could be sure of */
};

/* ---- ring buffer events (sy_events) ----------------------------------------------- */

enum sy_ev_type {
	SY_EVT_WRITE = 1,    /* a fragment of a captured write command */
	SY_EVT_READ_KEY = 2, /* a sampled read command's first key */
};

#define SY_EVF_FIRST	 0x01 /* first fragment of the command */
#define SY_EVF_LAST	 0x02 /* last fragment: `total` is the body's full length */
#define SY_EVF_TRUNCATED 0x04 /* the body is longer than what was sent */
#define SY_EVF_INLINE	 0x08 /* an inline command: the body is the rest of its line */
#define SY_EVF_ABORT	 0x10 /* the command could not be followed (parser lost it) */
#define SY_EVF_OUTSIDE	 0x20 /* its key is outside the counting prefixes (still mirrored) */
/* Several whole commands that one packet carried back to back (a pipeline of writes),
 * in one record: its bytes are the commands exactly as sent, each from its '*', with
 * FIRST and LAST set, `total` their count, `cmd_seq` the first one's number and
 * name_len, argc and the name 0 (the agent reads each command's name and arguments
 * itself). A record per command cost about 170 ns of the client's path per captured
 * write in a pipeline (bench/progcost.sh MIRROR=forward). Only RESP commands, none
 * longer than the migration's capture_bytes, and only when the migration has no
 * prefix rules (a rule's key decides SY_EVF_OUTSIDE per command). */
#define SY_EVF_BATCH 0x40

/* A record is this header then `len` bytes. For a write, the bytes are the command's
 * body after its name: in RESP, from the '$' of argv[1] on; the agent rebuilds
 * "*argc\r\n$n\r\nNAME\r\n" in front (a SY_EVF_BATCH record: whole commands). For a
 * read key, the key. */
struct sy_ev_hdr {
	__u8 type;  /* enum sy_ev_type */
	__u8 flags; /* SY_EVF_* */
	__u8 side;
	__u8 name_len;
	__u32 mig_id;
	__u64 cookie;  /* socket cookie: records of one socket are in order */
	__u64 ts_ns;   /* CLOCK_MONOTONIC at capture */
	__u32 cmd_seq; /* command number on the socket */
	__u32 argc;
	__u32 off;   /* offset of these bytes in the body */
	__u32 len;   /* bytes that follow this header */
	__u32 total; /* with SY_EVF_LAST: the body's full length */
	__u32 rule;
	char name[SY_CMD_NAME_MAX];
};

#define SY_EV_FRAG_MAX 16384 /* bytes of one record */
/* 4 MiB: the agent drains every 5 ms and is woken past a quarter full (1 MiB), and it
 * drained 1.06 M records/s here (bench/observe.sh); records of short writes are about
 * 100 bytes, so a quarter holds ~10 ms of that peak and the whole ring ~40 ms. The
 * kernel maps a ring's data pages twice (so records can wrap), which `ps` counts in
 * the agent's RSS: 16 MiB cost 32 MiB of it. */
#define SY_EV_RING_BYTES (4u << 20)

#ifndef __BPF__
_Static_assert(sizeof(struct sy_endpoint) == 20, "sy_endpoint ABI");
_Static_assert(sizeof(struct sy_route) == 8, "sy_route ABI");
_Static_assert(sizeof(struct sy_migration) == 32 + 20 * SY_MAX_ENDPOINTS, "sy_migration ABI");
_Static_assert(sizeof(struct sy_pin_key) == 16, "sy_pin_key ABI");
_Static_assert(sizeof(struct sy_pin) == 8, "sy_pin ABI");
_Static_assert(sizeof(struct sy_steer_counters) == 8 * SY_DEC_MAX, "sy_steer_counters ABI");
_Static_assert(sizeof(struct sy_config) == 16, "sy_config ABI");
_Static_assert(sizeof(struct sy_resp) == 40 + SY_CMD_NAME_MAX + SY_KEY_MAX, "sy_resp ABI");
_Static_assert(sizeof(struct sy_reply) == 24 + SY_REPLY_CODE_MAX, "sy_reply ABI");
_Static_assert(sizeof(struct sy_lat_mark) == 16, "sy_lat_mark ABI");
_Static_assert(sizeof(struct sy_sock) == 64 + sizeof(struct sy_resp) + SY_CMD_NAME_MAX + 8 +
						 sizeof(struct sy_reply) + 24 + 16 * SY_LAT_MARKS,
	       "sy_sock ABI");
_Static_assert(sizeof(struct sy_conn) == 48, "sy_conn ABI");
_Static_assert(sizeof(struct sy_side_stats) == 8 * (11 + SY_LAT_BUCKETS + 1 + SY_ERR_CLASS_SLOTS + 1),
	       "sy_side_stats ABI");
_Static_assert(sizeof(struct sy_cmd_info) == 4, "sy_cmd_info ABI");
_Static_assert(sizeof(struct sy_prefix_key) == 8 + SY_PREFIX_MAX, "sy_prefix_key ABI");
_Static_assert(sizeof(struct sy_rule_stats) == 16 * SY_CLASS_MAX, "sy_rule_stats ABI");
_Static_assert(sizeof(struct sy_ev_hdr) == 48 + SY_CMD_NAME_MAX, "sy_ev_hdr ABI");
#endif

#endif
