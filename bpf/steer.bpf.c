/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Steering program for the SO_REUSEPORT groups of a steering set (every
 * listener of a supervisor, or one group alone): finds the listener from the
 * group's socket, picks the member for each new connection (or datagram) by
 * stable slot of that listener, and, loaded as
 * BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, picks where the queue of a closing or
 * shut-down listener goes instead of letting the kernel reset it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "steer.h"
#define BATON_SIGDOWN_STEER
#include "sigdown.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Listeners sharing this program, set before load: the maps' max_entries
 * below are per listener and user space multiplies them by it (bpf/steer.h
 * says where listener L's entries are). With one, the listener lookup is
 * skipped. */
const volatile __u32 nlisteners = 1;

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, BATON_STEER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

/* The listener's socket (family, protocol, bound address and port) to its
 * index: one lookup per decision when several listeners share the program. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct baton_steer_lkey);
	__type(value, __u32);
} listeners SEC(".maps");

/* Policy banks (lib/steer_banks.c): entry bank * nlisteners + listener.
 * User space sets max_entries (K banks * nlisteners) before load, and
 * writes both maps through mmap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_STEER_BANKS_MAX);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct baton_steer_cfg);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct baton_steer_live);
} live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BATON_STEER_SLOTS + 1);
	__type(key, __u32);
	__type(value, struct baton_steer_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_STEER_PINS);
	__type(key, __u32);
	__type(value, struct baton_steer_pin);
} pins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_STEER_SLOTS);
	__type(key, __u32);
	__type(value, struct baton_steer_origin);
} origin SEC(".maps");

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define AF_INET_ 2
#define NO_GSLOT 0xffffffffu	/* global slots go past BATON_STEER_NONE */

/* The listener this decision is for: the group's socket (md->sk; on a
 * migration the closing listener, of the same address) by its family,
 * protocol, bound address and port. -1: not one of the set's. */
static __always_inline int listener_of(struct sk_reuseport_md *md, __u32 *lid)
{
	struct baton_steer_lkey k;
	struct bpf_sock *sk;
	__u32 *v;

	*lid = 0;
	if (nlisteners <= 1)
		return 0;
	sk = md->sk;
	if (!sk)
		return -1;
	__builtin_memset(&k, 0, sizeof(k));
	k.family = sk->family;
	k.protocol = sk->protocol;
	k.port = sk->src_port;
	if (k.family == AF_INET_) {
		k.addr[0] = sk->src_ip4;
	} else {
		k.addr[0] = sk->src_ip6[0];
		k.addr[1] = sk->src_ip6[1];
		k.addr[2] = sk->src_ip6[2];
		k.addr[3] = sk->src_ip6[3];
	}
	v = bpf_map_lookup_elem(&listeners, &k);
	if (!v || *v >= nlisteners)
		return -1;
	*lid = *v;
	return 0;
}

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

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD

/* The packet's source address into SADDR: 4 or 6, or -1 if unreadable. It
 * lies before the transport header, so it is read relative to the network
 * header (IPv4: byte 12, IPv6: byte 8). */
static __always_inline int source_addr(struct sk_reuseport_md *md, __u32 *saddr)
{
	if (md->eth_protocol == bpf_htons(ETH_P_IP_))
		return bpf_skb_load_bytes_relative(md, 12, saddr, 4, BPF_HDR_START_NET) ? -1 : 4;
	if (md->eth_protocol == bpf_htons(ETH_P_IPV6_))
		return bpf_skb_load_bytes_relative(md, 8, saddr, 16, BPF_HDR_START_NET) ? -1 : 6;
	return -1;
}

/* A new connection whose source port is pinned goes to its slot, if it also
 * comes from the pin's source address (when the pin names one). The packet
 * starts at the transport header, whose first two bytes are the source port
 * for TCP and UDP alike; a migration carries no packet. */
static __always_inline int pinned(struct sk_reuseport_md *md, __u32 lid)
{
	void *data = (void *)(long)md->data, *end = (void *)(long)md->data_end;
	__u32 saddr[4] = { 0, 0, 0, 0 };
	int fam = 0;	/* 0: not read yet */
	__u16 sport;
	__u32 k;

	if (data + 2 > end)
		return 0;
	sport = bpf_ntohs(*(__u16 *)data);
	for (k = 0; k < BATON_STEER_PINS; k++) {
		__u32 key = lid * BATON_STEER_PINS + k, slot;
		struct baton_steer_pin *p = bpf_map_lookup_elem(&pins, &key);

		if (!p || !p->hi || sport < p->lo || sport > p->hi)
			continue;
		if (p->family) {
			if (!fam)
				fam = source_addr(md, saddr);
			if (fam != (int)p->family || saddr[0] != p->addr[0] ||
			    (fam == 6 && (saddr[1] != p->addr[1] || saddr[2] != p->addr[2] || saddr[3] != p->addr[3])))
				continue;
		}
		slot = lid * BATON_STEER_SLOTS + p->slot;
		if (p->slot < BATON_STEER_SLOTS && bpf_sk_select_reuseport(md, &socks, &slot, 0) == 0) {
			count(slot, 0, 0);
			return 1;
		}
	}
	return 0;
}

/* The slot whose socket is closing or shut down: on a migration md->sk is
 * that listener (migrating_sk is the connection that moves). Found by its
 * cookie, as the sockarray cannot be read from here: a linear scan, but
 * only on migrations, never on a new connection. */
static __always_inline void count_out(struct sk_reuseport_md *md, __u32 lid)
{
	struct bpf_sock *sk = md->sk;
	__u64 cookie;
	int i;

	if (!sk)
		return;
	cookie = bpf_get_socket_cookie(sk);
	for (i = 0; i < BATON_STEER_SLOTS; i++) {
		__u32 k = lid * BATON_STEER_SLOTS + i;	/* its address goes to the helper */
		struct baton_steer_origin *o = bpf_map_lookup_elem(&origin, &k);

		if (o && o->cookie == cookie) {
			__sync_fetch_and_add(&o->migrated_out, 1);
			return;
		}
	}
}


/* ---- UDP flows ----------------------------------------------------------
 * Kept apart from the policy above: steer() asks flow_follow() first and
 * tells flow_place() where the policy put a new flow. */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct baton_flow_cfg);
} flowcfg SEC(".maps");

