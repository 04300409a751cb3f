/* SPDX-License-Identifier: BSD-2-Clause */
/* What a steered group reports from its eBPF program: per-slot counters,
 * the share of new connections each slot gets, the program's id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer_int.h"
#include "steer.skel.h"

int baton_group_stats(const struct baton_group *g, int slot, struct baton_slot_stats *st)
{
	int r = baton_group_stats_info(g, slot, st, BATON_SLOT_STATS_SZ_0_1);

	return r < 0 ? r : 0;
}

/* The per-CPU values of KEY in a per-CPU map, one VALSZ each, in a new
 * array the caller frees; NULL with *ERR set. */
void *steer_percpu_lookup(int fd, uint32_t key, size_t valsz, int ncpu, int *err)
{
	void *v;

	if (ncpu <= 0) {
		*err = ncpu ? ncpu : -EINVAL;
		return NULL;
	}
	v = calloc((size_t)ncpu, valsz);
	if (!v) {
		*err = -ENOMEM;
		return NULL;
	}
	if (bpf_map_lookup_elem(fd, &key, v)) {
		*err = -errno;
		free(v);
		return NULL;
	}
	return v;
}

int baton_group_stats_info(const struct baton_group *g, int slot, struct baton_slot_stats *out, size_t len)
{
	int ncpu = libbpf_num_possible_cpus(), i, r;
	struct baton_slot_stats st = { 0 };
	struct baton_steer_stats *v;
	uint32_t key;

	if (!g || !out || len < BATON_SLOT_STATS_SZ_0_1 || slot < 0 || slot > BATON_MAX_SLOTS)
		return -EINVAL;
	if (g->mode != BATON_MODE_EBPF)
		return -EOPNOTSUPP;
	/* the listener's slots, then after every listener's slots its
	 * decisions handed to the kernel (bpf/steer.h) */
	key = slot < BATON_MAX_SLOTS ? steer_gslot(g, slot) : g->set->cap * BATON_MAX_SLOTS + g->lid;
	v = steer_percpu_lookup(bpf_map__fd(g->set->skel->maps.stats), key, sizeof(*v), ncpu, &r);
	if (!v)
		return r;
	for (i = 0; i < ncpu; i++) {
		st.selected += v[i].selected;
		st.migrated += v[i].migrated;
		st.missed += v[i].missed;
	}
	if (slot < BATON_MAX_SLOTS) {
		struct baton_steer_origin o;

		if (!bpf_map_lookup_elem(bpf_map__fd(g->set->skel->maps.origin), &key, &o))
			st.migrated_out = o.migrated_out;
	}
	r = baton_out_copy(out, len, &st, sizeof(st), BATON_SLOT_STATS_SZ_0_1);
	free(v);
	return r;
}

/* The share comes from the pick table the program reads (the live bank),
 * not from the weights asked for: what the program applies, including
 * fences and members that are down. The live bank is only rewritten after
 * it is retired, and only the caller of the set's groups commits. */
int baton_group_share(const struct baton_group *g, int slot, uint32_t *ppm)
{
	const struct baton_steer_cfg *cfg;
	uint32_t k, hits = 0, w[BATON_MAX_SLOTS], total;
	int r = steer_slot_check(g, slot);

	if (r || !ppm)
		return r ? r : -EINVAL;
	if (g->mode != BATON_MODE_EBPF) {
		/* classic BPF: the program was generated from these same numbers */
		total = steer_scale_weights(g, w, 1u << 16);
		*ppm = total ? (uint32_t)((uint64_t)w[slot] * 1000000u / total) : 0;
		return 0;
	}
	cfg = steer_set_live(g->set, g);
	for (k = 0; k < cfg->n && k < BATON_STEER_TABLE; k++)
		hits += cfg->slot[k] == (uint8_t)slot;
	*ppm = cfg->n && cfg->n <= BATON_STEER_TABLE ? (uint32_t)((uint64_t)hits * 1000000u / cfg->n) : 0;
	return 0;
}

int baton_group_prog_id(const struct baton_group *g, uint32_t *id)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);

	if (!g || !id)
		return -EINVAL;
	if (g->mode != BATON_MODE_EBPF)
		return -EOPNOTSUPP;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(g->set->skel->progs.steer), &info, &len))
		return -errno;
	*id = info.id;
	return 0;
}
