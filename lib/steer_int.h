/* SPDX-License-Identifier: BSD-2-Clause */
/* The steered group's private state and the calls between the files that
 * make it up: steer.c (members, group), steer_set.c (the program and maps a
 * set of groups shares, the policy publish), steer_policy.c (pure: weights,
 * pick table, cBPF generator), steer_pins.c (bpffs), steer_flows.c,
 * steer_stats.c. */
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

/* Policy banks (lib/steer_banks.c), one per steering set. The writer (the
 * caller of the set's groups) owns cur and stages/commits; the reclaim thread runs grace periods; mu guards
 * what they share: the tickets, gp_done and the counters. */
#define STEER_BANKS_GP_LOG 512	/* grace period durations kept, for tests and benchmarks */
struct steer_banks {
	bool ready;
	struct baton_steer_cfg *policy;	/* mmap of `policy`: k * cap entries */
	struct baton_steer_live *live;	/* mmap of `live` */
	size_t policy_len, live_len;
	uint32_t k, cap;		/* banks, entries per bank (the set's listeners) */
	uint32_t cur;			/* the live bank */
	/* the staged bank's entries written since its stage (a bit per
	 * listener): the commit copies only the others from the live bank */
	uint64_t *written;
	uint32_t nwritten;
	bool unread;			/* the program is attached nowhere yet: no decision reads a bank */
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

/* One program and one set of maps, shared by the groups (listeners) of a
 * supervisor, or owned by a group alone (a set of one). */
struct baton_steerset {
	int refs;		/* the creator's and one per group */
	struct steer_bpf *skel;
	uint32_t cap;		/* listeners it has room for */
	struct baton_group **groups;	/* by listener index; NULL: free */
	/* A set of many listeners keeps its groups here, one STEER_GROUP_SZ
	 * place per listener index, in memory shared with a forked child
	 * rather than copied on write: a supervisor forks a generation just
	 * before it switches every listener, and each group that a switch
	 * writes would otherwise cost a page fault (about 1 us) once per fork.
	 * NULL: groups are on the heap (a set of one). */
	char *slab;
	size_t slab_len;
	bool no_migrate;
	bool flows;		/* some listener may use the flow table */
	uint32_t flow_table;
	baton_log_fn log;
	void *log_ctx;
	char pin_path[PATH_MAX - 32];	/* "" unless pinned */
	/* The publish (steer_set_stage, steer_set_publish): every table of a
	 * transaction is written into one free bank, made live by one commit
	 * for every listener. */
	struct steer_banks banks;
	int txn;		/* baton_steerset_begin depth */
	bool staging;		/* stage_bank holds tables not yet committed */
	bool fences_due;	/* some member waits for the commit to be shut down */
	uint32_t stage_bank;
	/* the sigdown map's tgids and how many global slots each owns */
	struct { uint32_t tgid, refs; } *own;
	uint32_t nown, own_cap;
};

/* 24 bytes: a supervisor holds 64 of them per listener. */
struct member {
	int fd;           /* baton's copy; -1 when the slot is free */
	uint32_t weight;
	int backlog;      /* read before fencing, for listen() on unfence */
	bool fenced : 1;
	bool down : 1;      /* the health watch found it unhealthy: no traffic */
	bool foreign : 1;   /* baton_group_set_foreign: its owner keeps it listening */
	bool fence_due : 1; /* fenced inside a transaction: shut down at its commit */
	bool reserve : 1;   /* baton_group_set_reserve: held for later, no traffic */
	uint64_t cookie;  /* SO_COOKIE: the same socket cannot join twice */
};

/* A slot found in pinned maps that no member of this process has claimed
 * yet: it keeps its weight so that a restarted baton steer republishes the
 * same policy while it collects the members again. */
struct pinned {
	uint64_t cookie;  /* 0: none */
	uint32_t weight;
};

/* The fields a switch reads first, then the members: with the group on a
 * cache line boundary (baton_group_new), a publish for a listener with its
 * members in slots 0 and 1 reads two lines of it, which matters when a
 * reload switches thousands of listeners in one go. */
struct baton_group {
	enum baton_mode mode;
	bool no_migrate;
	bool attached;
	uint32_t lid;		/* this listener's index in the set */
	uint32_t version;
	int nmembers;
	/* Every slot from nslots on is empty (no member, no pin): the loops
	 * of a publish stop there, so a switch of a listener that uses two
	 * slots reads two, not 64. It only grows (steer_slot_used). */
	int nslots;
	/* BATON_MAX_SLOTS entries while slots found in pinned maps wait for
	 * their members (npinned of them), else NULL: only a resumed group
	 * has any, until its caller states the whole policy. */
	struct pinned *pin;
	struct baton_steerset *set;	/* eBPF */
	struct member m[BATON_MAX_SLOTS];
	int npinned;
	baton_log_fn log;
	void *log_ctx;
	/* The set's pin path ("" unless pinned): a group that is pinned has a
	 * set (its own or a shared one), which keeps the one copy. */
	const char *pin_path;
	uint32_t kowner[BATON_MAX_SLOTS];	/* what owners[] holds per slot */
	/* UDP flows (eBPF) */
	enum baton_flows flows;
	uint32_t flow_table;
	uint64_t flow_idle_ms;
	int marker[BATON_MAX_SLOTS];	/* QUIC marker of each slot, -1: none */
	uint32_t epoch[BATON_MAX_SLOTS];	/* what the slotep map holds */
	/* cBPF: order[i] is the slot at index i of the kernel's listening
	 * array (the kernel appends on listen and moves the last into a hole). */
	int8_t order[BATON_MAX_SLOTS];
	int norder;
	/* what every member must be bound to */
	int type;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool in_slab;	/* its memory is its set's (steer_set_slab), not the heap's */
};

/* A group's place: whole cache lines, so a switch reads a line or two. */
#define STEER_GROUP_SZ ((sizeof(struct baton_group) + 63) / 64 * 64)

#define LOG(g, lvl, ...) baton_logf((g)->log, (g)->log_ctx, BATON_LOG_##lvl, __VA_ARGS__)

/* ---- lib/steer.c ---- */
BATON_HIDDEN int steer_slot_check(const struct baton_group *g, int slot);
BATON_HIDDEN bool steer_slot_ok(const struct baton_group *g, int slot);
/* The first member's descriptor that is not fenced, or -1. */
BATON_HIDDEN int steer_live_fd(const struct baton_group *g);
BATON_HIDDEN int steer_sockopt_int(int fd, int level, int name, int *val);

/* SLOT holds (or is about to hold) a member or a pin. */
static inline void steer_slot_used(struct baton_group *g, int slot)
{
	if (slot >= g->nslots)
		g->nslots = slot + 1;
}

/* The weight a pinned slot that no member claimed yet keeps, 0: none. */
static inline uint32_t steer_pin_weight(const struct baton_group *g, int slot)
{
	return g->pin && g->pin[slot].cookie ? g->pin[slot].weight : 0;
}

static inline bool steer_pinned(const struct baton_group *g, int slot)
{
	return g->pin && g->pin[slot].cookie;
}

/* Listener G's slot SLOT in the set's per-slot maps (its global slot). */
static inline uint32_t steer_gslot(const struct baton_group *g, int slot)
{
	return g->lid * BATON_STEER_SLOTS + (uint32_t)slot;
}

/* Shuts down the members fenced inside the transaction SET just
 * committed (their queues move by the policy now in force). */
BATON_HIDDEN void steer_fences_due(struct baton_steerset *set);

/* ---- lib/steer_set.c ---- */
struct baton_steerset_opts;
BATON_HIDDEN struct baton_steerset *steer_set_create(const struct baton_steerset_opts *o, int *err);
BATON_HIDDEN void steer_set_put(struct baton_steerset *set);
/* Takes listener LID of SET for G. */
BATON_HIDDEN int steer_set_join(struct baton_steerset *set, struct baton_group *g, uint32_t lid);
BATON_HIDDEN void steer_set_leave(struct baton_steerset *set, struct baton_group *g);
/* The zeroed place in SET's slab for listener LID's group, or NULL (no
 * slab, LID out of range or taken): the caller allocates on the heap. */
BATON_HIDDEN struct baton_group *steer_set_slab(struct baton_steerset *set, uint32_t lid);
/* G's entry in the bank the set stages (a free bank, taken at the first
 * stage of a transaction; the commit copies the entries nobody wrote from
 * the live one) in *CFG, for the caller to write whole; 0 or -errno (-ETIMEDOUT: no bank came free, nothing changed). Its
 * publish: at once, or at the set's commit inside baton_steerset_begin/_commit. */
BATON_HIDDEN int steer_set_stage(struct baton_steerset *set, struct baton_group *g, struct baton_steer_cfg **cfg);
BATON_HIDDEN int steer_set_publish(struct baton_steerset *set);
/* G's pick table staged in its set (built in place if a bank is staged
 * already) and published: at once, or at the set's commit. */
BATON_HIDDEN int steer_set_publish_group(struct baton_group *g);
/* G's table as the program reads it now (the live bank, mapped): only the
 * set's own caller commits, so it stays put while that caller reads it. */
BATON_HIDDEN const struct baton_steer_cfg *steer_set_live(const struct baton_steerset *set,
							  const struct baton_group *g);
BATON_HIDDEN int steer_set_reload(struct baton_steerset *set);
/* Tells the program G's listener by its members' address. */
BATON_HIDDEN int steer_set_address(struct baton_steerset *set, const struct baton_group *g);

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
BATON_HIDDEN int steer_set_pins(struct baton_steerset *set, struct steer_bpf *skel);
BATON_HIDDEN void steer_pin_prog(struct baton_steerset *set, struct steer_bpf *skel);
/* The listeners a pinned set at PIN_PATH has room for; 0: none pinned. */
BATON_HIDDEN uint32_t steer_pinned_cap(const char *pin_path);
/* Whether PIN_PATH holds an older baton's latch pins (cfg, ctl). */
BATON_HIDDEN bool steer_pinned_old(const char *pin_path);
BATON_HIDDEN bool steer_recover_pinned(struct baton_group *g);
BATON_HIDDEN void steer_forget_pinned(struct baton_group *g);
BATON_HIDDEN int steer_mkdir_p(const char *dir);

/* ---- lib/steer_banks.c ---- */
BATON_HIDDEN uint32_t steer_banks_count(uint32_t cap);
/* Before load: the policy map's K * cap entries. */
BATON_HIDDEN int steer_banks_size(struct steer_bpf *skel, uint32_t cap);
BATON_HIDDEN int steer_banks_init(struct steer_banks *b, struct steer_bpf *skel, uint32_t cap);
BATON_HIDDEN void steer_banks_free(struct steer_banks *b);
/* Listener LID's entry in BANK. */
BATON_HIDDEN struct baton_steer_cfg *steer_banks_entry(const struct steer_banks *b, uint32_t bank, uint32_t lid);
/* A free bank in *BANK, to become a copy of the live one where it is not
 * written (steer_banks_write): waits (at most 2 s) only if every other
 * bank is retired and not yet past a grace period; -ETIMEDOUT then, and
 * nothing changed. */
BATON_HIDDEN int steer_banks_stage(struct steer_banks *b, uint32_t *bank);
/* Listener LID's entry in the staged BANK, for the caller to write whole. */
BATON_HIDDEN struct baton_steer_cfg *steer_banks_write(struct steer_banks *b, uint32_t bank, uint32_t lid);
/* Copies the live entries of the listeners nobody wrote into BANK, then
 * makes it live with one store-release and retires the one it replaces. */
BATON_HIDDEN void steer_banks_commit(struct steer_banks *b, uint32_t bank);
BATON_HIDDEN void steer_banks_resumed(struct steer_banks *b);
/* The program is attached to a group: from now on decisions read banks. */
BATON_HIDDEN void steer_banks_attached(struct steer_banks *b);
/* Tests and benchmarks: hold grace periods back, and read the counters
 * (of G's steering set). */
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
BATON_HIDDEN int steer_flows_size(struct baton_steerset *set, struct steer_bpf *skel);
BATON_HIDDEN int steer_flows_setup(struct baton_group *g);
BATON_HIDDEN void steer_epoch_bump(struct baton_group *g, int slot);

/* ---- lib/steer_stats.c ---- */
/* The per-CPU values of KEY in a per-CPU map, one VALSZ each, in a new
 * array the caller frees; NULL with *ERR set. */
BATON_HIDDEN void *steer_percpu_lookup(int fd, uint32_t key, size_t valsz, int ncpu, int *err);

#endif
