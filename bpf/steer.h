/* SPDX-License-Identifier: BSD-2-Clause */
/* Layout shared by bpf/steer.bpf.c and lib/steer*.c: the maps' keys and
 * values, and the names they are pinned under. Kept free of libc and
 * vmlinux types so both sides compile it as is.
 *
 * map        written by                              read by                          pinned as
 * socks      lib/steer.c (add, unfence, remove)      program; lib/sockiter.c,         socks
 *            kernel (a closed member leaves)         cli/pins.c (live members)
 * listeners  lib/steer_set.c (a listener's address   program (which listener)         listeners
 *            to its index; not used with one)
 * policy     lib/steer_banks.c (pick tables, banks)  program; lib/steer_pins.c        policy
 *                                                    (resume), steer_stats.c (share),
 *                                                    lib/sockiter.c (baton ls)
 * live       lib/steer_banks.c (the live bank)       as policy                        live
 * owners     lib/steer_set.c (lib/watch.c's owner)   program (sigdown.h)              (not pinned)
 * sigdown    lib/steer_set.c (tgids), sigwatch       program (sigdown.h)              (not pinned)
 * stats      program (per CPU)                       lib/steer_stats.c                stats
 * pins       lib/steer_flows.c (source-port pins)    program                          (not pinned)
 * origin     lib/steer.c (cookie), program (count)   lib/steer_stats.c                origin
 * flowcfg    lib/steer_flows.c (once)                program                          flowcfg
 * flows      program (LRU)                           lib/steer_flows.c (scan)         flows
 * slotep     lib/steer_flows.c (epoch bumps)         program; steer_flows.c           slotep
 * markers    lib/steer_flows.c (QUIC markers)        program; steer_flows.c (resume)  markers
 * flowstats  program (per CPU)                       lib/steer_flows.c                flowstats
 * flowcache  program (each CPU's cache of `flows`)   program                          (not pinned)
 * and the program itself, pinned as "steer" so bpftool and a later baton see
 * it. The directory that holds them: common/pinlayout.h.
 *
 * One program and one set of maps serve every listener of a steering set
 * (lib/steer_set.c; a group alone is a set of one). Per-slot maps (socks,
 * stats, origin, slotep, owners) hold BATON_STEER_SLOTS entries per
 * listener: listener L's slot S is "global slot" L * BATON_STEER_SLOTS + S;
 * pins, markers and flowcfg hold their entries per listener the same way;
 * policy holds listener L's table of bank B at B * listeners + L. */
#ifndef BATON_BPF_STEER_H
#define BATON_BPF_STEER_H

#include <linux/types.h>

/* The pinned maps, in the order lib/steer_pins.c pins and repins them:
 * X(name) for each; the pin's file name is the map's name. */
#define BATON_STEER_PINNED_MAPS(X) \
	X(socks) X(listeners) X(policy) X(live) X(stats) X(origin) X(flowcfg) X(flows) X(slotep) X(markers) X(flowstats)
#define BATON_STEER_PIN_PROG "steer"	/* the program's pin */
#define BATON_STEER_PIN_SOCKS "socks"	/* what marks a directory as a group's (cli/pins.c) */
/* The pins of the layout before policy banks (a seqcount latch: two copies
 * in `cfg`, the sequence in `ctl`), left by an older baton: read once to
 * carry the policy over, then removed (lib/steer_pins.c). */
#define BATON_STEER_OLD_PINS(X) X(cfg) X(ctl)

#define BATON_STEER_SLOTS 64	/* members a group can hold; also BATON_MAX_SLOTS */
#define BATON_STEER_TABLE 1024	/* entries of the weighted pick table (power of two) */
#define BATON_STEER_NONE 0xff	/* table entry meaning "no slot" */

/* One listener's policy, compiled by user space into a pick table: the
 * program chooses table[hash % n]. n == 0 means "no slot takes traffic", and
 * the kernel's own hash picks. The `policy` array holds K banks of one
 * policy per listener of the set (entry bank * listeners + listener); the
 * set's one `live` word names the bank readers use, so one store switches
 * every listener at the same instant, and a bank is written only while no
 * reader can reach it (policy banks, lib/steer_banks.c). */
struct baton_steer_cfg {
	__u32 n;
	__u32 version;
	__u8 slot[BATON_STEER_TABLE];
};

/* What the program knows a listener by: its group's socket (md->sk). */
struct baton_steer_lkey {
	__u32 family;	/* AF_INET or AF_INET6 */
	__u32 protocol;	/* IPPROTO_TCP or IPPROTO_UDP */
	__u32 port;	/* host order, as bpf_sock's src_port */
	__u32 addr[4];	/* network order; IPv4 in addr[0] */
};

/* Connections from a source port in [lo, hi] go to SLOT, whatever the
 * policy: a probe from a reserved port range reaches one chosen member
 * (baton run --check). hi == 0: the entry is unused. With family 4 or 6
 * only connections from that source address are pinned: any host can pick
 * its source port, none can send from the supervisor's own address. */
