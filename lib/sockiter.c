/* SPDX-License-Identifier: BSD-2-Clause */
/* The privileged collectors of baton ls: runs the iter/tcp and iter/udp
 * programs of bpf/sockiter.bpf.c and merges their records into the sockets
 * sock_diag found (by cookie); then, for groups whose program is baton's
 * steering program, reads each member's slot and weight from its maps. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "sockiter.h"
#include "sockiter.skel.h"
#include "steer.h"

_Static_assert(SI_REUSEADDR == BATON_OPT_REUSEADDR && SI_REUSEPORT == BATON_OPT_REUSEPORT &&
		       SI_V6ONLY == BATON_OPT_V6ONLY && SI_KEEPALIVE == BATON_OPT_KEEPALIVE &&
		       SI_NODELAY == BATON_OPT_NODELAY && SI_KEEPIDLE == BATON_OPT_KEEPIDLE &&
		       SI_KEEPINTVL == BATON_OPT_KEEPINTVL && SI_KEEPCNT == BATON_OPT_KEEPCNT &&
		       SI_DEFER_ACCEPT == BATON_OPT_DEFER_ACCEPT && SI_FASTOPEN == BATON_OPT_FASTOPEN &&
		       SI_USER_TIMEOUT == BATON_OPT_USER_TIMEOUT && SI_RCVBUF == BATON_OPT_RCVBUF &&
		       SI_SNDBUF == BATON_OPT_SNDBUF && SI_USERLOCKS == BATON_OPT_USERLOCKS &&
		       SI_MARK == BATON_OPT_MARK && SI_BOUND_IF == BATON_OPT_BOUND_IF &&
		       SI_NOPTS == BATON_OPT_COUNT,
	       "bpf/sockiter.h and enum baton_sockopt disagree");

#define LOG(lvl, ...) baton_logf(log, log_ctx, BATON_LOG_##lvl, __VA_ARGS__)

/* Reads stop here: 64 MiB is about 300,000 sockets. */
#define MAX_ITER_BYTES (64u << 20)

/* TCP_DEFER_ACCEPT is stored as a count of SYN-ACK retransmits; getsockopt
 * turns it back into seconds this way (net/ipv4/tcp.c, retrans_to_secs with
 * TCP_TIMEOUT_INIT 1 s and TCP_RTO_MAX 120 s). */
static int64_t retrans_to_secs(int64_t retrans)
{
	int64_t period = 0, timeout = 1;
	int i;

	for (i = 0; i < retrans && i < 255; i++) {
		period += timeout;
		timeout = timeout * 2 > 120 ? 120 : timeout * 2;
	}
	return period;
}