/* Sized by user space before load (?flow_table=N); 1 when flows are off. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct baton_flow_key);
	__type(value, struct baton_flow);
} flows SEC(".maps");

/* Bumped by user space whenever a slot gets a new member, is fenced or
 * emptied: flows placed under an older epoch are then new flows again. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_STEER_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} slotep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct baton_flow_marker);
} markers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct baton_flow_stats_);
} flowstats SEC(".maps");

/* A flow's timestamp is written at most this often: one store per
 * millisecond per flow, not per datagram, keeps the entry's cache line
 * from bouncing between CPUs under load. */
#define FLOW_TOUCH_NS 1000000ULL

#define ETH_P_IP_BE 0x0008	/* htons(ETH_P_IP) */
#define ETH_P_IPV6_BE 0xdd86	/* htons(ETH_P_IPV6) */
#define QUIC_V2 0x6b3343cfu

struct flow_ctx {
	struct baton_flow_key key;
	__u64 now;
	struct baton_flow *stale;	/* the flow's entry, found idle or orphaned */
	struct baton_flow_cache *ent;	/* this CPU's cache entry for the flow, or 0 */
	__u64 coarse;			/* bpf_ktime_get_coarse_ns(), with ent */
	int on;				/* place the policy's pick in the table */
	__u32 lid;			/* the listener: flows hold global slots */
};

enum { FS_FOLLOWED, FS_BY_CID, FS_CREATED, FS_EXPIRED, FS_INSERT_FAILED };

static __always_inline void flow_count(int what)
{
	__u32 zero = 0;
	struct baton_flow_stats_ *st = bpf_map_lookup_elem(&flowstats, &zero);

	if (!st)
		return;
	switch (what) {
	case FS_FOLLOWED: st->followed++; break;
	case FS_BY_CID: st->by_cid++; break;
	case FS_CREATED: st->created++; break;
	case FS_EXPIRED: st->expired++; break;
	default: st->insert_failed++; break;
	}
}

