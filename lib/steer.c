/* SPDX-License-Identifier: BSD-2-Clause */
/* Steered SO_REUSEPORT groups. eBPF mode: members live in a
 * REUSEPORT_SOCKARRAY by stable slot, the policy is a pick table published
 * through a seqcount latch (two copies, readers never see a mix), and the
 * program is loaded for SELECT_OR_MIGRATE so closing listeners hand their
 * queue over. cBPF mode (no privilege): a generated classic program returns
 * an index into the kernel's group, whose order this file tracks. */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <linux/filter.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "steer.h"
#include "steer.skel.h"

_Static_assert(BATON_MAX_SLOTS == BATON_STEER_SLOTS, "slot counts differ");
_Static_assert(BATON_STEER_SLOTS < BATON_STEER_NONE, "slot numbers must fit the table");
_Static_assert(sizeof(struct baton_steer_pin) == 28, "pin entries are shared with the program as 28 bytes");
_Static_assert(BATON_STEER_PINS == BATON_MAX_PINS, "pin counts differ");
_Static_assert(sizeof(struct baton_steer_origin) == 16, "the origin map's value is two u64 (bpf/steer.h)");
/* new fields go after flow_idle_ms and may not hide in padding an older library skips */
_Static_assert(sizeof(struct baton_group_opts) == baton_offsetofend(struct baton_group_opts, flow_idle_ms),
	       "baton_group_opts ends in padding");
_Static_assert(BATON_FLOWS_OFF == BATON_FLOWS_OFF_ && BATON_FLOWS_ON == BATON_FLOWS_TUPLE_ &&
	       BATON_FLOWS_QUIC == BATON_FLOWS_QUIC_, "flow modes differ");

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

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

const char *baton_mode_name(enum baton_mode mode)
{
	switch (mode) {
	case BATON_MODE_EBPF: return "ebpf";
	case BATON_MODE_CBPF: return "cbpf";
	default: return "auto";
	}
}

/* 0 for a slot with a member; -EINVAL for a bad argument, -ENOENT for an
 * empty slot, so that callers can tell a bug from a member that left. */
static int slot_check(const struct baton_group *g, int slot)
{
	if (!g || slot < 0 || slot >= BATON_MAX_SLOTS)
		return -EINVAL;
	return g->m[slot].fd >= 0 ? 0 : -ENOENT;
}

static bool slot_ok(const struct baton_group *g, int slot)
{
	return slot_check(g, slot) == 0;
}

static uint32_t eff_weight(const struct baton_group *g, int slot)
{
	if (g->m[slot].fd < 0)
		return g->pin[slot].cookie ? g->pin[slot].weight : 0;
	return !g->m[slot].fenced && !g->m[slot].down ? g->m[slot].weight : 0;
}

/* When every slot with weight is down, the healthy members share the
 * traffic equally: a standby (weight 0) takes over from its primary, and a
 * frozen member is never left to the kernel's hash. */
static bool fallback_spread(const struct baton_group *g)
{
	bool any_down = false;
	int s;

	for (s = 0; s < BATON_MAX_SLOTS; s++) {
		if (eff_weight(g, s))
			return false;
		any_down |= g->m[s].fd >= 0 && g->m[s].down;
	}
	return any_down;
}

static uint32_t pick_weight(const struct baton_group *g, int slot, bool spread)
{
	if (!spread)
		return eff_weight(g, slot);
	return g->m[slot].fd >= 0 && !g->m[slot].fenced && !g->m[slot].down;
}

/* Integer weights with a sum of at most MAX that keep each slot's share
 * (every slot with weight keeps at least 1). Returns the sum. */
static uint32_t scale_weights(const struct baton_group *g, uint32_t out[BATON_MAX_SLOTS], uint32_t max)
{
	bool spread = fallback_spread(g);
	uint64_t total = 0;
	uint32_t sum = 0;
	int s;

	for (s = 0; s < BATON_MAX_SLOTS; s++)
		total += pick_weight(g, s, spread);
	for (s = 0; s < BATON_MAX_SLOTS; s++) {
		uint64_t w = pick_weight(g, s, spread);

		out[s] = 0;
		if (!w)
			continue;
		out[s] = total <= max ? (uint32_t)w : (uint32_t)(w * max / total);
		if (!out[s])
			out[s] = 1;
		sum += out[s];
	}
	while (sum > max) {	/* the minimum of 1 can overshoot by a few */
		int big = 0;

		for (s = 1; s < BATON_MAX_SLOTS; s++)
			if (out[s] > out[big])
				big = s;
		out[big]--;
		sum--;
	}
	return sum;
}

/* Smooth weighted round robin: each slot appears exactly w times in the
 * table and the slots are interleaved, so the program's few extra probes
 * after an empty slot reach other slots. */
static void build_table(const struct baton_group *g, struct baton_steer_cfg *cfg)
{
	uint32_t w[BATON_MAX_SLOTS];
	int64_t cur[BATON_MAX_SLOTS] = { 0 };
	uint32_t n, i;
	int s;

	memset(cfg, 0, sizeof(*cfg));
	memset(cfg->slot, BATON_STEER_NONE, sizeof(cfg->slot));
	n = scale_weights(g, w, BATON_STEER_TABLE);
	for (i = 0; i < n; i++) {
		int best = -1;

		for (s = 0; s < BATON_MAX_SLOTS; s++) {
			if (!w[s])
				continue;
			cur[s] += w[s];
			if (best < 0 || cur[s] > cur[best])
				best = s;
		}
		cur[best] -= n;
		cfg->slot[i] = (uint8_t)best;
	}
	cfg->n = n;
	cfg->version = g->version;
}

