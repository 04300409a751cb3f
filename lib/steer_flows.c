/* SPDX-License-Identifier: BSD-2-Clause */
/* Per-client placement in the eBPF program: source-port pins, and the UDP
 * flow table with its per-slot epochs and QUIC connection-ID markers (sized
 * before load, configured once, epochs bumped as members come and go). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer_int.h"
#include "steer.skel.h"

int baton_group_pin_source(struct baton_group *g, uint16_t lo, uint16_t hi, int slot)
{
	return baton_group_pin_source_addr(g, NULL, 0, lo, hi, slot);
}

/* FROM as the program compares it: IPv4 (also an IPv4-mapped IPv6
 * address, which arrives as IPv4) in addr[0], IPv6 in addr[0..3]. */
static int pin_from(const struct sockaddr *from, socklen_t len, struct baton_steer_pin *p)
{
	if (!from)
		return 0;
	if (from->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		p->family = 4;
		memcpy(&p->addr[0], &((const struct sockaddr_in *)from)->sin_addr, 4);
		return 0;
	}
	if (from->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)from)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			p->family = 4;
			memcpy(&p->addr[0], &a->s6_addr[12], 4);
		} else {
			p->family = 6;
			memcpy(p->addr, a, 16);
		}
		return 0;
	}
	return -EINVAL;
}

