/* SPDX-License-Identifier: BSD-2-Clause */
/* Steered SO_REUSEPORT groups: members and the group. eBPF mode: members
 * live in a REUSEPORT_SOCKARRAY by stable slot of the group's listener in
 * its steering set (steer_set.c: the program and maps, shared by the
 * listeners of a supervisor or the group's own), the policy is a pick table
 * (steer_policy.c) published by the set in policy banks (steer_banks.c: one
 * store switches every listener's table whole, readers never see a mix),
 * and the program is loaded for SELECT_OR_MIGRATE so closing listeners hand
 * their queue over. cBPF mode (no privilege): a
 * generated classic program returns an index into the kernel's group, whose
 * order this file tracks. */
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
#include "steer_int.h"
#include "steer.skel.h"

_Static_assert(BATON_MAX_SLOTS == BATON_STEER_SLOTS, "slot counts differ");
_Static_assert(BATON_STEER_SLOTS < BATON_STEER_NONE, "slot numbers must fit the table");
_Static_assert(sizeof(struct baton_steer_pin) == 28, "pin entries are shared with the program as 28 bytes");
_Static_assert(BATON_STEER_PINS == BATON_MAX_PINS, "pin counts differ");
_Static_assert(sizeof(struct baton_steer_origin) == 16, "the origin map's value is two u64 (bpf/steer.h)");
/* new fields go after set_reserved and may not hide in padding an older library skips */
_Static_assert(sizeof(struct baton_group_opts) == baton_offsetofend(struct baton_group_opts, set_reserved),
	       "baton_group_opts ends in padding");
_Static_assert(BATON_FLOWS_OFF == BATON_FLOWS_OFF_ && BATON_FLOWS_ON == BATON_FLOWS_TUPLE_ &&
	       BATON_FLOWS_QUIC == BATON_FLOWS_QUIC_, "flow modes differ");

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

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
int steer_slot_check(const struct baton_group *g, int slot)
{
	if (!g || slot < 0 || slot >= BATON_MAX_SLOTS)
		return -EINVAL;
	return g->m[slot].fd >= 0 ? 0 : -ENOENT;
}

bool steer_slot_ok(const struct baton_group *g, int slot)
{
	return steer_slot_check(g, slot) == 0;
}

int steer_live_fd(const struct baton_group *g)
{
	int s;

	for (s = 0; s < g->nslots; s++)
		if (g->m[s].fd >= 0 && !g->m[s].fenced)
			return g->m[s].fd;
	return -1;
}

static int publish_cbpf(struct baton_group *g)
{
	struct sock_filter f[STEER_CBPF_MAX];
	struct sock_fprog prog = { .filter = f };
	int fd = steer_live_fd(g);

	if (fd < 0)
		return 0;	/* nothing to attach to yet */
	prog.len = (unsigned short)steer_cbpf_build(g, f);
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)))
		return -errno;
	g->attached = true;
	return 0;
}

static int publish(struct baton_group *g)
{
	int r;

	g->version++;
	r = g->mode == BATON_MODE_EBPF ? steer_set_publish_group(g) : publish_cbpf(g);
	if (r)
		LOG(g, ERROR, "cannot publish steering policy: %s", strerror(-r));
	return r;
}

static int attach_ebpf(struct baton_group *g, int fd)
{
	int prog = bpf_program__fd(g->set->skel->progs.steer);

	/* before the attach: a bank retired from now on waits for a grace period */
	steer_banks_attached(&g->set->banks);
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog)))
		return -errno;
	g->attached = true;
	return 0;
}