static int publish_ebpf(struct baton_group *g)
{
	int cfg_fd = bpf_map__fd(g->skel->maps.cfg), ctl_fd = bpf_map__fd(g->skel->maps.ctl);
	struct baton_steer_cfg cfg;
	struct baton_steer_ctl ctl = { 0 };
	uint32_t zero = 0, idx;

	build_table(g, &cfg);
	/* Latch write: while seq is odd readers use copy 1, so copy 0 can be
	 * written; once seq is even they use copy 0 (already the new policy)
	 * and copy 1 is brought up to date. Each step is its own syscall, so
	 * each store is visible before the next one starts. */
	for (idx = 0; idx < 2; idx++) {
		ctl.seq = ++g->seq;
		if (bpf_map_update_elem(ctl_fd, &zero, &ctl, BPF_ANY))
			return -errno;
		if (bpf_map_update_elem(cfg_fd, &idx, &cfg, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int live_fd(const struct baton_group *g)
{
	int s;

	for (s = 0; s < BATON_MAX_SLOTS; s++)
		if (g->m[s].fd >= 0 && !g->m[s].fenced)
			return g->m[s].fd;
	return -1;
}

static int publish_cbpf(struct baton_group *g)
{
	struct sock_filter f[3 + 2 * BATON_MAX_SLOTS];
	struct sock_fprog prog = { .filter = f };
	uint32_t w[BATON_MAX_SLOTS], total, cum = 0;
	int i, n = 0, last = -1, fd = live_fd(g);

	if (fd < 0)
		return 0;	/* nothing to attach to yet */
	total = scale_weights(g, w, 1u << 16);
	for (i = 0; i < g->norder; i++)
		if (w[g->order[i]])
			last = i;
	if (last < 0) {
		/* an index past the end makes the kernel fall back to its hash */
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
	} else {
		f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RANDOM);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, total);
		for (i = 0; i < last; i++) {
			if (!w[g->order[i]])
				continue;
			cum += w[g->order[i]];
			f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, cum, 1, 0);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)i);
		}
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)last);
	}
	prog.len = (unsigned short)n;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)))
		return -errno;
	g->attached = true;
	return 0;
}

static int publish(struct baton_group *g)
{
	int r;

	g->version++;
	r = g->mode == BATON_MODE_EBPF ? publish_ebpf(g) : publish_cbpf(g);
	if (r)
		LOG(g, ERROR, "cannot publish steering policy: %s", strerror(-r));
	return r;
}

/* Pinned maps live at PIN_PATH/NAME; libbpf reuses them on load when they
 * exist (a restarted baton steer) and pins fresh ones otherwise. */
static int set_pins(struct baton_group *g, struct steer_bpf *skel)
{
	struct bpf_map *maps[] = { skel->maps.socks, skel->maps.cfg, skel->maps.ctl, skel->maps.stats,
				   skel->maps.origin, skel->maps.flowcfg, skel->maps.flows, skel->maps.slotep,
				   skel->maps.markers, skel->maps.flowstats };
	const char *names[] = { "socks", "cfg", "ctl", "stats", "origin", "flowcfg", "flows", "slotep", "markers",
				"flowstats" };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", g->pin_path, names[i]);
		if (bpf_map__set_pin_path(maps[i], path))
			return -errno;
	}
	return 0;
}

/* The program is pinned only so that bpftool and a later baton see it; the
 * kernel's group holds its own reference while it is attached. */
static void pin_prog(struct baton_group *g, struct steer_bpf *skel)
{
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/steer", g->pin_path);
	unlink(path);
	if ((r = bpf_program__pin(skel->progs.steer, path)))
		LOG(g, WARN, "cannot pin the steering program at %s: %s", path, strerror(-r));
}

/* A restarted group: the latch sequence, the policy version, and for each
 * occupied slot of the pinned sockarray its socket's cookie and its share of
 * the pinned pick table. Returns true if a previous policy was found. */
static bool recover_pinned(struct baton_group *g)
{
	int cfg_fd = bpf_map__fd(g->skel->maps.cfg), ctl_fd = bpf_map__fd(g->skel->maps.ctl);
	int socks_fd = bpf_map__fd(g->skel->maps.socks);
	struct baton_steer_ctl ctl;
	struct baton_steer_cfg *cfg;
	uint32_t zero = 0, idx, k;
	bool found = false;

	if (bpf_map_lookup_elem(ctl_fd, &zero, &ctl) || !ctl.seq)
		return false;	/* fresh maps: never published */
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return false;
	idx = ctl.seq & 1;
	if (bpf_map_lookup_elem(cfg_fd, &idx, cfg))
		goto out;
	g->seq = ctl.seq;
	g->version = cfg->version;
	for (k = 0; k < BATON_MAX_SLOTS; k++) {
		uint64_t cookie = 0;

		if (bpf_map_lookup_elem(socks_fd, &k, &cookie) == 0 && cookie) {
			g->pin[k].cookie = cookie;
			found = true;
		}
	}
	for (k = 0; k < cfg->n && k < BATON_STEER_TABLE; k++)
		if (cfg->slot[k] < BATON_MAX_SLOTS && g->pin[cfg->slot[k]].cookie)
			g->pin[cfg->slot[k]].weight++;
	LOG(g, INFO, "resuming the pinned group at %s (policy version %u)", g->pin_path, g->version);
out:
	free(cfg);
	return found;
}

/* The caller states the whole policy: pinned slots nobody claimed leave the
 * sockarray (their sockets, held elsewhere, fall back to the kernel hash
 * only if no slot has weight). */
static void forget_pinned(struct baton_group *g)
{
	uint32_t k;

	for (k = 0; k < BATON_MAX_SLOTS; k++) {
		if (!g->pin[k].cookie)
			continue;
		g->pin[k] = (struct pinned){ 0 };
		if (g->m[k].fd < 0 && g->mode == BATON_MODE_EBPF)
			bpf_map_delete_elem(bpf_map__fd(g->skel->maps.socks), &k);
	}
}

static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		struct stat st;

		path[i] = '\0';
		/* stat first: some file systems (sysfs) refuse mkdir with EPERM
		 * even where the directory exists */
		if (stat(path, &st) && mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		path[i] = i < n ? '/' : '\0';
	}
	return 0;
}