/* Runs one iterator program and returns everything it wrote. */
static int run_iter(int prog, char **buf, size_t *len)
{
	int link = bpf_link_create(prog, 0, BPF_TRACE_ITER, NULL);
	size_t cap = 64 * 1024;
	int fd = -1, r = 0;

	*buf = NULL;
	*len = 0;
	if (link < 0)
		return -errno;
	fd = bpf_iter_create(link);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	*buf = malloc(cap);
	if (!*buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (*len == cap) {
			char *nb;

			if (cap >= MAX_ITER_BYTES) {
				r = -EFBIG;
				goto out;
			}
			nb = realloc(*buf, cap * 2);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			*buf = nb;
			cap *= 2;
		}
		n = read(fd, *buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
out:
	if (fd >= 0)
		close(fd);
	close(link);
	if (r) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return r;
}

struct groupmap {
	uint64_t *ptr;
	size_t n, cap;
};

/* Numbers groups in the order first met; socks.c renumbers after sorting. */
static uint32_t group_number(struct groupmap *gm, uint64_t ptr)
{
	size_t i;

	for (i = 0; i < gm->n; i++)
		if (gm->ptr[i] == ptr)
			return (uint32_t)i + 1;
	if (gm->n == gm->cap) {
		size_t cap = gm->cap ? gm->cap * 2 : 64;
		uint64_t *np = realloc(gm->ptr, cap * sizeof(*np));

		if (!np)
			return 0;
		gm->ptr = np;
		gm->cap = cap;
	}
	gm->ptr[gm->n++] = ptr;
	return (uint32_t)gm->n;
}

static void merge(struct baton_sockvec *sv, const struct baton_sockiter_rec *rec, struct groupmap *gm)
{
	struct baton_sock *s = baton_sockvec_by_cookie(sv, rec->cookie);
	int i;

	if (!s)
		return;	/* came or went between the two looks, or not listening */
	for (i = 0; i < SI_NOPTS; i++) {
		if (!(rec->known & 1u << i))
			continue;
		s->opt[i] = i == SI_DEFER_ACCEPT ? retrans_to_secs(rec->opt[i]) : rec->opt[i];
		s->opt_known |= 1u << i;
	}
	if (rec->group) {
		s->group = group_number(gm, rec->group);
		if (!s->group)
			return;	/* out of memory: leave the group unknown */
		s->group_size = rec->group_size;
	}
	s->known |= BATON_SOCK_GROUP | BATON_SOCK_PROG;
	s->prog_type = rec->prog_type == SI_PROG_EBPF ? BATON_PROG_EBPF
		     : rec->prog_type == SI_PROG_CBPF ? BATON_PROG_CBPF : BATON_PROG_NONE;
	s->prog_id = rec->prog_id;
}

/* Owners from iter/task_file: false if that program cannot run here (an
 * older kernel), and then /proc is read as before. */
static bool iter_owners(int prog, struct baton_sockvec *sv, baton_log_fn log, void *log_ctx)
{
	struct baton_sock **idx;
	size_t len, i;
	char *buf;
	int r;

	if (prog < 0)
		return false;
	r = run_iter(prog, &buf, &len);
	if (r) {
		LOG(DEBUG, "cannot run the owners iterator: %s; reading /proc", strerror(-r));
		return false;
	}
	idx = baton_inode_index(sv);
	if (!idx) {
		free(buf);
		return false;
	}
	for (i = 0; i + sizeof(struct baton_sockowner_rec) <= len; i += sizeof(struct baton_sockowner_rec)) {
		struct baton_sockowner_rec rec;
		char comm[BATON_COMM_MAX] = "";

		memcpy(&rec, buf + i, sizeof(rec));	/* the buffer has no alignment promise */
		/* as read from /proc/PID/comm: up to a newline */
		_Static_assert(sizeof(comm) >= sizeof(rec.comm), "comm sizes");
		memcpy(comm, rec.comm, sizeof(rec.comm));
		comm[sizeof(comm) - 1] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		baton_owner_add(idx, sv->n, rec.inode, rec.pid, rec.fd, comm);
	}
	free(idx);
	free(buf);
	return true;
}

/* The programs loaded through libbpf (CO-RE relocated against this
 * kernel): their fds, dup'ed so that they outlive the skeleton. */
static int iter_load(int fd[BATON_ITER_PROGS], baton_log_fn log, void *log_ctx)
{
	struct sockiter_bpf *skel = sockiter_bpf__open();
	int r, i;

	if (!skel)
		return -errno;
	r = sockiter_bpf__load(skel);
	if (r) {
		/* maybe only the owners program is refused: the rest still helps */
		sockiter_bpf__destroy(skel);
		skel = sockiter_bpf__open();
		if (!skel)
			return -errno;
		bpf_program__set_autoload(skel->progs.socket_owners, false);
		r = sockiter_bpf__load(skel);
	}
	if (r) {
		LOG(DEBUG, "cannot load the socket iterator: %s", strerror(-r));
		sockiter_bpf__destroy(skel);
		return r;
	}
	fd[0] = fcntl(bpf_program__fd(skel->progs.tcp_listeners), F_DUPFD_CLOEXEC, 3);
	fd[1] = fcntl(bpf_program__fd(skel->progs.udp_sockets), F_DUPFD_CLOEXEC, 3);
	fd[2] = bpf_program__autoload(skel->progs.socket_owners)
		? fcntl(bpf_program__fd(skel->progs.socket_owners), F_DUPFD_CLOEXEC, 3) : -1;
	sockiter_bpf__destroy(skel);
	for (i = 0; i < 2; i++)
		if (fd[i] < 0)
			r = -errno;
	return r;
}

/* Names this build's programs in the pin cache: a hash (FNV-1a) of the
 * object they are loaded from, so that another version never runs them. */
static void iter_key(char key[17])
{
	size_t n, i;
	const unsigned char *elf = sockiter_bpf__elf_bytes(&n);
	uint64_t h = 0xcbf29ce484222325ull;

	for (i = 0; i < n; i++)
		h = (h ^ elf[i]) * 0x100000001b3ull;
	snprintf(key, 17, "%016llx", (unsigned long long)h);
}

int baton_iter_collect(struct baton_sockvec *sv, bool *owners, baton_log_fn log, void *log_ctx)
{
	struct groupmap gm = { 0 };
	int fd[BATON_ITER_PROGS] = { -1, -1, -1 };
	char key[17];
	int r, p;

	*owners = false;
	iter_key(key);
	if (baton_iterpin_open(key, fd)) {
		r = iter_load(fd, log, log_ctx);
		if (r)
			goto out;
		baton_iterpin_save(key, fd);
	}
	for (p = 0; p < 2; p++) {
		size_t len, i;
		char *buf;

		r = run_iter(fd[p], &buf, &len);
		if (r) {
			LOG(DEBUG, "cannot run the %s iterator: %s", p ? "UDP" : "TCP", strerror(-r));
			goto out;
		}
		for (i = 0; i + sizeof(struct baton_sockiter_rec) <= len; i += sizeof(struct baton_sockiter_rec)) {
			struct baton_sockiter_rec rec;

			memcpy(&rec, buf + i, sizeof(rec));	/* the buffer has no alignment promise */
			merge(sv, &rec, &gm);
		}
		free(buf);
	}
	*owners = iter_owners(fd[2], sv, log, log_ctx);
out:
	free(gm.ptr);
	for (p = 0; p < BATON_ITER_PROGS; p++)
		if (fd[p] >= 0)
			close(fd[p]);
	return r;
}

/* ---- groups steered by baton ------------------------------------------ */

/* Both layouts: policy banks (`policy` + `live`), and the seqcount latch
 * (`cfg` + `ctl`) of a group an older baton still runs. */
struct steer_maps {
	int socks, cfg, ctl, origin;	/* cfg: `policy` or `cfg`; ctl: `live` or `ctl` */
	bool banked;
	uint32_t socks_max, cfg_max, nlisteners;
};

static int map_by_name(int fd, struct steer_maps *m, int *taken)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*taken = 1;
	if (!strcmp(info.name, "socks") && info.type == BPF_MAP_TYPE_REUSEPORT_SOCKARRAY &&
	    info.value_size == sizeof(uint64_t))
		m->socks = fd, m->socks_max = info.max_entries;
	else if ((!strcmp(info.name, "policy") || (!strcmp(info.name, "cfg") && info.max_entries == 2)) &&
		 info.type == BPF_MAP_TYPE_ARRAY && info.value_size == sizeof(struct baton_steer_cfg))
		m->cfg = fd, m->cfg_max = info.max_entries, m->banked |= info.name[0] == 'p';
	else if (!strcmp(info.name, "origin") && info.type == BPF_MAP_TYPE_ARRAY &&
		 info.value_size == sizeof(struct baton_steer_origin))
		m->origin = fd;
	else if ((!strcmp(info.name, "live") || !strcmp(info.name, "ctl")) && info.type == BPF_MAP_TYPE_ARRAY &&
		 info.value_size == sizeof(struct baton_steer_live))
		m->ctl = fd;
	else
		*taken = 0;
	return 0;
}

/* Finds baton's maps behind program ID; 0 if it is baton's steering program. */
static int steer_maps(uint32_t id, struct steer_maps *m)
{
	uint32_t ids[32], len, i;
	struct bpf_prog_info info;
	int fd, r = 0;

	m->socks = m->cfg = m->ctl = m->origin = -1;
	m->socks_max = m->cfg_max = m->nlisteners = 0;
	m->banked = false;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = 32;
	info.map_ids = (uint64_t)(uintptr_t)ids;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		r = -errno;
		goto out;
	}
	if (strcmp(info.name, "steer") || info.type != BPF_PROG_TYPE_SK_REUSEPORT) {
		r = -ENOENT;
		goto out;
	}
	for (i = 0; i < info.nr_map_ids && i < 32; i++) {
		int mfd = bpf_map_get_fd_by_id(ids[i]), taken = 0;

		if (mfd < 0)
			continue;
		if (map_by_name(mfd, m, &taken) || !taken)
			close(mfd);
	}
	/* a set of N listeners has 64 slots and K(N) banks of N policies
	 * each (bpf/steer.h); an older baton's group, one listener and a
	 * latch of two copies */
	m->nlisteners = m->socks_max / BATON_STEER_SLOTS;
	if (m->socks < 0 || m->cfg < 0 || m->ctl < 0 || !m->nlisteners ||
	    (m->banked ? (uint64_t)baton_steer_banks(m->nlisteners) * m->nlisteners != m->cfg_max : m->nlisteners != 1))
		r = -ENOENT;
out:
	close(fd);
	return r;
}