/* eBPF: G joins the caller's set, or loads a set of its own (of one). */
static int group_set(struct baton_group *g, const struct baton_group_opts *o)
{
	struct baton_steerset_opts so = { .sz = sizeof(so), .log = g->log, .log_ctx = g->log_ctx, .listeners = 1,
					  .no_migrate = o->no_migrate, .flows = o->flows != BATON_FLOWS_OFF,
					  .flow_table = o->flow_table, .pin_path = g->pin_path };
	struct baton_steerset *set = o->set;
	int err;

	if (set) {
		if ((err = steer_set_join(set, g, o->set_index)))
			return err;
	} else {
		set = steer_set_create(&so, &err);
		if (!set)
			return err;
		err = steer_set_join(set, g, 0);
		steer_set_put(set);	/* the group's reference keeps it */
		if (err)
			return err;
	}
	g->pin_path = set->pin_path;	/* the caller's string is not kept */
	g->no_migrate = set->no_migrate;
	if (g->flows)
		g->flow_table = set->flow_table;
	return 0;
}

/* G leaves its set and its memory goes (its pinned slots, and G on the
 * heap, or its place in the set's slab, which the set's last reference
 * unmaps: so G is not read after the leave). */
static void steer_group_release(struct baton_group *g)
{
	bool in_slab = g->in_slab;

	free(g->pin);

	if (g->set)
		steer_set_leave(g->set, g);
	if (!in_slab)
		free(g);
}

struct baton_group *baton_group_new(const struct baton_group_opts *opts)
{
	struct baton_group_opts o;
	struct baton_group *g;
	enum baton_mode want;
	int s, err;

	/* fields past the caller's sz stay zero */
	if ((err = BATON_OPTS_COPY(&o, opts, baton_group_opts, set_reserved))) {
		errno = -err;
		return NULL;
	}
	/* on a cache line: a switch reads the first line or two (steer_int.h) */
	g = o.set ? steer_set_slab(o.set, o.set_index) : NULL;
	if (!g) {
		g = aligned_alloc(64, STEER_GROUP_SZ);
		if (!g)
			return NULL;
		memset(g, 0, sizeof(*g));
	}
	for (s = 0; s < BATON_MAX_SLOTS; s++) {
		g->m[s].fd = -1;
		g->marker[s] = -1;
	}
	g->pin_path = "";
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
	if (o.pin_path && o.pin_path[0] && !o.set) {
		if (strlen(o.pin_path) >= PATH_MAX - 32 || o.mode == BATON_MODE_CBPF) {
			LOG(g, ERROR, "pin_path %s: %s", o.pin_path,
			    o.mode == BATON_MODE_CBPF ? "classic BPF state cannot be pinned" : "too long");
			err = -EINVAL;
			goto fail;
		}
		g->pin_path = o.pin_path;	/* until the set keeps its copy (group_set) */
	}
	if (o.set && (o.mode == BATON_MODE_CBPF || o.set_reserved)) {
		LOG(g, ERROR, "a steering set is eBPF: mode %s and set_reserved %u are not for it",
		    baton_mode_name(o.mode), o.set_reserved);
		err = -EINVAL;
		goto fail;
	}
	if (want != BATON_MODE_AUTO && want != BATON_MODE_EBPF && want != BATON_MODE_CBPF) {
		LOG(g, ERROR, "mode %d is none of BATON_MODE_AUTO, BATON_MODE_EBPF, BATON_MODE_CBPF", (int)want);
		err = -EINVAL;
		goto fail;
	}
	if (want != BATON_MODE_CBPF) {
		err = group_set(g, &o);
		if (!err) {
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
	if (!g->set)
		g->mode = BATON_MODE_CBPF;
	if (g->pin_path[0] && g->mode != BATON_MODE_EBPF) {
		LOG(g, ERROR, "pinned groups need eBPF: classic BPF state cannot be pinned");
		err = -EOPNOTSUPP;
		goto fail;
	}
	/* A pinned policy stays as it is: publishing an empty one now would
	 * hand the port to the kernel's hash until the members are found. */
	if (g->mode == BATON_MODE_EBPF && !(g->pin_path[0] && steer_recover_pinned(g)) && (err = publish(g)))
		goto fail;
	if (g->mode == BATON_MODE_EBPF && (err = steer_flows_setup(g)))
		goto fail;
	if (g->flows && g->mode != BATON_MODE_EBPF)
		LOG(g, WARN, "classic BPF steers every datagram on its own: no UDP flow table, so a reload moves "
			     "flows to the new generation");
	LOG(g, INFO, "steering mode: %s%s", baton_mode_name(g->mode),
	    g->mode == BATON_MODE_EBPF ? (g->no_migrate ? " (select only)" : " (select and migrate)") : "");
	return g;
fail:
	steer_group_release(g);
	errno = -err;
	return NULL;
}

void baton_group_free(struct baton_group *g)
{
	int s;

	if (!g)
		return;
	for (s = 0; s < g->nslots; s++)
		if (g->m[s].fd >= 0)
			close(g->m[s].fd);
	steer_group_release(g);
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

int steer_sockopt_int(int fd, int level, int name, int *val)
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

	if ((r = steer_sockopt_int(fd, SOL_SOCKET, SO_TYPE, type))) {
		LOG(g, ERROR, "fd %d is not a socket: %s", fd, strerror(-r));
		return r;
	}
	if ((r = steer_sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v)) || (v != AF_INET && v != AF_INET6) ||
	    (*type != SOCK_STREAM && *type != SOCK_DGRAM)) {
		LOG(g, ERROR, "fd %d is not a TCP or UDP socket over IPv4 or IPv6", fd);
		return -EPROTOTYPE;
	}
	if (steer_sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, &v) || !v) {
		LOG(g, ERROR, "fd %d does not have SO_REUSEPORT set; it cannot share a group", fd);
		return -EINVAL;
	}
	if (*type == SOCK_STREAM && (steer_sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &v) || !v)) {
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
	for (v = 0; v < g->nslots; v++)
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
	uint32_t key = steer_gslot(g, slot);
	int fd;

	if (g->mode != BATON_MODE_EBPF)
		return;
	fd = bpf_map__fd(g->set->skel->maps.origin);
	if (!bpf_map_lookup_elem(fd, &key, &o) && o.cookie == cookie)
		return;	/* resumed: keep its count */
	o = (struct baton_steer_origin){ .cookie = cookie };
	bpf_map_update_elem(fd, &key, &o, BPF_ANY);
}

