/* SPDX-License-Identifier: BSD-2-Clause */
/* The steered group's private state and the calls between the files that
 * make it up: steer.c (members, group), steer_policy.c (pure: weights, pick
 * table, cBPF generator), steer_pins.c (bpffs), steer_flows.c, steer_stats.c. */
#ifndef BATON_STEER_INT_H
#define BATON_STEER_INT_H

#include <linux/filter.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "internal.h"
#include "steer.h"

struct steer_bpf;

struct member {
	int fd;           /* baton's copy; -1 when the slot is free */
	uint32_t weight;
	bool fenced;
	bool down;        /* the health watch found it unhealthy: no traffic */
	bool foreign;     /* baton_group_set_foreign: its owner keeps it listening */
	int backlog;      /* read before fencing, for listen() on unfence */
	uint64_t cookie;  /* SO_COOKIE: the same socket cannot join twice */
};

/* A slot found in pinned maps that no member of this process has claimed
 * yet: it keeps its weight so that a restarted baton steer republishes the
 * same policy while it collects the members again. */
struct pinned {
	uint64_t cookie;  /* 0: none */
	uint32_t weight;
};

struct baton_group {
	enum baton_mode mode;
	bool no_migrate;
	bool attached;
	baton_log_fn log;
	void *log_ctx;
	struct steer_bpf *skel;
	uint32_t seq;
	uint32_t version;
	int nmembers;
	struct member m[BATON_MAX_SLOTS];
	struct pinned pin[BATON_MAX_SLOTS];
	char pin_path[PATH_MAX - 32];	/* "" unless pinned */
	/* UDP flows (eBPF) */
	enum baton_flows flows;
	uint32_t flow_table;
	uint64_t flow_idle_ms;
	int marker[BATON_MAX_SLOTS];	/* QUIC marker of each slot, -1: none */
	uint32_t epoch[BATON_MAX_SLOTS];	/* what the slotep map holds */
	/* cBPF: order[i] is the slot at index i of the kernel's listening
	 * array (the kernel appends on listen and moves the last into a hole). */
	int order[BATON_MAX_SLOTS];
	int norder;
	/* what every member must be bound to */
	int type;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

#define LOG(g, lvl, ...) baton_logf((g)->log, (g)->log_ctx, BATON_LOG_##lvl, __VA_ARGS__)

/* ---- lib/steer.c ---- */
BATON_HIDDEN int steer_slot_check(const struct baton_group *g, int slot);
BATON_HIDDEN bool steer_slot_ok(const struct baton_group *g, int slot);
/* The first member's descriptor that is not fenced, or -1. */
BATON_HIDDEN int steer_live_fd(const struct baton_group *g);
BATON_HIDDEN int steer_sockopt_int(int fd, int level, int name, int *val);

/* ---- lib/steer_policy.c: no system calls ---- */
BATON_HIDDEN uint32_t steer_eff_weight(const struct baton_group *g, int slot);
BATON_HIDDEN bool steer_fallback_spread(const struct baton_group *g);
BATON_HIDDEN uint32_t steer_scale_weights(const struct baton_group *g, uint32_t out[BATON_MAX_SLOTS], uint32_t max);
BATON_HIDDEN void steer_build_table(const struct baton_group *g, struct baton_steer_cfg *cfg);
/* The classic program for the group's weights and kernel order, at most
 * STEER_CBPF_MAX instructions in F; returns how many. */
#define STEER_CBPF_MAX (3 + 2 * BATON_MAX_SLOTS)
BATON_HIDDEN int steer_cbpf_build(const struct baton_group *g, struct sock_filter f[STEER_CBPF_MAX]);

/* ---- lib/steer_pins.c ---- */
BATON_HIDDEN int steer_set_pins(struct baton_group *g, struct steer_bpf *skel);
BATON_HIDDEN void steer_pin_prog(struct baton_group *g, struct steer_bpf *skel);
BATON_HIDDEN bool steer_recover_pinned(struct baton_group *g);
BATON_HIDDEN void steer_forget_pinned(struct baton_group *g);
BATON_HIDDEN int steer_mkdir_p(const char *dir);

/* ---- lib/steer_flows.c ---- */
BATON_HIDDEN int steer_flows_reuse(struct steer_bpf *skel, struct steer_bpf *old);
BATON_HIDDEN int steer_flows_size(struct baton_group *g, struct steer_bpf *skel);
BATON_HIDDEN int steer_flows_setup(struct baton_group *g);
BATON_HIDDEN void steer_epoch_bump(struct baton_group *g, int slot);

/* ---- lib/steer_stats.c ---- */
/* The per-CPU values of KEY in a per-CPU map, one VALSZ each, in a new
 * array the caller frees; NULL with *ERR set. */
BATON_HIDDEN void *steer_percpu_lookup(int fd, uint32_t key, size_t valsz, int ncpu, int *err);

#endif