static __always_inline __u32 slot_epoch(__u32 slot)
{
	__u32 *e = bpf_map_lookup_elem(&slotep, &slot);

	return e ? *e : 0;
}

/* The datagram's 4-tuple. The context starts at the UDP header (ports);
 * the addresses are read relative to the network header. */
static __always_inline int flow_key(struct sk_reuseport_md *md, struct baton_flow_key *k)
{
	void *data = (void *)(long)md->data, *end = (void *)(long)md->data_end;
	__u16 ports[2];

	/* the key is hashed whole: IPv4's unused address words must be zero */
	__builtin_memset(k, 0, sizeof(*k));
	/* the UDP header is in the linear part (udp_rcv pulls it): read in place */
	if (data + sizeof(ports) <= end) {
		k->sport = ((__u16 *)data)[0];
		k->dport = ((__u16 *)data)[1];
	} else if (bpf_skb_load_bytes(md, 0, ports, sizeof(ports))) {
		return -1;
	} else {
		k->sport = ports[0];
		k->dport = ports[1];
	}
	if (md->eth_protocol == ETH_P_IP_BE) {
		k->family = 4;
		__u32 a[2];

		/* saddr and daddr follow each other at offset 12: one load */
		if (bpf_skb_load_bytes_relative(md, 12, a, sizeof(a), BPF_HDR_START_NET))
			return -1;
		k->saddr[0] = a[0];
		k->daddr[0] = a[1];
		return 0;
	}
	if (md->eth_protocol == ETH_P_IPV6_BE) {
		k->family = 6;
		return bpf_skb_load_bytes_relative(md, 8, k->saddr, 32, BPF_HDR_START_NET) ? -1 : 0;
	}
	return -1;
}

/* ---- flow cache: each CPU's recently followed flows ---------------------
 * A datagram of a flow this CPU followed a moment ago is steered from here:
 * an array lookup (inlined by the verifier) and one cache line (two if
 * the flow sits in its second place), instead of hashing the 40-byte key
 * into `flows`; no write. `flows` stays the truth
 * (the user side reads only it): an entry (struct baton_flow_cache) is
 * trusted for a ttl after this CPU found the flow live there, when its
 * last_ns was at most FLOW_TOUCH_NS old, so a live flow's last_ns in
 * `flows` lags its last datagram by less than ttl + a clock tick +
 * FLOW_TOUCH_NS, and no entry is trusted once `flows` would call the flow
 * idle. Each CPU has its own region, BATON_FLOW_CACHE_SETS entries from
 * cpu * BATON_FLOW_CACHE_SETS; a program runs on one CPU at a time, so no
 * entry is ever seen half written. md->hash (the kernel's salted 4-tuple
 * hash) picks the places: a sender cannot aim collisions, and one only
 * costs a miss. Sized with flows on (lib/steer_flows.c), else 1 entry;
 * mmapable only for its layout: the values then start on a page, so each
 * entry is one cache line. Not pinned: a new program starts empty. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct baton_flow_cache);
} flowcache SEC(".maps");

/* How long a cached flow is trusted: 1/64 of the idle time, at most a
 * second; only with idle times of a second or more, so that what the
 * coarse clock and FLOW_TOUCH_NS add stays well below idle_ns. A flow
 * whose datagrams come further apart than idle_ns less that may be taken
 * for idle: the granularity of idle_ns. */
#define FLOW_CACHE_MAX_NS 1000000000ULL
#define FLOW_CACHE_MIN_IDLE_NS 1000000000ULL

