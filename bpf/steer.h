/* SPDX-License-Identifier: BSD-2-Clause */
/* Layout shared by bpf/steer.bpf.c and lib/steer.c: the maps' keys and values.
 * Kept free of libc and vmlinux types so both sides compile it as is. */
#ifndef BATON_BPF_STEER_H
#define BATON_BPF_STEER_H

#include <linux/types.h>

#define BATON_STEER_SLOTS 64	/* members a group can hold; also BATON_MAX_SLOTS */
#define BATON_STEER_TABLE 1024	/* entries of the weighted pick table (power of two) */
#define BATON_STEER_NONE 0xff	/* table entry meaning "no slot" */

/* One policy, compiled by user space into a pick table: the program
 * chooses table[hash % n]. n == 0 means "no slot takes traffic", and the
 * kernel's own hash picks. Two copies live in the `cfg` array and `ctl.seq`
 * says which one readers use (a seqcount latch, see lib/steer.c). */
struct baton_steer_cfg {
	__u32 n;
	__u32 version;
	__u8 slot[BATON_STEER_TABLE];
};

struct baton_steer_ctl {
	__u32 seq;
	__u32 pad;
};

/* Per-slot counters (per CPU); index BATON_STEER_SLOTS counts decisions
 * handed back to the kernel's hash. */
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

#endif