static int flows_reuse(struct steer_bpf *skel, struct steer_bpf *old);
static int flows_size(struct baton_group *g, struct steer_bpf *skel);
static int flows_setup(struct baton_group *g);
static void epoch_bump(struct baton_group *g, int slot);

/* Opens and loads the program; with OLD, the new program shares OLD's maps. */
static struct steer_bpf *load_prog(struct baton_group *g, struct steer_bpf *old, int *err)
{
	struct steer_bpf *skel = steer_bpf__open();

	if (!skel) {
		*err = -errno;
		return NULL;
	}
	if (g->no_migrate)
		bpf_program__set_expected_attach_type(skel->progs.steer, BPF_SK_REUSEPORT_SELECT);
	if (g->pin_path[0] && (*err = set_pins(g, skel)))
		goto fail;
	if (old &&
	    (bpf_map__reuse_fd(skel->maps.socks, bpf_map__fd(old->maps.socks)) ||
	     bpf_map__reuse_fd(skel->maps.cfg, bpf_map__fd(old->maps.cfg)) ||
	     bpf_map__reuse_fd(skel->maps.ctl, bpf_map__fd(old->maps.ctl)) ||
	     bpf_map__reuse_fd(skel->maps.stats, bpf_map__fd(old->maps.stats)) ||
	     bpf_map__reuse_fd(skel->maps.pins, bpf_map__fd(old->maps.pins)) ||
	     bpf_map__reuse_fd(skel->maps.origin, bpf_map__fd(old->maps.origin)) ||
	     bpf_map__reuse_fd(skel->maps.sigdown, bpf_map__fd(old->maps.sigdown)) ||
	     flows_reuse(skel, old))) {
		*err = -errno;
		goto fail;
	}
	if (!old && (*err = flows_size(g, skel)))
		goto fail;
	*err = steer_bpf__load(skel);
	if (*err)
		goto fail;
	if (g->pin_path[0])
		pin_prog(g, skel);
	return skel;
fail:
	steer_bpf__destroy(skel);
	return NULL;
}

static int attach_ebpf(struct baton_group *g, int fd)
{
	int prog = bpf_program__fd(g->skel->progs.steer);

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog)))
		return -errno;
	g->attached = true;
	return 0;
}

struct baton_group *baton_group_new(const struct baton_group_opts *opts)
{
	struct baton_group_opts o;
	struct baton_group *g;
	enum baton_mode want;
	int s, err;

	/* fields past the caller's sz stay zero */
	if ((err = BATON_OPTS_COPY(&o, opts, baton_group_opts, flow_idle_ms))) {
		errno = -err;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	for (s = 0; s < BATON_MAX_SLOTS; s++) {
		g->m[s].fd = -1;
		g->marker[s] = -1;
	}
	want = o.mode;
	if ((unsigned)o.flows > BATON_FLOWS_QUIC || o.flow_table > BATON_FLOW_TABLE_MAX ||
	    o.flow_idle_ms > 86400000ull) {
		LOG(g, ERROR, "flow options out of range (flows %d, flow_table %u of at most %u, flow_idle_ms %llu "
			      "of at most 1 day)", (int)o.flows, o.flow_table, BATON_FLOW_TABLE_MAX,
		    (unsigned long long)o.flow_idle_ms);
		err = -EINVAL;
		goto fail;
	}
	g->flows = o.flows;
	g->flow_table = o.flow_table ? o.flow_table : BATON_FLOW_TABLE_DEFAULT;
	g->flow_idle_ms = o.flow_idle_ms ? o.flow_idle_ms : BATON_FLOW_IDLE_DEFAULT_MS;
	g->no_migrate = o.no_migrate;
	g->log = o.log;
	g->log_ctx = o.log_ctx;
	if (o.pin_path && o.pin_path[0]) {
		if (strlen(o.pin_path) >= sizeof(g->pin_path) || o.mode == BATON_MODE_CBPF) {
			LOG(g, ERROR, "pin_path %s: %s", o.pin_path,
			    o.mode == BATON_MODE_CBPF ? "classic BPF state cannot be pinned" : "too long");
			err = -EINVAL;
			goto fail;
		}
		snprintf(g->pin_path, sizeof(g->pin_path), "%s", o.pin_path);
		if ((err = mkdir_p(g->pin_path))) {
			LOG(g, ERROR, "cannot create %s: %s (%s)", g->pin_path, strerror(-err),
			    err == -EPERM || err == -EACCES ? "pinning needs CAP_BPF and CAP_NET_ADMIN, or root"
							    : "is bpffs mounted there?");
			goto fail;
		}
	}
	if (want != BATON_MODE_AUTO && want != BATON_MODE_EBPF && want != BATON_MODE_CBPF) {
		LOG(g, ERROR, "mode %d is none of BATON_MODE_AUTO, BATON_MODE_EBPF, BATON_MODE_CBPF", (int)want);
		err = -EINVAL;
		goto fail;
	}
	if (want != BATON_MODE_CBPF) {
		g->skel = load_prog(g, NULL, &err);
		if (g->skel) {
			g->mode = BATON_MODE_EBPF;
		} else if (want == BATON_MODE_EBPF) {
			LOG(g, ERROR, "cannot load the eBPF steering program: %s (needs CAP_BPF and CAP_NET_ADMIN, or root)",
			    strerror(-err));
			goto fail;
		} else {
			LOG(g, WARN, "eBPF steering unavailable (%s); using classic BPF: no migration of queued "
				     "connections, and the kernel's group order is tracked by baton",
			    strerror(-err));
		}
	}
	if (!g->skel)
		g->mode = BATON_MODE_CBPF;
	if (g->pin_path[0] && g->mode != BATON_MODE_EBPF) {
		LOG(g, ERROR, "pinned groups need eBPF: classic BPF state cannot be pinned");
		err = -EOPNOTSUPP;
		goto fail;
	}
	/* A pinned policy stays as it is: publishing an empty one now would
	 * hand the port to the kernel's hash until the members are found. */
	if (g->mode == BATON_MODE_EBPF && !(g->pin_path[0] && recover_pinned(g)) && (err = publish(g)))
		goto fail;
	if (g->mode == BATON_MODE_EBPF && (err = flows_setup(g)))
		goto fail;
	if (g->flows && g->mode != BATON_MODE_EBPF)
		LOG(g, WARN, "classic BPF steers every datagram on its own: no UDP flow table, so a reload moves "
			     "flows to the new generation");
	LOG(g, INFO, "steering mode: %s%s", baton_mode_name(g->mode),
	    g->mode == BATON_MODE_EBPF ? (g->no_migrate ? " (select only)" : " (select and migrate)") : "");
	return g;
fail:
	if (g->skel)
		steer_bpf__destroy(g->skel);
	free(g);
	errno = -err;
	return NULL;
}

void baton_group_free(struct baton_group *g)
{
	int s;

	if (!g)
		return;
	for (s = 0; s < BATON_MAX_SLOTS; s++)
		if (g->m[s].fd >= 0)
			close(g->m[s].fd);
	if (g->skel)
		steer_bpf__destroy(g->skel);
	free(g);
}

enum baton_mode baton_group_mode(const struct baton_group *g)
{
	if (!g) {
		errno = EINVAL;
		return BATON_MODE_AUTO;
	}
	return g->mode;
}

int baton_group_size(const struct baton_group *g)
{
	return g ? g->nmembers : -EINVAL;
}

static int sockopt_int(int fd, int level, int name, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, level, name, val, &len) ? -errno : 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
}