/* The first member sets what the others must be bound to; a shared
 * program learns which listener the address is before it decides for it. */
static int group_address(struct baton_group *g, const struct sockaddr_storage *addr, socklen_t alen, int type)
{
	int r;

	g->type = type;
	g->addr = *addr;
	g->addrlen = alen;
	if (g->mode == BATON_MODE_EBPF && (r = steer_set_address(g->set, g))) {
		LOG(g, ERROR, "cannot enter the listener into the steering set: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* Takes a member whose socket is already in SLOT of the (pinned) sockarray. */
static int adopt(struct baton_group *g, int fd, int slot, uint32_t weight, uint64_t cookie,
		 const struct sockaddr_storage *addr, socklen_t alen, int type)
{
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3), r;

	if (copy < 0)
		return -errno;
	if (!g->nmembers && (r = group_address(g, addr, alen, type))) {
		close(copy);
		return r;
	}
	if (!g->attached && (r = attach_ebpf(g, copy))) {
		LOG(g, ERROR, "cannot attach the steering program to fd %d: %s", fd, strerror(-r));
		close(copy);
		return r;
	}
	steer_slot_used(g, slot);
	g->m[slot] = (struct member){ .fd = copy, .weight = weight, .cookie = cookie };
	g->nmembers++;
	set_origin(g, slot, cookie);
	LOG(g, DEBUG, "fd %d resumed slot %d with weight %u", fd, slot, weight);
	return slot;
}

/* A socket baton just made for this group (baton_listener_open: an inet
 * socket of the group's type with SO_REUSEPORT, listening or bound, on the
 * spec's address, so not a member yet) needs only its cookie: the checks
 * are for sockets from outside. The first member still goes through them,
 * as it sets the group's address and type. */
static int check_made(struct baton_group *g, int fd, uint64_t *cookie, struct sockaddr_storage *addr,
		      socklen_t *alen, int *type)
{
	socklen_t len = sizeof(*cookie);

	if (!g->nmembers)
		return check_member(g, fd, cookie, addr, alen, type);
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len))
		return -errno;
	*type = g->type;
	*addr = g->addr;
	*alen = g->addrlen;
	return 0;
}