int baton_group_pin_source_addr(struct baton_group *g, const struct sockaddr *from, socklen_t len, uint16_t lo,
				uint16_t hi, int slot)
{
	int fd, r, k, free_k = -1;
	struct baton_steer_pin p, want = { 0 };

	if (!g || !lo || hi < lo || slot < -1 || slot >= BATON_MAX_SLOTS || pin_from(from, len, &want))
		return -EINVAL;
	if (g->mode != BATON_MODE_EBPF)
		return -EOPNOTSUPP;
	if (slot >= 0 && (r = steer_slot_check(g, slot)))
		return r;
	fd = bpf_map__fd(g->set->skel->maps.pins);
	/* one entry per range: pinning a range again moves it */
	for (k = 0; k < BATON_MAX_PINS; k++) {
		uint32_t key = g->lid * BATON_MAX_PINS + (uint32_t)k;

		if (bpf_map_lookup_elem(fd, &key, &p))
			return -errno;
		if (p.hi && p.lo == lo && p.hi == hi)
			break;
		if (!p.hi && free_k < 0)
			free_k = k;
	}
	if (k == BATON_MAX_PINS) {
		if (slot < 0)
			return 0;
		if (free_k < 0) {
			LOG(g, ERROR, "cannot pin source ports %u-%u: all %d pins are taken", lo, hi, BATON_MAX_PINS);
			return -ENOSPC;
		}
		k = free_k;
	}
	want.lo = lo;
	want.hi = hi;
	want.slot = slot < 0 ? 0 : (uint32_t)slot;
	p = slot < 0 ? (struct baton_steer_pin){ 0 } : want;
	{
		uint32_t key = g->lid * BATON_MAX_PINS + (uint32_t)k;

		if (bpf_map_update_elem(fd, &key, &p, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* ---- UDP flows ----------------------------------------------------------
 * The flow table and its companions (bpf/steer.h): sized before load,
 * configured once, per-slot epochs bumped as members come and go. */

/* The table is preallocated by the kernel, so a set without flows (TCP,
 * flows=off) gets one entry; its listeners share it (a flow's key holds
 * its destination). A pinned table keeps the size it was made with:
 * libbpf reuses a pinned map only if it matches. */
int steer_flows_size(struct baton_steerset *g, struct steer_bpf *skel)
{
	uint32_t want = g->flows ? g->flow_table : 1;
	char path[PATH_MAX];
	int fd, ncpu;

	if (g->pin_path[0]) {
		struct bpf_map_info info;
		uint32_t len = sizeof(info);

		snprintf(path, sizeof(path), "%s/flows", g->pin_path);
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			memset(&info, 0, sizeof(info));
			if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.max_entries != want) {
				if (g->flows)
					LOG(g, WARN, "the pinned flow table at %s holds %u entries, not the %u asked for: it "
						     "keeps its size until the listener is made afresh",
					    path, info.max_entries, want);
				want = info.max_entries;
			}
			close(fd);
		}
	}
	if (want > 1)
		g->flow_table = want;
	/* the program's cache of the table, a region per CPU; one entry unless flows are on */
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	if (bpf_map__set_max_entries(skel->maps.flowcache, want > 1 ? (uint32_t)ncpu * BATON_FLOW_CACHE_SETS : 1))
		return -EINVAL;
	return bpf_map__set_max_entries(skel->maps.flows, want);
}

int steer_flows_setup(struct baton_group *g)
{
	struct baton_flow_cfg c = { .mode = (uint32_t)g->flows, .idle_ns = g->flow_idle_ms * 1000000ull };
	uint32_t lid = g->lid;

	if (g->flows && g->set->flow_table <= 1)
		c.mode = BATON_FLOWS_OFF_;	/* a pinned table made without flows */
	if (!g->flows && !g->set->pin_path[0])
		return 0;	/* fresh maps hold zeros already: no call per listener */
	for (uint32_t k = 0; k < BATON_MAX_SLOTS; k++) {
		uint32_t key = steer_gslot(g, (int)k);

		bpf_map_lookup_elem(bpf_map__fd(g->set->skel->maps.slotep), &key, &g->epoch[k]);
	}
	/* a resumed group finds its markers where it left them */
	for (uint32_t k = 0; g->pin_path[0] && k < 256; k++) {
		struct baton_flow_marker m;
		uint32_t key = lid * 256 + k;

		if (!bpf_map_lookup_elem(bpf_map__fd(g->set->skel->maps.markers), &key, &m) && m.slot_plus1 &&
		    m.slot_plus1 <= BATON_MAX_SLOTS)
			g->marker[m.slot_plus1 - 1] = (int)k;
	}
	return bpf_map_update_elem(bpf_map__fd(g->set->skel->maps.flowcfg), &lid, &c, BPF_ANY) ? -errno : 0;
}

/* The program compares a flow's epoch with its slot's: a bump ends every
 * flow placed on the slot before it, without walking the table. */
void steer_epoch_bump(struct baton_group *g, int slot)
{
	uint32_t key = steer_gslot(g, slot), e;

	/* without flows nothing reads the epochs: a TCP group pays nothing */
	if (g->mode != BATON_MODE_EBPF || !g->flows)
		return;
	e = ++g->epoch[slot];
	if (bpf_map_update_elem(bpf_map__fd(g->set->skel->maps.slotep), &key, &e, BPF_ANY))
		LOG(g, WARN, "cannot renew slot %d's flow epoch: %s; its old flows may follow the new member",
		    slot, strerror(errno));
}

int baton_group_set_marker(struct baton_group *g, int slot, int marker)
{
	struct baton_flow_marker m = { 0 };
	uint32_t key, e = 0;
	int fd, r;

	if (!g || marker < -1 || marker > 255)
		return -EINVAL;
	if (marker >= 0 && (r = steer_slot_check(g, slot)))
		return r;
	if (slot < 0 || slot >= BATON_MAX_SLOTS)
		return -EINVAL;
	if (g->mode != BATON_MODE_EBPF || g->flows != BATON_FLOWS_QUIC)
		return -EOPNOTSUPP;
	fd = bpf_map__fd(g->set->skel->maps.markers);
	if (g->marker[slot] >= 0) {
		key = g->lid * 256 + (uint32_t)g->marker[slot];
		if (bpf_map_update_elem(fd, &key, &m, BPF_ANY))
			return -errno;
		g->marker[slot] = -1;
	}
	if (marker < 0)
		return 0;
	for (int s = 0; s < BATON_MAX_SLOTS; s++)
		if (g->marker[s] == marker)
			g->marker[s] = -1;	/* a marker names one slot */
	e = g->epoch[slot];
	m = (struct baton_flow_marker){ .slot_plus1 = (uint32_t)slot + 1, .epoch = e };
	key = g->lid * 256 + (uint32_t)marker;
	if (bpf_map_update_elem(fd, &key, &m, BPF_ANY))
		return -errno;
	g->marker[slot] = marker;
	return 0;
}

/* One pass with batched lookups; a batch that would split a hash bucket
 * says ENOSPC, and is retried larger. */
static int flows_scan(const struct baton_group *g, struct baton_flow_stats *st)
{
	int fd = bpf_map__fd(g->set->skel->maps.flows), efd = bpf_map__fd(g->set->skel->maps.slotep), r = 0;
	uint32_t batch = 1024, n, i, ep[BATON_MAX_SLOTS] = { 0 }, k;
	struct baton_flow_key *keys = NULL;
	struct baton_flow *vals = NULL;
	uint64_t in = 0, out = 0, now, idle_ns = g->flow_idle_ms * 1000000ull;
	struct timespec ts;
	bool first = true;
	LIBBPF_OPTS(bpf_map_batch_opts, bo);

	for (k = 0; k < BATON_MAX_SLOTS; k++) {
		uint32_t key = steer_gslot(g, (int)k);

		bpf_map_lookup_elem(efd, &key, &ep[k]);
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);	/* bpf_ktime_get_ns's clock */
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	for (;;) {
		if (!keys) {
			keys = calloc(batch, sizeof(*keys));
			vals = calloc(batch, sizeof(*vals));
			if (!keys || !vals) {
				r = -ENOMEM;
				break;
			}
		}
		n = batch;
		r = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &n, &bo) ? -errno : 0;
		if (r == -ENOSPC && !n && batch < (1u << 20)) {
			batch *= 4;
			free(keys);
			free(vals);
			keys = NULL;
			vals = NULL;
			continue;
		}
		if (r && r != -ENOENT)
			break;
		for (i = 0; i < n; i++) {
			uint32_t slot = vals[i].slot - g->lid * BATON_MAX_SLOTS;	/* global to the listener's */

			if (vals[i].slot / BATON_MAX_SLOTS != g->lid)
				continue;	/* another listener's flow */
			st->entries++;
			if (vals[i].epoch != ep[slot] || now - vals[i].last_ns >= idle_ns)
				continue;
			st->live++;
			st->per_slot[slot]++;
		}
		if (r == -ENOENT) {
			r = 0;
			break;
		}
		in = out;
		first = false;
	}
	free(keys);
	free(vals);
	return r;
}

int baton_group_flows(const struct baton_group *g, struct baton_flow_stats *out, size_t len)
{
	int ncpu = libbpf_num_possible_cpus(), i, r;
	struct baton_flow_stats st = { 0 };
	struct baton_flow_stats_ *v;
	uint32_t zero = 0;

	if (!g || !out || !len)
		return -EINVAL;
	if (g->mode != BATON_MODE_EBPF || !g->flows || g->flow_table <= 1)
		return -EOPNOTSUPP;
	v = steer_percpu_lookup(bpf_map__fd(g->set->skel->maps.flowstats), zero, sizeof(*v), ncpu, &r);
	if (!v)
		return r;
	for (i = 0; i < ncpu; i++) {
		st.followed += v[i].followed;
		st.by_cid += v[i].by_cid;
		st.created += v[i].created;
		st.expired += v[i].expired;
		st.insert_failed += v[i].insert_failed;
	}
	st.table = g->flow_table;
	if ((r = flows_scan(g, &st)))
		goto out;
	/* entries leave the table only by eviction: nothing deletes them */
	st.evicted = st.created > st.entries ? st.created - st.entries : 0;
	r = baton_out_copy(out, len, &st, sizeof(st), 1);
out:
	free(v);
	return r;
}