/* A member must be an inet socket with SO_REUSEPORT, hashed (bound for UDP,
 * listening for TCP), on the group's address, and not a member already. */
static int check_member(struct baton_group *g, int fd, uint64_t *cookie, struct sockaddr_storage *addr,
			socklen_t *alen, int *type)
{
	int v, r;
	socklen_t len = sizeof(*cookie);

	if ((r = sockopt_int(fd, SOL_SOCKET, SO_TYPE, type))) {
		LOG(g, ERROR, "fd %d is not a socket: %s", fd, strerror(-r));
		return r;
	}
	if ((r = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v)) || (v != AF_INET && v != AF_INET6) ||
	    (*type != SOCK_STREAM && *type != SOCK_DGRAM)) {
		LOG(g, ERROR, "fd %d is not a TCP or UDP socket over IPv4 or IPv6", fd);
		return -EPROTOTYPE;
	}
	if (sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, &v) || !v) {
		LOG(g, ERROR, "fd %d does not have SO_REUSEPORT set; it cannot share a group", fd);
		return -EINVAL;
	}
	if (*type == SOCK_STREAM && (sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &v) || !v)) {
		LOG(g, ERROR, "fd %d is a TCP socket that is not listening", fd);
		return -EINVAL;
	}
	*alen = sizeof(*addr);
	memset(addr, 0, sizeof(*addr));
	if (getsockname(fd, (struct sockaddr *)addr, alen))
		return -errno;
	if (*type == SOCK_DGRAM && ((struct sockaddr_in *)addr)->sin_port == 0) {
		LOG(g, ERROR, "fd %d is a UDP socket that is not bound", fd);
		return -EINVAL;
	}
	if (g->nmembers && (*type != g->type || !same_addr(addr, &g->addr))) {
		LOG(g, ERROR, "fd %d is bound to another address or protocol than the group's members", fd);
		return -EINVAL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len))
		return -errno;
	for (v = 0; v < BATON_MAX_SLOTS; v++)
		if (g->m[v].fd >= 0 && g->m[v].cookie == *cookie) {
			LOG(g, ERROR, "fd %d is already a member, in slot %d", fd, v);
			return -EEXIST;
		}
	return 0;
}

/* The origin map names SLOT's socket, so the program can count what moves
 * out of it; the count starts again for a new socket. */
static void set_origin(struct baton_group *g, int slot, uint64_t cookie)
{
	struct baton_steer_origin o = { 0 };
	uint32_t key = (uint32_t)slot;
	int fd;

	if (g->mode != BATON_MODE_EBPF)
		return;
	fd = bpf_map__fd(g->skel->maps.origin);
	if (!bpf_map_lookup_elem(fd, &key, &o) && o.cookie == cookie)
		return;	/* resumed: keep its count */
	o = (struct baton_steer_origin){ .cookie = cookie };
	bpf_map_update_elem(fd, &key, &o, BPF_ANY);
}

/* Takes a member whose socket is already in SLOT of the (pinned) sockarray. */
static int adopt(struct baton_group *g, int fd, int slot, uint32_t weight, uint64_t cookie,
		 const struct sockaddr_storage *addr, socklen_t alen, int type)
{
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3), r;

	if (copy < 0)
		return -errno;
	if (!g->attached && (r = attach_ebpf(g, copy))) {
		LOG(g, ERROR, "cannot attach the steering program to fd %d: %s", fd, strerror(-r));
		close(copy);
		return r;
	}
	if (!g->nmembers) {
		g->type = type;
		g->addr = *addr;
		g->addrlen = alen;
	}
	g->m[slot] = (struct member){ .fd = copy, .weight = weight, .cookie = cookie };
	g->nmembers++;
	set_origin(g, slot, cookie);
	LOG(g, DEBUG, "fd %d resumed slot %d with weight %u", fd, slot, weight);
	return slot;
}