/* Listener LID's table in the live bank (lib/steer_banks.c; an older
 * baton's group: the copy its latch points readers at) into CFG, and each
 * slot's entries of it into COUNT; CFG->n 0 if unreadable. */
static void table_of(const struct steer_maps *m, const struct baton_steer_live *live, uint32_t lid,
		     struct baton_steer_cfg *cfg, uint32_t count[BATON_STEER_SLOTS])
{
	uint32_t key = m->banked ? live->bank * m->nlisteners + lid : live->bank & 1, i;

	memset(count, 0, BATON_STEER_SLOTS * sizeof(count[0]));
	if (lid >= m->nlisteners || bpf_map_lookup_elem(m->cfg, &key, cfg) || cfg->n > BATON_STEER_TABLE)
		cfg->n = 0;
	for (i = 0; i < cfg->n; i++)
		if (cfg->slot[i] < BATON_STEER_SLOTS)
			count[cfg->slot[i]]++;
}

/* The cookie each slot's socket had when it joined, from the origin map
 * (bpf/steer.h): one batched read of every listener's slots instead of one
 * sockarray lookup per slot (65,536 of them for 1,024 listeners). NULL if
 * the kernel cannot batch: the caller then asks the sockarray slot by slot. */
static uint64_t *origin_cookies(const struct steer_maps *m, uint32_t n)
{
	struct baton_steer_origin *v = m->origin >= 0 ? calloc(n, sizeof(*v)) : NULL;
	uint32_t *keys = v ? calloc(n, sizeof(*keys)) : NULL, in = 0, out = 0, got = 0, cnt;
	uint64_t *cookie = keys ? calloc(n, sizeof(*cookie)) : NULL;
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	int r = 0;

	while (cookie && got < n && !r) {
		cnt = n - got;
		r = bpf_map_lookup_batch(m->origin, got ? &in : NULL, &out, keys + got, v + got, &cnt, &bo) ? -errno : 0;
		if (r && r != -ENOENT)
			break;
		got += cnt;
		in = out;
		if (r == -ENOENT)
			r = 0, n = got;	/* the end of the map */
	}
	if (cookie && !r)
		for (uint32_t i = 0; i < got; i++)
			if (keys[i] < n)
				cookie[keys[i]] = v[i].cookie;
	if (r) {
		free(cookie);
		cookie = NULL;
	}
	free(keys);
	free(v);
	return cookie;
}