#define BATON_STEER_PINS 4

struct baton_steer_pin {
	__u16 lo;
	__u16 hi;
	__u32 slot;
	__u32 family;	/* 0: any source address; 4 or 6: only from addr */
	__u32 addr[4];	/* network order; IPv4 in addr[0] */
};

/* The one entry of `live`: the bank every decision reads. */
struct baton_steer_live {
	__u32 bank;
	__u32 pad;
};

/* Banks: K = clamp(BATON_STEER_BANK_BYTES / (cap * sizeof(cfg)), MIN, MAX)
 * for a set of cap listeners: 64 for one, 3 from about 1,000 on. More banks let more commits run ahead of the
 * kernel's grace periods before a writer waits. */
#define BATON_STEER_BANK_BYTES (4u << 20)
#define BATON_STEER_BANKS_MIN 3
#define BATON_STEER_BANKS_MAX 64

static inline __u32 baton_steer_banks(__u32 cap)
{
	__u64 k = BATON_STEER_BANK_BYTES / ((__u64)(cap ? cap : 1) * sizeof(struct baton_steer_cfg));

	return k < BATON_STEER_BANKS_MIN ? BATON_STEER_BANKS_MIN : k > BATON_STEER_BANKS_MAX ? BATON_STEER_BANKS_MAX : (__u32)k;
}

/* The layout before policy banks, kept to read an older baton's pins. */
struct baton_steer_ctl {
	__u32 seq;
	__u32 pad;
};

/* Per-slot counters (per CPU), by global slot; index
 * listeners * BATON_STEER_SLOTS + L counts listener L's decisions handed back
 * to the kernel's hash. */
struct baton_steer_stats {
	__u64 selected;	/* new connections or datagrams steered to the slot */
	__u64 migrated;	/* queued or half-open connections moved to the slot */
	__u64 missed;	/* the picked slot held no listening socket */
};

/* Per slot: the cookie of the listening socket that user space put there,
 * and how many queued connections the kernel asked the program to move
 * out of that socket (md->sk when md->migrating_sk is set). Left in place when the member
 * leaves, so a socket that closes later still finds its slot; overwritten
 * when the slot takes a new member. Not per CPU: migrations are rare, and
 * the cookie must be one value. */
struct baton_steer_origin {
	__u64 cookie;
	__u64 migrated_out;
};

/* ---- UDP flows (bpf/steer.bpf.c flow_*): a datagram of a known flow goes
 * where the flow's first datagram went, so a reload leaves each flow with
 * the generation that holds its state. */

#define BATON_FLOWS_OFF_ 0	/* mirrors enum baton_flows in baton.h */
#define BATON_FLOWS_TUPLE_ 1
#define BATON_FLOWS_QUIC_ 2

/* The group's flow settings: one entry, written before the first member. */
struct baton_flow_cfg {
	__u32 mode;	/* BATON_FLOWS_*_ */
	__u32 pad;
	__u64 idle_ns;	/* a flow unseen this long is forgotten */
};

/* The 4-tuple, addresses in network order (IPv4: first word only). */
struct baton_flow_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u32 family;	/* 4 or 6 */
};

struct baton_flow {
	__u64 last_ns;	/* bpf_ktime_get_ns() of its last datagram (coarse: see FLOW_TOUCH_NS) */
	__u32 slot;
	__u32 epoch;	/* the slot's epoch when the flow was placed */
};

/* The program's cache in front of `flows` (flowcache): this many entries
 * per CPU (CPU c's at c * BATON_FLOW_CACHE_SETS), each flow in one of two
 * picked by the kernel's flow hash; lib/steer_flows.c sizes it. */
#define BATON_FLOW_CACHE_SETS 1024	/* power of two */

struct baton_flow_cache {
	struct baton_flow_key key;
	__u32 slot;	/* as the flow's entry in `flows` has it */
	__u32 epoch;	/* the slot's epoch the flow was placed under */
	__u64 seen_ns;	/* bpf_ktime_get_coarse_ns() when this CPU found it in `flows` */
	__u64 pad;	/* one entry, one cache line */
};

/* QUIC: the generation marker in a destination connection ID, to a slot. */
struct baton_flow_marker {
	__u32 slot_plus1;	/* 0: no generation has this marker */
	__u32 epoch;		/* the slot's epoch when it was set */
};

/* Per-CPU counters of the flow table (one entry). */
struct baton_flow_stats_ {
	__u64 followed;		/* datagrams steered by the table */
	__u64 by_cid;		/* datagrams steered by a QUIC CID marker */
	__u64 created;		/* flows inserted */
	__u64 expired;		/* entries found idle or on a member that left */
	__u64 insert_failed;	/* datagrams steered with no entry: the insert failed */
};

#endif