int baton_group_add(struct baton_group *g, int fd, uint32_t weight)
{
	struct sockaddr_storage addr;
	socklen_t alen;
	uint64_t cookie;
	int slot, copy, type, r;

	if (!g || fd < 0)
		return -EINVAL;
	r = check_member(g, fd, &cookie, &addr, &alen, &type);
	if (r)
		return r;
	for (slot = 0; slot < BATON_MAX_SLOTS && g->pin[slot].cookie != cookie; slot++)
		;
	if (slot < BATON_MAX_SLOTS) {
		/* resumed: the socket already sits in this slot of the pinned map */
		weight = g->pin[slot].weight;
		g->pin[slot] = (struct pinned){ 0 };
		return adopt(g, fd, slot, weight, cookie, &addr, alen, type);
	}
	for (slot = 0; slot < BATON_MAX_SLOTS && (g->m[slot].fd >= 0 || g->pin[slot].cookie); slot++)
		;
	if (slot == BATON_MAX_SLOTS) {
		LOG(g, ERROR, "group is full (%d members)", BATON_MAX_SLOTS);
		return -ENOSPC;
	}
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return -errno;
	if (g->mode == BATON_MODE_EBPF) {
		uint64_t v = (uint64_t)copy;
		uint32_t key = (uint32_t)slot;

		epoch_bump(g, slot);	/* flows of whatever held this slot before are not its */
		set_origin(g, slot, cookie);
		/* EBUSY: the socket still belongs to the sockarray of a program
		 * that was just detached (a baton steer that exited): the kernel
		 * frees that map after a grace period, so wait for it, briefly */
		for (int tries = 0; (r = bpf_map_update_elem(bpf_map__fd(g->skel->maps.socks), &key, &v, BPF_NOEXIST) ?
					   -errno : 0) == -EBUSY && tries < 100; tries++)
			usleep(2000);
		if (r) {
			LOG(g, ERROR, "cannot put fd %d into slot %d: %s%s", fd, slot, strerror(-r),
			    r == -EBUSY ? " (another steering map holds the socket: is another baton steering it?)" : "");
			goto fail;
		}
		if (!g->attached && (r = attach_ebpf(g, copy))) {
			LOG(g, ERROR, "cannot attach the steering program to fd %d: %s", fd, strerror(-r));
			bpf_map_delete_elem(bpf_map__fd(g->skel->maps.socks), &key);
			goto fail;
		}
	} else {
		g->order[g->norder++] = slot;
	}
	if (!g->nmembers) {
		g->type = type;
		g->addr = addr;
		g->addrlen = alen;
	}
	g->m[slot] = (struct member){ .fd = copy, .weight = weight, .cookie = cookie };
	g->nmembers++;
	/* eBPF: a member without weight changes no pick table (unless the
	 * healthy members share the traffic), so a reload that adds hundreds
	 * of them publishes nothing until it switches */
	r = g->mode == BATON_MODE_EBPF && !weight && !fallback_spread(g) ? 0 : publish(g);
	if (r) {
		baton_group_remove(g, slot);
		return r;
	}
	LOG(g, DEBUG, "fd %d joined as slot %d with weight %u", fd, slot, weight);
	return slot;
fail:
	close(copy);
	return r;
}

int baton_group_set_weights(struct baton_group *g, const uint32_t *weights, size_t n)
{
	int s;

	if (!g || (n && !weights) || n > BATON_MAX_SLOTS)
		return -EINVAL;
	for (s = 0; s < (int)n; s++)
		if (weights[s] && g->m[s].fd < 0) {
			LOG(g, ERROR, "weight %u given to slot %d, which has no member", weights[s], s);
			return -ENOENT;
		}
	forget_pinned(g);
	for (s = 0; s < BATON_MAX_SLOTS; s++)
		g->m[s].weight = s < (int)n ? weights[s] : 0;
	return publish(g);
}

int baton_group_activate(struct baton_group *g, int slot)
{
	int s, r;

	if ((r = slot_check(g, slot)))
		return r;
	if (g->m[slot].fenced) {
		LOG(g, ERROR, "slot %d is fenced; it cannot take traffic", slot);
		return -ESHUTDOWN;
	}
	forget_pinned(g);
	for (s = 0; s < BATON_MAX_SLOTS; s++)
		g->m[s].weight = s == slot;
	return publish(g);
}

int baton_group_drain(struct baton_group *g, int slot)
{
	int r;

	if ((r = slot_check(g, slot)))
		return r;
	g->m[slot].weight = 0;
	return publish(g);
}

int baton_group_weight(const struct baton_group *g, int slot, uint32_t *weight)
{
	int r = slot_check(g, slot);

	if (r || !weight)
		return r ? r : -EINVAL;
	*weight = eff_weight(g, slot);
	return 0;
}

/* cBPF: the socket at kernel index i left the listening array; the kernel
 * moved its last entry into the hole. */
static void order_forget(struct baton_group *g, int slot)
{
	int i;

	for (i = 0; i < g->norder; i++)
		if (g->order[i] == slot) {
			g->order[i] = g->order[--g->norder];
			return;
		}
}

int baton_group_fence(struct baton_group *g, int slot)
{
	int r;

	if ((r = slot_check(g, slot)))
		return r;
	if (g->m[slot].fenced)
		return 0;
	if (g->type == SOCK_STREAM) {
		struct baton_queue q;

		g->m[slot].backlog = baton_socket_queue(g->m[slot].fd, &q) == 0 && q.max ? (int)q.max : 4096;
	}
	g->m[slot].fenced = true;
	r = publish(g);	/* steer away first: nothing new lands on it */
	epoch_bump(g, slot);	/* and its flows end: their next datagram is a new flow */
	if (r)
		return r;
	if (g->type != SOCK_STREAM) {
		LOG(g, INFO, "slot %d is UDP: steered away, its flows end; datagrams have no queue to move", slot);
		return 0;
	}
	if (g->m[slot].foreign) {
		/* Its owner (a systemd .socket unit) watches it once its service
		 * stops: a shut-down listener polls POLLHUP there and the unit
		 * fails. Steered away only; its queue waits for whoever accepts. */
		LOG(g, INFO, "slot %d is another owner's socket: steered away, not shut down", slot);
		return 0;
	}
	if (g->mode == BATON_MODE_CBPF)
		LOG(g, WARN, "fencing slot %d in cBPF mode: its queued connections are reset unless "
			     "net.ipv4.tcp_migrate_req=1", slot);
	if (shutdown(g->m[slot].fd, SHUT_RD)) {
		r = -errno;
		LOG(g, ERROR, "cannot shut down slot %d: %s", slot, strerror(-r));
		return r;
	}
	if (g->mode == BATON_MODE_CBPF) {
		order_forget(g, slot);
		r = publish(g);
	}
	if (g->attached && live_fd(g) < 0)
		g->attached = false;	/* the kernel's group may be gone with it */
	return r;
}

