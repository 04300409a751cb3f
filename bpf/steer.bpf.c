/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Steering program for one SO_REUSEPORT group: picks the member for each new
 * connection (or datagram) by stable slot, and, loaded as
 * BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, picks where the queue of a closing or
 * shut-down listener goes instead of letting the kernel reset it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "steer.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, BATON_STEER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct baton_steer_cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct baton_steer_ctl);
} ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BATON_STEER_SLOTS + 1);
	__type(key, __u32);
	__type(value, struct baton_steer_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_STEER_SLOTS);
	__type(key, __u32);
	__type(value, struct baton_steer_origin);
} origin SEC(".maps");

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))

/* How many further table entries to try when the picked slot is empty. The
 * table interleaves slots, so a few steps reach every slot with weight. */
#define BATON_STEER_PROBES 8

static __always_inline void count(__u32 slot, int migrating, int missed)
{
	struct baton_steer_stats *st = bpf_map_lookup_elem(&stats, &slot);

	if (!st)
		return;
	if (missed)
		st->missed++;
	else if (migrating)
		st->migrated++;
	else
		st->selected++;
}

/* The slot whose socket is closing or shut down: on a migration md->sk is
 * that listener (migrating_sk is the connection that moves). Found by its
 * cookie, as the sockarray cannot be read from here: a linear scan, but
 * only on migrations, never on a new connection. */
static __always_inline void count_out(struct sk_reuseport_md *md)
{
	struct bpf_sock *sk = md->sk;
	__u64 cookie;
	int i;

	if (!sk)
		return;
	cookie = bpf_get_socket_cookie(sk);
	for (i = 0; i < BATON_STEER_SLOTS; i++) {
		__u32 k = i;	/* its address goes to the helper: the counter stays in a register */
		struct baton_steer_origin *o = bpf_map_lookup_elem(&origin, &k);

		if (o && o->cookie == cookie) {
			__sync_fetch_and_add(&o->migrated_out, 1);
			return;
		}
	}
}

SEC("sk_reuseport/migrate")
int steer(struct sk_reuseport_md *md)
{
	__u32 zero = 0, hash = md->hash, seq, idx, n = 0, pos, i, j;
	int migrating = md->migrating_sk != 0;
	__u8 cand[BATON_STEER_PROBES];
	struct baton_steer_ctl *c;
	struct baton_steer_cfg *p;

	if (migrating)
		count_out(md);
	c = bpf_map_lookup_elem(&ctl, &zero);
	if (!c)
		return SK_PASS;

	/* Latch read: the writer only modifies the copy that seq tells readers
	 * not to use; everything we take from the copy (its size and the
	 * candidate slots) is read before seq is checked again, so one decision
	 * never mixes two policies. */
	for (i = 0; i < 4; i++) {
		seq = READ_ONCE(c->seq);
		idx = seq & 1;
		p = bpf_map_lookup_elem(&cfg, &idx);
		if (!p)
			return SK_PASS;
		n = READ_ONCE(p->n);
		if (n > BATON_STEER_TABLE)
			n = 0;
		pos = n ? hash % n : 0;
		for (j = 0; j < BATON_STEER_PROBES; j++)
			cand[j] = n ? READ_ONCE(p->slot[(pos + j) % n & (BATON_STEER_TABLE - 1)])
				    : BATON_STEER_NONE;
		if (READ_ONCE(c->seq) == seq)
			break;
	}
	if (i == 4 || !n) {
		count(BATON_STEER_SLOTS, migrating, 0);
		return SK_PASS;	/* no stable policy: the kernel's hash decides */
	}

	for (j = 0; j < BATON_STEER_PROBES; j++) {
		__u32 slot = cand[j];

		if (slot >= BATON_STEER_SLOTS)
			break;
		if (bpf_sk_select_reuseport(md, &socks, &slot, 0) == 0) {
			count(slot, migrating, 0);
			return SK_PASS;
		}
		/* empty slot (closed, or the very listener being migrated away) */
		count(slot, migrating, 1);
	}
	/* Never drop: hand the choice back to the kernel's hash over the
	 * listeners that are left. */
	count(BATON_STEER_SLOTS, migrating, 0);
	return SK_PASS;
}