static __always_inline int flow_key_eq(const struct baton_flow_key *a, const struct baton_flow_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 d = 0;
	int i;

	for (i = 0; i < (int)(sizeof(*a) / 4); i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* This CPU's entry for the flow: one of two places picked by two parts of
 * the kernel's flow hash, so two flows that share one place rarely share
 * the other. The entry holding the flow, else the one to take for it (the
 * one filled longest ago): *HIT says which. 0 without a cache. */
static __always_inline struct baton_flow_cache *flow_cache_find(struct sk_reuseport_md *md, struct flow_ctx *fc,
							      int *hit)
{
	__u32 base = bpf_get_smp_processor_id() * BATON_FLOW_CACHE_SETS, h = md->hash;
	__u32 i1 = base + (h & (BATON_FLOW_CACHE_SETS - 1)), i2 = base + ((h >> 16) & (BATON_FLOW_CACHE_SETS - 1));
	struct baton_flow_cache *e1, *e2;

	*hit = 0;
	e1 = bpf_map_lookup_elem(&flowcache, &i1);
	if (!e1)
		return 0;
	if (flow_key_eq(&e1->key, &fc->key)) {
		*hit = 1;
		return e1;
	}
	e2 = bpf_map_lookup_elem(&flowcache, &i2);
	if (!e2)
		return e1;
	if (flow_key_eq(&e2->key, &fc->key)) {
		*hit = 1;
		return e2;
	}
	return e2->seen_ns < e1->seen_ns ? e2 : e1;
}

/* 1: this CPU followed the flow less than the ttl ago and its slot still
 * holds the member it was placed on: steered, counted. 0: ask `flows`. */
static __always_inline int flow_cached(struct sk_reuseport_md *md, struct flow_ctx *fc,
				       const struct baton_flow_cfg *cfg)
{
	struct baton_flow_cache *e;
	__u64 ttl = cfg->idle_ns >> 6;
	__u32 slot;
	int hit;

	if (cfg->idle_ns < FLOW_CACHE_MIN_IDLE_NS)
		return 0;
	fc->coarse = bpf_ktime_get_coarse_ns();
	e = flow_cache_find(md, fc, &hit);
	fc->ent = e;
	if (!e || !hit)
		return 0;
	if (ttl > FLOW_CACHE_MAX_NS)
		ttl = FLOW_CACHE_MAX_NS;
	slot = e->slot;
	if (fc->coarse - e->seen_ns >= ttl || slot / BATON_STEER_SLOTS != fc->lid || e->epoch != slot_epoch(slot) ||
	    bpf_sk_select_reuseport(md, &socks, &slot, 0))
		return 0;
	count(slot, 0, 0);
	flow_count(FS_FOLLOWED);
	return 1;
}

/* This CPU's entry for the flow now says what `flows` says. */
static __always_inline void flow_cache_fill(struct flow_ctx *fc, __u32 slot, __u32 epoch)
{
	struct baton_flow_cache *e = fc->ent;

	if (!e)
		return;
	e->key = fc->key;
	e->slot = slot;
	e->epoch = epoch;
	e->seen_ns = fc->coarse;
}

/* Writes the flow's entry: in place over an idle one, else a new entry.
 * An insert that fails (the LRU could not free an entry) leaves the flow
 * to the policy datagram by datagram: counted, never dropped. */
static __always_inline void flow_put(struct flow_ctx *fc, struct baton_flow *old, __u32 slot)
{
	struct baton_flow v = { .last_ns = fc->now, .slot = slot, .epoch = slot_epoch(slot) };
	long r;

	if (old) {
		old->slot = v.slot;
		old->epoch = v.epoch;
		old->last_ns = v.last_ns;
		flow_cache_fill(fc, v.slot, v.epoch);
		return;
	}
	r = bpf_map_update_elem(&flows, &fc->key, &v, BPF_NOEXIST);
	if (r == 0) {
		flow_count(FS_CREATED);
		flow_cache_fill(fc, v.slot, v.epoch);
	} else if (r != -17 /* EEXIST: another CPU placed it first, and it may differ */) {
		flow_count(FS_INSERT_FAILED);
	}
}

/* QUIC (?flows=quic): packets whose destination connection ID the server
 * chose (short header, and long-header Handshake) carry the generation's
 * marker in the DCID's first byte. Initial and 0-RTT carry a DCID the
 * client made up, so they are steered as flows. */
static __always_inline int quic_follow(struct sk_reuseport_md *md, struct flow_ctx *fc)
{
	__u8 h[7];
	__u32 marker, slot, ver;
	struct baton_flow_marker *m;
	struct baton_flow *f;

	if (bpf_skb_load_bytes(md, 8, h, 2))
		return 0;
	if (h[0] & 0x80) {
		if (bpf_skb_load_bytes(md, 8, h, 7) || h[5] == 0)
			return 0;
		ver = (__u32)h[1] << 24 | (__u32)h[2] << 16 | (__u32)h[3] << 8 | h[4];
		/* Handshake is type 2 in QUIC v1, 3 in v2 (RFC 9369) */
		if (((h[0] >> 4) & 3) != (ver == QUIC_V2 ? 3 : 2) || ver == 0)
			return 0;
		marker = h[6];
	} else if (h[0] & 0x40) {
		marker = h[1];
	} else {
		return 0;
	}
	marker += fc->lid * 256;
	m = bpf_map_lookup_elem(&markers, &marker);
	if (!m || !m->slot_plus1 || m->slot_plus1 > BATON_STEER_SLOTS)
		return 0;
	slot = fc->lid * BATON_STEER_SLOTS + m->slot_plus1 - 1;
	if (m->epoch != slot_epoch(slot) || bpf_sk_select_reuseport(md, &socks, &slot, 0))
		return 0;
	count(slot, 0, 0);
	flow_count(FS_BY_CID);
	/* the tuple's entry follows the connection, so that the drain counts
	 * it and a packet without the marker (a late Initial) goes there too */
	f = bpf_map_lookup_elem(&flows, &fc->key);
	if (!f || f->slot != slot || fc->now - f->last_ns > FLOW_TOUCH_NS)
		flow_put(fc, f, slot);
	return 1;
}

/* 1: the datagram was steered by the flow table (or a QUIC marker).
 * 0: the policy decides; FC->on says whether to remember its pick. */
static __always_inline int flow_follow(struct sk_reuseport_md *md, struct flow_ctx *fc)
{
	__u32 slot;
	struct baton_flow_cfg *cfg;
	struct baton_flow *f;

	fc->on = 0;
	fc->stale = 0;
	fc->ent = 0;
	if (md->ip_protocol != 17 /* IPPROTO_UDP */ || md->migrating_sk)
		return 0;
	cfg = bpf_map_lookup_elem(&flowcfg, &fc->lid);
	if (!cfg || cfg->mode == BATON_FLOWS_OFF_ || flow_key(md, &fc->key))
		return 0;
	/* QUIC moves a tuple's entry to its marker's slot: no cache there */
	if (cfg->mode == BATON_FLOWS_TUPLE_ && flow_cached(md, fc, cfg))
		return 1;
	fc->now = bpf_ktime_get_ns();
	if (cfg->mode == BATON_FLOWS_QUIC_ && quic_follow(md, fc))
		return 1;
	fc->on = 1;
	f = bpf_map_lookup_elem(&flows, &fc->key);
	if (!f)
		return 0;
	slot = f->slot;
	if (slot / BATON_STEER_SLOTS == fc->lid && fc->now - f->last_ns < cfg->idle_ns && f->epoch == slot_epoch(slot) &&
	    bpf_sk_select_reuseport(md, &socks, &slot, 0) == 0) {
		if (fc->now - f->last_ns > FLOW_TOUCH_NS)
			f->last_ns = fc->now;
		flow_cache_fill(fc, f->slot, f->epoch);
		count(slot, 0, 0);
		flow_count(FS_FOLLOWED);
		return 1;
	}
	/* idle, or its member left: a new flow, placed over this entry */
	flow_count(FS_EXPIRED);
	fc->stale = f;
	return 0;
}

static __always_inline void flow_place(struct flow_ctx *fc, __u32 slot)
{
	if (fc->on)
		flow_put(fc, fc->stale, slot);
}

/* The policy in force for listener LID: the first BATON_STEER_PROBES
 * entries of its pick table from HASH on, into CAND; returns the table's
 * size, 0 if no slot takes traffic.
 *
 * Policy banks: user space fills a bank no reader can reach, then publishes
 * its number with one store-release; a bank is written again only after an
 * RCU grace period that began after it stopped being live, and this
 * decision runs inside one RCU read-side section. The address of every
 * policy read below depends on the bank number loaded here (the
 * publication rule of rcu_dereference, and of the kernel's own map-in-map
 * lookups), so on every architecture the decision reads one whole policy:
 * no retry, and no reliance on the CPU keeping independent loads in order
 * (the seqcount latch this replaces did). One `live` word serves every
 * listener of the set: a commit switches them all at the same instant. */
static __always_inline __u32 policy_read(__u32 lid, __u32 hash, __u8 cand[BATON_STEER_PROBES])
{
	__u32 zero = 0, idx, n, pos, j;
	struct baton_steer_live *l = bpf_map_lookup_elem(&live, &zero);
	struct baton_steer_cfg *p;

	if (!l)
		return 0;
	idx = READ_ONCE(l->bank) * nlisteners + lid;
	p = bpf_map_lookup_elem(&policy, &idx);	/* bounds-checked by the kernel */
	if (!p)
		return 0;
	n = p->n;
	if (n > BATON_STEER_TABLE)
		n = 0;
	pos = n ? hash % n : 0;
	for (j = 0; j < BATON_STEER_PROBES; j++) {
		__u32 e = n ? (pos + j) % n : 0;

		/* the compiler knows e < n <= TABLE and would drop the mask,
		 * the verifier does not: keep it */
		asm volatile("" : "+r"(e));
		cand[j] = n ? p->slot[e & (BATON_STEER_TABLE - 1)] : BATON_STEER_NONE;
	}
	return n;
}

SEC("sk_reuseport/migrate")
int steer(struct sk_reuseport_md *md)
{
	__u32 hash = md->hash, n, j, lid, base, fallback;
	int migrating = md->migrating_sk != 0;
	__u8 cand[BATON_STEER_PROBES];
	struct flow_ctx fc;

	if (listener_of(md, &lid))
		return SK_PASS;	/* a group the set does not know: the kernel's hash */
	base = lid * BATON_STEER_SLOTS;
	fallback = nlisteners * BATON_STEER_SLOTS + lid;
	if (migrating)
		count_out(md, lid);
	else if (pinned(md, lid))
		return SK_PASS;
	fc.lid = lid;
	/* a datagram of a known flow needs no policy: asked before the policy */
	if (flow_follow(md, &fc))
		return SK_PASS;
	n = policy_read(lid, hash, cand);
	if (!n) {
		count(fallback, migrating, 0);
		return SK_PASS;	/* no slot takes traffic: the kernel's hash decides */
	}

	__u32 stopped = NO_GSLOT;

	for (j = 0; j < BATON_STEER_PROBES; j++) {
		__u32 slot = cand[j];

		if (slot >= BATON_STEER_SLOTS)
			break;
		slot += base;
		if (sigdown_slot(slot)) {	/* its owner took a stop signal (sigdown.h) */
			stopped = slot;
			continue;
		}
		if (bpf_sk_select_reuseport(md, &socks, &slot, 0) == 0) {
			count(slot, migrating, 0);
			flow_place(&fc, slot);
			return SK_PASS;
		}
		/* empty slot (closed, or the very listener being migrated away) */
		count(slot, migrating, 1);
	}
	if (stopped != NO_GSLOT) {
		/* the standby, else the stopped pick: it queues until the
		 * supervisor moves its queue, as before */
		int sb = sigdown_standby(base, hash);
		__u32 pick = sb >= 0 ? (__u32)sb : stopped;

		if (sb < 0 || bpf_sk_select_reuseport(md, &socks, &pick, 0)) {
			pick = stopped;
			if (bpf_sk_select_reuseport(md, &socks, &pick, 0))
				pick = NO_GSLOT;
		}
		if (pick != NO_GSLOT) {
			count(pick, migrating, 0);
			flow_place(&fc, pick);
			return SK_PASS;
		}
	}
	/* Never drop: hand the choice back to the kernel's hash over the
	 * listeners that are left. */
	count(fallback, migrating, 0);
	return SK_PASS;
}