/* One program serves every listener of its set: listener L's slot S sits at
 * L * BATON_STEER_SLOTS + S of the sockarray (bpf/steer.h). The origin map
 * says which slot a socket of the dump joined, in one batched read; one
 * sockarray lookup per such socket confirms it is still there; one table
 * per listener that has a member in this dump. */
static void steer_fill(struct baton_sockvec *sv, uint32_t prog_id, const struct steer_maps *m)
{
	struct baton_steer_cfg *cfg = malloc(sizeof(*cfg));
	struct baton_steer_live live;
	uint32_t zero = 0, key, count[BATON_STEER_SLOTS], lid = UINT32_MAX, n;
	uint64_t *joined;
	size_t k;

	if (!cfg)
		return;
	if (bpf_map_lookup_elem(m->ctl, &zero, &live))
		goto out;
	for (k = 0; k < sv->n; k++) {
		struct baton_sock *s = &sv->v[k];

		if (s->prog_type != BATON_PROG_EBPF || s->prog_id != prog_id)
			continue;
		s->known |= BATON_SOCK_STEER;
		s->table_n = 0;
		s->slot = -1;
	}
	n = m->socks_max < m->nlisteners * BATON_STEER_SLOTS ? m->socks_max : m->nlisteners * BATON_STEER_SLOTS;
	joined = origin_cookies(m, n);
	for (key = 0; key < n; key++) {
		uint64_t cookie;
		struct baton_sock *s;

		if (joined && (!joined[key] || !baton_sockvec_by_cookie(sv, joined[key])))
			continue;	/* no socket of this dump joined the slot */
		if (bpf_map_lookup_elem(m->socks, &key, &cookie))
			continue;	/* empty slot */
		s = baton_sockvec_by_cookie(sv, cookie);
		if (!s || s->prog_id != prog_id)
			continue;
		if (key / BATON_STEER_SLOTS != lid) {
			lid = key / BATON_STEER_SLOTS;
			table_of(m, &live, lid, cfg, count);
		}
		s->slot = (int32_t)(key % BATON_STEER_SLOTS);
		s->table_n = cfg->n;
		s->weight = count[s->slot];
	}
	free(joined);
out:
	free(cfg);
}

void baton_steer_collect(struct baton_sockvec *sv, baton_log_fn log, void *log_ctx)
{
	uint32_t done[64];
	size_t ndone = 0, k, j;

	for (k = 0; k < sv->n; k++) {
		uint32_t id = sv->v[k].prog_id;
		struct steer_maps m;
		int r;

		if (sv->v[k].prog_type != BATON_PROG_EBPF || !id)
			continue;
		for (j = 0; j < ndone && done[j] != id; j++)
			;
		if (j < ndone)
			continue;
		if (ndone == 64)
			break;	/* more steered groups than anyone runs; the rest show no slots */
		done[ndone++] = id;
		r = steer_maps(id, &m);
		if (!r)
			steer_fill(sv, id, &m);
		else if (r != -ENOENT)
			LOG(DEBUG, "program %u: %s", id, strerror(-r));
		if (m.socks >= 0)
			close(m.socks);
		if (m.cfg >= 0)
			close(m.cfg);
		if (m.ctl >= 0)
			close(m.ctl);
		if (m.origin >= 0)
			close(m.origin);
	}
}