/* MADE: FD is a socket baton made for the group (check_made), which the
 * group keeps instead of a copy, or closes on failure. */
static int group_add(struct baton_group *g, int fd, uint32_t weight, bool made)
{
	struct sockaddr_storage addr;
	socklen_t alen;
	uint64_t cookie;
	int slot, copy, type, r;

	r = made ? check_made(g, fd, &cookie, &addr, &alen, &type) : check_member(g, fd, &cookie, &addr, &alen, &type);
	if (r)
		goto early;
	for (slot = 0; !made && g->pin && slot < g->nslots && g->pin[slot].cookie != cookie; slot++)
		;
	if (!made && g->pin && slot < g->nslots) {
		/* resumed: the socket already sits in this slot of the pinned map */
		weight = g->pin[slot].weight;
		g->pin[slot] = (struct pinned){ 0 };
		if (!--g->npinned) {
			free(g->pin);	/* every pinned slot has its member again */
			g->pin = NULL;
		}
		return adopt(g, fd, slot, weight, cookie, &addr, alen, type);
	}
	for (slot = 0; slot < BATON_MAX_SLOTS && (g->m[slot].fd >= 0 || steer_pinned(g, slot)); slot++)
		;
	if (slot == BATON_MAX_SLOTS) {
		LOG(g, ERROR, "group is full (%d members)", BATON_MAX_SLOTS);
		r = -ENOSPC;
		goto early;
	}
	copy = made ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return -errno;
	if (g->mode == BATON_MODE_EBPF) {
		uint64_t v = (uint64_t)copy;
		uint32_t key = steer_gslot(g, slot);

		if (!g->nmembers && (r = group_address(g, &addr, alen, type)))
			goto fail;
		steer_epoch_bump(g, slot);	/* flows of whatever held this slot before are not its */
		if (made)	/* a new socket: no count of its own to keep */
			bpf_map_update_elem(bpf_map__fd(g->set->skel->maps.origin), &key,
					    &(struct baton_steer_origin){ .cookie = cookie }, BPF_ANY);
		else
			set_origin(g, slot, cookie);
		/* EBUSY: the socket still belongs to the sockarray of a program
		 * that was just detached (a baton steer that exited): the kernel
		 * frees that map after a grace period, so wait for it, briefly */
		for (int tries = 0; (r = bpf_map_update_elem(bpf_map__fd(g->set->skel->maps.socks), &key, &v, BPF_NOEXIST) ?
					   -errno : 0) == -EBUSY && tries < 100; tries++)
			usleep(2000);
		if (r) {
			LOG(g, ERROR, "cannot put fd %d into slot %d: %s%s", fd, slot, strerror(-r),
			    r == -EBUSY ? " (another steering map holds the socket: is another baton steering it?)" : "");
			goto fail;
		}
		if (!g->attached && (r = attach_ebpf(g, copy))) {
			LOG(g, ERROR, "cannot attach the steering program to fd %d: %s", fd, strerror(-r));
			bpf_map_delete_elem(bpf_map__fd(g->set->skel->maps.socks), &key);
			goto fail;
		}
	} else {
		if (!g->nmembers)
			group_address(g, &addr, alen, type);
		g->order[g->norder++] = (int8_t)slot;
	}
	steer_slot_used(g, slot);
	g->m[slot] = (struct member){ .fd = copy, .weight = weight, .cookie = cookie };
	g->nmembers++;
	/* eBPF: a member without weight changes no pick table (unless the
	 * healthy members share the traffic), so a reload that adds hundreds
	 * of them publishes nothing until it switches */
	r = g->mode == BATON_MODE_EBPF && !weight && !steer_fallback_spread(g) ? 0 : publish(g);
	if (r) {
		baton_group_remove(g, slot);
		return r;
	}
	LOG(g, DEBUG, "fd %d joined as slot %d with weight %u", fd, slot, weight);
	return slot;
fail:
	close(copy);
	return r;
early:
	if (made)
		close(fd);
	return r;
}