int baton_group_remove(struct baton_group *g, int slot)
{
	struct member *m;
	int r = 0, pr;

	if ((r = slot_check(g, slot)))
		return r;
	m = &g->m[slot];
	if (g->mode == BATON_MODE_CBPF && g->type == SOCK_STREAM && !m->fenced && !m->foreign) {
		/* The order tracking must know the socket leaves the kernel's
		 * array now, not whenever some other holder closes it. */
		r = baton_group_fence(g, slot);
	}
	/* Steer away before closing: in eBPF mode the queue then migrates by
	 * the new policy; in cBPF mode no index points at it any more. */
	m->weight = 0;
	m->fenced = true;
	pr = publish(g);
	if (pr && !r)
		r = pr;
	if (g->mode == BATON_MODE_EBPF) {
		uint32_t key = (uint32_t)slot;

		bpf_map_delete_elem(bpf_map__fd(g->skel->maps.socks), &key);
		epoch_bump(g, slot);
		if (g->marker[slot] >= 0)
			baton_group_set_marker(g, slot, -1);
	}
	close(m->fd);
	*m = (struct member){ .fd = -1 };
	g->nmembers--;
	if (g->mode == BATON_MODE_CBPF && g->type == SOCK_DGRAM) {
		/* a UDP socket leaves the kernel's array when its last copy
		 * closes; baton's copy is taken to be that one */
		order_forget(g, slot);
		pr = publish(g);
		if (pr && !r)
			r = pr;
	}
	if (live_fd(g) < 0)
		g->attached = false;
	return r;
}

int baton_group_fd(const struct baton_group *g, int slot)
{
	int r = slot_check(g, slot);

	return r ? r : g->m[slot].fd;
}

int baton_group_queue(const struct baton_group *g, int slot, struct baton_queue *q)
{
	int r;

	if ((r = slot_check(g, slot)))
		return r;
	return baton_socket_queue(g->m[slot].fd, q);
}

int baton_group_stats(const struct baton_group *g, int slot, struct baton_slot_stats *st)
{
	int r = baton_group_stats_info(g, slot, st, BATON_SLOT_STATS_SZ_0_1);

	return r < 0 ? r : 0;
}

/* The per-CPU values of KEY in a per-CPU map, one VALSZ each, in a new
 * array the caller frees; NULL with *ERR set. */
static void *percpu_lookup(int fd, uint32_t key, size_t valsz, int ncpu, int *err)
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
	uint32_t key = (uint32_t)slot;

	if (!g || !out || len < BATON_SLOT_STATS_SZ_0_1 || slot < 0 || slot > BATON_MAX_SLOTS)
		return -EINVAL;
	if (g->mode != BATON_MODE_EBPF)
		return -EOPNOTSUPP;
	v = percpu_lookup(bpf_map__fd(g->skel->maps.stats), key, sizeof(*v), ncpu, &r);
	if (!v)
		return r;
	for (i = 0; i < ncpu; i++) {
		st.selected += v[i].selected;
		st.migrated += v[i].migrated;
		st.missed += v[i].missed;
	}
	if (slot < BATON_MAX_SLOTS) {
		struct baton_steer_origin o;

		if (!bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.origin), &key, &o))
			st.migrated_out = o.migrated_out;
	}
	r = baton_out_copy(out, len, &st, sizeof(st), BATON_SLOT_STATS_SZ_0_1);
	free(v);
	return r;
}

int baton_group_reload(struct baton_group *g)
{
	struct steer_bpf *fresh;
	int fd, r;

	if (!g)
		return -EINVAL;
	if (g->mode == BATON_MODE_CBPF)
		return publish(g);
	fresh = load_prog(g, g->skel, &r);
	if (!fresh) {
		LOG(g, ERROR, "cannot load a fresh steering program: %s; the running one stays", strerror(-r));
		return r;
	}
	fd = live_fd(g);
	if (fd >= 0) {
		int prog = bpf_program__fd(fresh->progs.steer);

		/* The kernel swaps the group's program under RCU: every
		 * decision is made by the old or the new one. */
		if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog))) {
			r = -errno;
			LOG(g, ERROR, "cannot attach the fresh steering program: %s; the running one stays",
			    strerror(-r));
			steer_bpf__destroy(fresh);
			return r;
		}
		g->attached = true;
	}
	steer_bpf__destroy(g->skel);
	g->skel = fresh;
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
	if (bpf_obj_get_info_by_fd(bpf_program__fd(g->skel->progs.steer), &info, &len))
		return -errno;
	*id = info.id;
	return 0;
}

int baton_group_detach(struct baton_group *g)
{
	int fd, zero = 0;

	if (!g)
		return -EINVAL;
	fd = live_fd(g);
	if (fd < 0 || !g->attached)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &zero, sizeof(zero)))
		return -errno;
	g->attached = false;
	return 0;
}

