/* SPDX-License-Identifier: BSD-2-Clause */
/* The steered group's private state and the calls between the files that
 * make it up: steer.c (members, group), steer_policy.c (pure: weights, pick
 * table, cBPF generator), steer_pins.c (bpffs), steer_flows.c, steer_stats.c. */
#ifndef BATON_STEER_INT_H
#define BATON_STEER_INT_H

#include <linux/filter.h>
#include <limits.h>
#include <pthread.h>
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

/* Policy banks (lib/steer_banks.c). The writer (the group's caller) owns
 * cur and stages/commits; the reclaim thread runs grace periods; mu guards
 * what they share: the tickets, gp_done and the counters. */
#define STEER_BANKS_GP_LOG 512	/* grace period durations kept, for tests and benchmarks */
struct steer_banks {
	bool ready;
	struct baton_steer_cfg *policy;	/* mmap of `policy`: k * cap entries */
	struct baton_steer_live *live;	/* mmap of `live` */
	size_t policy_len, live_len;
	uint32_t k, cap, lid;		/* banks, entries per bank, this group's entry */
	uint32_t cur;			/* the live bank */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	bool thr_on, stop, hold;	/* hold: tests keep grace periods from starting */
	bool idle_exit;			/* the thread ended (idle); thr_on until joined */
	int gp_fd, gp_inner;		/* the array-of-maps updated for a grace period */
	int gp_err;
	uint64_t retire_ticket;		/* retirements so far */
	uint64_t gp_done;		/* every retirement up to this one is past a grace period */
	uint64_t retired[BATON_STEER_BANKS_MAX];	/* ticket of each bank's retirement; 0: never live */
	uint64_t staged, waits, gps;
	uint32_t gp_us[STEER_BANKS_GP_LOG];
};

struct baton_group {
	enum baton_mode mode;
	bool no_migrate;
	bool attached;
	baton_log_fn log;
	void *log_ctx;
	struct steer_bpf *skel;
	struct steer_banks banks;
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

/* ---- lib/steer_banks.c ---- */
BATON_HIDDEN uint32_t steer_banks_count(uint32_t cap);
/* Before load: the program's cap and the policy map's K * cap entries. */
BATON_HIDDEN int steer_banks_size(struct steer_bpf *skel, uint32_t cap);
BATON_HIDDEN int steer_banks_init(struct steer_banks *b, struct steer_bpf *skel, uint32_t cap, uint32_t lid);
BATON_HIDDEN void steer_banks_free(struct steer_banks *b);
BATON_HIDDEN struct baton_steer_cfg *steer_banks_entry(const struct steer_banks *b, uint32_t bank);
/* A free bank holding a copy of the live one, in *BANK: waits (at most 2 s)
 * only if every other bank is retired and not yet past a grace period;
 * -ETIMEDOUT then, and nothing changed. */
BATON_HIDDEN int steer_banks_stage(struct steer_banks *b, uint32_t *bank);
/* Makes BANK live with one store-release and retires the one it replaces. */
BATON_HIDDEN void steer_banks_commit(struct steer_banks *b, uint32_t bank);
BATON_HIDDEN void steer_banks_resumed(struct steer_banks *b);
/* Tests and benchmarks: hold grace periods back, and read the counters. */
struct steer_banks_info {
	bool thread;	/* a reclaim thread runs */
	uint32_t k, live, ngp_us;
	uint64_t staged, waits, gps, retire_ticket, gp_done;
	uint64_t retired[BATON_STEER_BANKS_MAX];
	uint32_t gp_us[STEER_BANKS_GP_LOG];
};
BATON_HIDDEN void steer_banks_hold(struct baton_group *g, bool hold);
BATON_HIDDEN void steer_banks_info(struct baton_group *g, struct steer_banks_info *out);

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