int baton_group_add(struct baton_group *g, int fd, uint32_t weight)
{
	if (!g || fd < 0)
		return -EINVAL;
	return group_add(g, fd, weight, false);
}

int baton_group_add_made(struct baton_group *g, int fd, uint32_t weight)
{
	int low = fd;

	if (fd >= 0 && fd < 3) {
		/* a member's fd is never 0, 1 or 2 (a supervisor started with
		 * stdin closed): the group keeps a copy above them */
		int err;

		fd = fcntl(low, F_DUPFD_CLOEXEC, 3);
		err = errno;
		close(low);
		if (fd < 0)
			return -err;
	}
	if (!g || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	return group_add(g, fd, weight, true);
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
	steer_forget_pinned(g);
	for (s = 0; s < BATON_MAX_SLOTS; s++)
		g->m[s].weight = s < (int)n ? weights[s] : 0;
	return publish(g);
}

int baton_group_activate(struct baton_group *g, int slot)
{
	int s, r;

	if ((r = steer_slot_check(g, slot)))
		return r;
	if (g->m[slot].fenced) {
		LOG(g, ERROR, "slot %d is fenced; it cannot take traffic", slot);
		return -ESHUTDOWN;
	}
	steer_forget_pinned(g);
	for (s = 0; s < g->nslots; s++)	/* the slots from nslots on have weight 0 already */
		g->m[s].weight = s == slot;
	return publish(g);
}

int baton_group_drain(struct baton_group *g, int slot)
{
	int r;

	if ((r = steer_slot_check(g, slot)))
		return r;
	g->m[slot].weight = 0;
	return publish(g);
}

int baton_group_weight(const struct baton_group *g, int slot, uint32_t *weight)
{
	int r = steer_slot_check(g, slot);

	if (r || !weight)
		return r ? r : -EINVAL;
	*weight = steer_eff_weight(g, slot);
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

static int fence_shut(struct baton_group *g, int slot);

void steer_fences_due(struct baton_steerset *set)
{
	set->fences_due = false;
	for (uint32_t l = 0; l < set->cap; l++) {
		struct baton_group *g = set->groups[l];

		for (int k = 0; g && k < g->nslots; k++)	/* the slots past nslots are empty */
			if (g->m[k].fence_due) {
				g->m[k].fence_due = false;
				fence_shut(g, k);	/* its failure is logged */
			}
	}
}

int baton_group_fence(struct baton_group *g, int slot)
{
	int r;

	if ((r = steer_slot_check(g, slot)))
		return r;
	if (g->m[slot].fenced)
		return 0;
	if (g->type == SOCK_STREAM) {
		struct baton_queue q;

		g->m[slot].backlog = baton_socket_queue(g->m[slot].fd, &q) == 0 && q.max ? (int)q.max : 4096;
	}
	g->m[slot].fenced = true;
	r = publish(g);	/* steer away first: nothing new lands on it */
	steer_epoch_bump(g, slot);	/* and its flows end: their next datagram is a new flow */
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
	if (g->set && g->set->staging) {
		/* inside a transaction the steering away takes effect at the
		 * commit: shut down then, so that the queue moves by the new
		 * policy (by the old one it would pick this very member) */
		g->m[slot].fence_due = true;
		g->set->fences_due = true;
		return 0;
	}
	return fence_shut(g, slot);
}

/* The fence's second half: no longer listening, so the kernel moves what
 * waits in its queue to the member the policy in force picks. */
static int fence_shut(struct baton_group *g, int slot)
{
	int r = 0;

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
	if (g->attached && steer_live_fd(g) < 0)
		g->attached = false;	/* the kernel's group may be gone with it */
	return r;
}

int baton_group_remove(struct baton_group *g, int slot)
{
	struct member *m;
	int r = 0, pr;

	if ((r = steer_slot_check(g, slot)))
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
		uint32_t key = steer_gslot(g, slot);

		bpf_map_delete_elem(bpf_map__fd(g->set->skel->maps.socks), &key);
		steer_epoch_bump(g, slot);
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
	if (steer_live_fd(g) < 0)
		g->attached = false;
	return r;
}

int baton_group_fd(const struct baton_group *g, int slot)
{
	int r = steer_slot_check(g, slot);

	return r ? r : g->m[slot].fd;
}

int baton_group_queue(const struct baton_group *g, int slot, struct baton_queue *q)
{
	int r;

	if ((r = steer_slot_check(g, slot)))
		return r;
	return baton_socket_queue(g->m[slot].fd, q);
}

int baton_group_reload(struct baton_group *g)
{
	if (!g)
		return -EINVAL;
	if (g->mode == BATON_MODE_CBPF)
		return publish(g);
	return steer_set_reload(g->set);
}

int baton_group_detach(struct baton_group *g)
{
	int fd, zero = 0;

	if (!g)
		return -EINVAL;
	fd = steer_live_fd(g);
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

	if ((r = steer_slot_check(g, slot)))
		return r;
	m = &g->m[slot];
	if (!m->fenced)
		return 0;
	m->fence_due = false;	/* fenced and taken back in one transaction: never shut down */
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
		if (steer_sockopt_int(m->fd, SOL_SOCKET, SO_ACCEPTCONN, &v) == 0 && !v &&
		    listen(m->fd, m->backlog ? m->backlog : 4096)) {
			r = -errno;
			LOG(g, ERROR, "cannot listen on slot %d again: %s", slot, strerror(-r));
			return r;
		}
		if (g->mode == BATON_MODE_CBPF)
			g->order[g->norder++] = (int8_t)slot;	/* listen appends to the kernel's array */
	}
	if (g->mode == BATON_MODE_EBPF && !m->foreign) {	/* a foreign one is still in it */
		uint64_t fd = (uint64_t)m->fd;
		uint32_t key = steer_gslot(g, slot);

		/* shutdown took the socket out of the sockarray */
		if (bpf_map_update_elem(bpf_map__fd(g->set->skel->maps.socks), &key, &fd, BPF_ANY)) {
			r = -errno;
			LOG(g, ERROR, "cannot put slot %d back into the sockarray: %s", slot, strerror(-r));
			return r;
		}
		if (!g->attached && (r = attach_ebpf(g, m->fd)))
			return r;
	}
	m->fenced = false;
	steer_epoch_bump(g, slot);
	return publish(g);
}

int baton_group_set_down(struct baton_group *g, int slot, bool down)
{
	int r;

	if ((r = steer_slot_check(g, slot)))
		return r;
	if (g->m[slot].down == down)
		return 0;
	g->m[slot].down = down;
	return publish(g);
}

/* Only a policy that could pick it changes: one with weight, or the
 * spread over healthy members when every weighted one is down. A reserve
 * made without weight is no commit of the set (a spare per listener). */
int baton_group_set_reserve(struct baton_group *g, int slot, bool reserve)
{
	int r;

	if ((r = steer_slot_check(g, slot)))
		return r;
	if (g->m[slot].reserve == reserve)
		return 0;
	g->m[slot].reserve = reserve;
	return g->m[slot].weight || steer_fallback_spread(g) ? publish(g) : 0;
}

bool baton_group_fenced(const struct baton_group *g, int slot)
{
	return steer_slot_ok(g, slot) && g->m[slot].fenced;
}

int baton_group_flags(const struct baton_group *g, int slot)
{
	int r = steer_slot_check(g, slot);

	if (r)
		return r;
	return (int)((g->m[slot].fenced ? BATON_SLOT_FENCED : 0) | (g->m[slot].down ? BATON_SLOT_DOWN : 0) |
		     (g->m[slot].foreign ? BATON_SLOT_FOREIGN : 0) | (g->m[slot].reserve ? BATON_SLOT_RESERVE : 0));
}

int baton_group_set_foreign(struct baton_group *g, int slot, bool foreign)
{
	int r = steer_slot_check(g, slot);

	if (r)
		return r;
	g->m[slot].foreign = foreign;
	return 0;
}