int baton_group_unfence(struct baton_group *g, int slot)
{
	struct member *m;
	int r, v = 0;

	if ((r = slot_check(g, slot)))
		return r;
	m = &g->m[slot];
	if (!m->fenced)
		return 0;
	if (g->type == SOCK_STREAM && !m->foreign) {	/* a foreign one never stopped listening */
		/* A socket that got its port from bind(port 0) gives the port
		 * up on shutdown (getsockname still shows it): bind it to the
		 * group's address again. One that keeps its port says EINVAL. */
		if (bind(m->fd, (const struct sockaddr *)&g->addr, g->addrlen) && errno != EINVAL) {
			r = -errno;
			LOG(g, ERROR, "cannot bind slot %d to the group's address again: %s", slot, strerror(-r));
			return r;
		}
		/* listen() on a shut-down listener puts it back into its old
		 * reuseport group (the kernel kept it among the closed ones) */
		if (sockopt_int(m->fd, SOL_SOCKET, SO_ACCEPTCONN, &v) == 0 && !v &&
		    listen(m->fd, m->backlog ? m->backlog : 4096)) {
			r = -errno;
			LOG(g, ERROR, "cannot listen on slot %d again: %s", slot, strerror(-r));
			return r;
		}
		if (g->mode == BATON_MODE_CBPF)
			g->order[g->norder++] = slot;	/* listen appends to the kernel's array */
	}
	if (g->mode == BATON_MODE_EBPF && !m->foreign) {	/* a foreign one is still in it */
		uint64_t fd = (uint64_t)m->fd;
		uint32_t key = (uint32_t)slot;

		/* shutdown took the socket out of the sockarray */
		if (bpf_map_update_elem(bpf_map__fd(g->skel->maps.socks), &key, &fd, BPF_ANY)) {
			r = -errno;
			LOG(g, ERROR, "cannot put slot %d back into the sockarray: %s", slot, strerror(-r));
			return r;
		}
		if (!g->attached && (r = attach_ebpf(g, m->fd)))
			return r;
	}
	m->fenced = false;
	epoch_bump(g, slot);
	return publish(g);
}

int baton_group_set_down(struct baton_group *g, int slot, bool down)
{
	int r;

	if ((r = slot_check(g, slot)))
		return r;
	if (g->m[slot].down == down)
		return 0;
	g->m[slot].down = down;
	return publish(g);
}

bool baton_group_fenced(const struct baton_group *g, int slot)
{
	return slot_ok(g, slot) && g->m[slot].fenced;
}

int baton_group_flags(const struct baton_group *g, int slot)
{
	int r = slot_check(g, slot);

	if (r)
		return r;
	return (int)((g->m[slot].fenced ? BATON_SLOT_FENCED : 0) | (g->m[slot].down ? BATON_SLOT_DOWN : 0) |
		     (g->m[slot].foreign ? BATON_SLOT_FOREIGN : 0));
}

int baton_group_set_foreign(struct baton_group *g, int slot, bool foreign)
{
	int r = slot_check(g, slot);

	if (r)
		return r;
	g->m[slot].foreign = foreign;
	return 0;
}

/* Only what baton pins goes: what else a directory holds is not baton's,
 * so it stays, and with it the directory. */
int baton_group_unpin_dir(const char *pin_path)
{
	const char *names[] = { "socks", "cfg", "ctl", "stats", "origin", "steer", "flowcfg", "flows", "slotep",
				"markers", "flowstats" };
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	if (!pin_path || !pin_path[0] || strlen(pin_path) >= PATH_MAX - 16)
		return -EINVAL;
	if (stat(pin_path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_path, names[i]);
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	if (rmdir(pin_path) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Pins removed under a running group (rm -r of bpffs, a cleanup script)
 * leave it steering, but a later process cannot find its state: each
 * missing pin is made again from the group's own descriptors. */
int baton_group_repin(struct baton_group *g)
{
	const char *names[] = { "socks", "cfg", "ctl", "stats", "origin", "flowcfg", "flows", "slotep", "markers",
				"flowstats", "steer" };
	char path[PATH_MAX];
	struct stat st;
	int n = 0;

	if (!g)
		return -EINVAL;
	if (!g->pin_path[0] || g->mode != BATON_MODE_EBPF || !g->skel)
		return 0;
	{
		struct bpf_map *maps[] = { g->skel->maps.socks, g->skel->maps.cfg, g->skel->maps.ctl,
					   g->skel->maps.stats, g->skel->maps.origin, g->skel->maps.flowcfg,
					   g->skel->maps.flows, g->skel->maps.slotep, g->skel->maps.markers,
					   g->skel->maps.flowstats };
		int r = mkdir_p(g->pin_path);

		if (r)
			return r;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			int fd = i < sizeof(maps) / sizeof(maps[0]) ? bpf_map__fd(maps[i])
								    : bpf_program__fd(g->skel->progs.steer);

			snprintf(path, sizeof(path), "%s/%s", g->pin_path, names[i]);
			if (fd < 0 || !stat(path, &st))
				continue;
			if (bpf_obj_pin(fd, path))
				return -errno;
			n++;
		}
	}
	if (n)
		LOG(g, WARN, "%d pin%s under %s had been removed: pinned again", n, n == 1 ? "" : "s", g->pin_path);
	return n;
}

int baton_group_unpin(struct baton_group *g)
{
	int r;

	if (!g)
		return -EINVAL;
	if (!g->pin_path[0])
		return 0;
	r = baton_group_unpin_dir(g->pin_path);
	return r == -ENOENT ? 0 : r;
}

/* The share comes from the pick table the program reads (the copy the
 * latch points readers at), not from the weights asked for: what the
 * program applies, including fences and members that are down. */
int baton_group_share(const struct baton_group *g, int slot, uint32_t *ppm)
{
	struct baton_steer_ctl ctl;
	struct baton_steer_cfg *cfg;
	uint32_t zero = 0, idx, k, hits = 0, w[BATON_MAX_SLOTS], total;
	int r = slot_check(g, slot);

	if (r || !ppm)
		return r ? r : -EINVAL;
	if (g->mode != BATON_MODE_EBPF) {
		/* classic BPF: the program was generated from these same numbers */
		total = scale_weights(g, w, 1u << 16);
		*ppm = total ? (uint32_t)((uint64_t)w[slot] * 1000000u / total) : 0;
		return 0;
	}
	if (bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.ctl), &zero, &ctl))
		return -errno;
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	idx = ctl.seq & 1;
	if (bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.cfg), &idx, cfg)) {
		r = -errno;
		goto out;
	}
	for (k = 0; k < cfg->n && k < BATON_STEER_TABLE; k++)
		hits += cfg->slot[k] == (uint8_t)slot;
	*ppm = cfg->n ? (uint32_t)((uint64_t)hits * 1000000u / cfg->n) : 0;
out:
	free(cfg);
	return r;
}

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
	if (slot >= 0 && (r = slot_check(g, slot)))
		return r;
	fd = bpf_map__fd(g->skel->maps.pins);
	/* one entry per range: pinning a range again moves it */
	for (k = 0; k < BATON_MAX_PINS; k++) {
		uint32_t key = (uint32_t)k;

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
		uint32_t key = (uint32_t)k;

		if (bpf_map_update_elem(fd, &key, &p, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* ---- UDP flows ----------------------------------------------------------
 * The flow table and its companions (bpf/steer.h): sized before load,
 * configured once, per-slot epochs bumped as members come and go. */

static int flows_reuse(struct steer_bpf *skel, struct steer_bpf *old)
{
	return bpf_map__reuse_fd(skel->maps.flowcfg, bpf_map__fd(old->maps.flowcfg)) ||
	       bpf_map__reuse_fd(skel->maps.flows, bpf_map__fd(old->maps.flows)) ||
	       bpf_map__reuse_fd(skel->maps.slotep, bpf_map__fd(old->maps.slotep)) ||
	       bpf_map__reuse_fd(skel->maps.markers, bpf_map__fd(old->maps.markers)) ||
	       bpf_map__reuse_fd(skel->maps.flowstats, bpf_map__fd(old->maps.flowstats));
}

/* The table is preallocated by the kernel, so a group without flows (TCP,
 * flows=off) gets one entry. A pinned table keeps the size it was made
 * with: libbpf reuses a pinned map only if it matches. */
static int flows_size(struct baton_group *g, struct steer_bpf *skel)
{
	uint32_t want = g->flows ? g->flow_table : 1;
	char path[PATH_MAX];
	int fd;

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
	return bpf_map__set_max_entries(skel->maps.flows, want);
}

static int flows_setup(struct baton_group *g)
{
	struct baton_flow_cfg c = { .mode = (uint32_t)g->flows, .idle_ns = g->flow_idle_ms * 1000000ull };
	uint32_t zero = 0;

	if (g->flows && g->flow_table <= 1)
		c.mode = BATON_FLOWS_OFF_;	/* a pinned table made without flows */
	for (uint32_t k = 0; k < BATON_MAX_SLOTS; k++)
		bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.slotep), &k, &g->epoch[k]);
	/* a resumed group finds its markers where it left them */
	for (uint32_t k = 0; g->pin_path[0] && k < 256; k++) {
		struct baton_flow_marker m;

		if (!bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.markers), &k, &m) && m.slot_plus1 &&
		    m.slot_plus1 <= BATON_MAX_SLOTS)
			g->marker[m.slot_plus1 - 1] = (int)k;
	}
	return bpf_map_update_elem(bpf_map__fd(g->skel->maps.flowcfg), &zero, &c, BPF_ANY) ? -errno : 0;
}

/* The program compares a flow's epoch with its slot's: a bump ends every
 * flow placed on the slot before it, without walking the table. */
static void epoch_bump(struct baton_group *g, int slot)
{
	uint32_t key = (uint32_t)slot, e;

	/* without flows nothing reads the epochs: a TCP group pays nothing */
	if (g->mode != BATON_MODE_EBPF || !g->flows)
		return;
	e = ++g->epoch[slot];
	if (bpf_map_update_elem(bpf_map__fd(g->skel->maps.slotep), &key, &e, BPF_ANY))
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
	if (marker >= 0 && (r = slot_check(g, slot)))
		return r;
	if (slot < 0 || slot >= BATON_MAX_SLOTS)
		return -EINVAL;
	if (g->mode != BATON_MODE_EBPF || g->flows != BATON_FLOWS_QUIC)
		return -EOPNOTSUPP;
	fd = bpf_map__fd(g->skel->maps.markers);
	if (g->marker[slot] >= 0) {
		key = (uint32_t)g->marker[slot];
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
	key = (uint32_t)marker;
	if (bpf_map_update_elem(fd, &key, &m, BPF_ANY))
		return -errno;
	g->marker[slot] = marker;
	return 0;
}

/* One pass with batched lookups; a batch that would split a hash bucket
 * says ENOSPC, and is retried larger. */
static int flows_scan(const struct baton_group *g, struct baton_flow_stats *st)
{
	int fd = bpf_map__fd(g->skel->maps.flows), efd = bpf_map__fd(g->skel->maps.slotep), r = 0;
	uint32_t batch = 1024, n, i, ep[BATON_MAX_SLOTS] = { 0 }, k;
	struct baton_flow_key *keys = NULL;
	struct baton_flow *vals = NULL;
	uint64_t in = 0, out = 0, now, idle_ns = g->flow_idle_ms * 1000000ull;
	struct timespec ts;
	bool first = true;
	LIBBPF_OPTS(bpf_map_batch_opts, bo);

	for (k = 0; k < BATON_MAX_SLOTS; k++)
		bpf_map_lookup_elem(efd, &k, &ep[k]);
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
			st->entries++;
			if (vals[i].slot >= BATON_MAX_SLOTS || vals[i].epoch != ep[vals[i].slot] ||
			    now - vals[i].last_ns >= idle_ns)
				continue;
			st->live++;
			st->per_slot[vals[i].slot]++;
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
	v = percpu_lookup(bpf_map__fd(g->skel->maps.flowstats), zero, sizeof(*v), ncpu, &r);
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

/* The kernel failover's map (bpf/sigdown.h), for lib/watch.c: its owners and
 * the stop watcher that marks them. -1 without eBPF. */
int baton_group_sigdown_fd(const struct baton_group *g)
{
	return g && g->mode == BATON_MODE_EBPF && g->skel ? bpf_map__fd(g->skel->maps.sigdown) : -1;
}
