/* SPDX-License-Identifier: BSD-2-Clause */
/* Who holds each socket baton ls found: every /proc/PID/fd/N that links to
 * socket:[INODE], with the command name. Where the BPF iterator cannot load,
 * the options are read with getsockopt on a copy taken with pidfd_getfd from
 * a process this caller may inspect; the rest stays unknown, with the reason. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"


#define LOG(lvl, ...) baton_logf(log, log_ctx, BATON_LOG_##lvl, __VA_ARGS__)

/* Bounds on the walk: far above any real machine, there only so that a
 * /proc that keeps changing cannot keep us reading. */
#define MAX_PIDS (1u << 22)
#define MAX_FDS_PER_PID (1u << 24)

static int cmp_inode(const void *a, const void *b)
{
	const struct baton_sock *x = *(struct baton_sock *const *)a, *y = *(struct baton_sock *const *)b;

	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* The first socket with INODE in the sorted index (several sockets never
 * share an inode, but an inode of 0 means "unknown" and matches nothing). */
static struct baton_sock *by_inode(struct baton_sock **idx, size_t n, uint64_t inode)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx[mid]->inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && idx[lo]->inode == inode ? idx[lo] : NULL;
}

struct baton_sock **baton_inode_index(struct baton_sockvec *sv)
{
	struct baton_sock **idx = malloc((sv->n ? sv->n : 1) * sizeof(*idx));
	size_t k;

	if (!idx)
		return NULL;
	for (k = 0; k < sv->n; k++)
		idx[k] = &sv->v[k];
	qsort(idx, sv->n, sizeof(*idx), cmp_inode);
	return idx;
}

static void read_comm(int pid, char comm[BATON_COMM_MAX])
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	comm[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, comm, BATON_COMM_MAX - 1);
	close(fd);
	if (n <= 0)
		return;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
}

struct scan_ctx {
	int pid;
	struct baton_sock **idx;
	size_t n;
	bool have_comm;
	char comm[BATON_COMM_MAX];
};

void baton_owner_add(struct baton_sock **idx, size_t n, uint64_t inode, int pid, int fd, const char *comm)
{
	struct baton_sock *s = by_inode(idx, n, inode);

	if (!s)
		return;
	if (s->nowners < BATON_SOCK_MAX_OWNERS) {
		struct baton_sock_owner *o = &s->owners[s->nowners];

		o->pid = pid;
		o->fd = fd;
		memcpy(o->comm, comm, sizeof(o->comm));
	}
	s->nowners++;
}

static int add_owner(void *ctx, int fd, unsigned long long inode)
{
	struct scan_ctx *c = ctx;

	if (!by_inode(c->idx, c->n, inode))
		return 0;
	if (!c->have_comm) {
		read_comm(c->pid, c->comm);
		c->have_comm = true;
	}
	baton_owner_add(c->idx, c->n, inode, c->pid, fd, c->comm);
	return 0;
}

/* Returns -errno if the fd table could not be read. */
static int scan_pid(int pid, struct baton_sock **idx, size_t n)
{
	struct scan_ctx c = { .pid = pid, .idx = idx, .n = n };
	int r = baton_proc_sockets(pid, MAX_FDS_PER_PID, add_owner, &c);

	return r < 0 ? r : 0;
}

bool baton_owners_collect(struct baton_sockvec *sv, baton_log_fn log, void *log_ctx)
{
	struct baton_sock **idx = NULL;
	unsigned denied = 0, pids = 0;
	struct dirent *e;
	DIR *proc = NULL;
	int pfd;

	if (!sv->n)
		return true;
	idx = baton_inode_index(sv);
	if (!idx)
		return false;
	pfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || !(proc = fdopendir(pfd))) {
		LOG(WARN, "cannot read /proc: %s; owners unknown", strerror(errno));
		if (pfd >= 0)
			close(pfd);
		free(idx);
		return false;
	}
	while ((e = readdir(proc)) && pids++ < MAX_PIDS) {
		int pid, r;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		pid = atoi(e->d_name);
		r = scan_pid(pid, idx, sv->n);
		if (r == -EACCES || r == -EPERM)
			denied++;
	}
	closedir(proc);
	free(idx);
	if (denied)
		LOG(INFO, "could not read the open files of %u processes (other users' need root)", denied);
	return denied == 0;
}

/* ---- options without the iterator: pidfd_getfd + getsockopt ----------- */

struct probe {
	int level, name, opt;
	bool tcp_only;
};

static const struct probe probes[] = {
	{ SOL_SOCKET, SO_REUSEADDR, BATON_OPT_REUSEADDR, false },
	{ SOL_SOCKET, SO_REUSEPORT, BATON_OPT_REUSEPORT, false },
	{ SOL_SOCKET, SO_KEEPALIVE, BATON_OPT_KEEPALIVE, false },
	{ SOL_SOCKET, SO_RCVBUF, BATON_OPT_RCVBUF, false },
	{ SOL_SOCKET, SO_SNDBUF, BATON_OPT_SNDBUF, false },
	{ SOL_SOCKET, SO_MARK, BATON_OPT_MARK, false },
	{ IPPROTO_TCP, TCP_NODELAY, BATON_OPT_NODELAY, true },
	{ IPPROTO_TCP, TCP_KEEPIDLE, BATON_OPT_KEEPIDLE, true },
	{ IPPROTO_TCP, TCP_KEEPINTVL, BATON_OPT_KEEPINTVL, true },
	{ IPPROTO_TCP, TCP_KEEPCNT, BATON_OPT_KEEPCNT, true },
	{ IPPROTO_TCP, TCP_DEFER_ACCEPT, BATON_OPT_DEFER_ACCEPT, true },
	{ IPPROTO_TCP, TCP_FASTOPEN, BATON_OPT_FASTOPEN, true },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, BATON_OPT_USER_TIMEOUT, true },
};

/* Copies the socket from one of its owners; -errno of the last try. */
static int copy_socket(const struct baton_sock *s, int *pidfd_cache, int *cached_pid, int *who)
{
	uint32_t i, n = s->nowners < BATON_SOCK_MAX_OWNERS ? s->nowners : BATON_SOCK_MAX_OWNERS;
	int r = -ESRCH;

	for (i = 0; i < n; i++) {
		const struct baton_sock_owner *o = &s->owners[i];
		int fd;

		*who = o->pid;
		if (*cached_pid != o->pid) {
			if (*pidfd_cache >= 0)
				close(*pidfd_cache);
			*pidfd_cache = baton_pidfd_open(o->pid);
			*cached_pid = *pidfd_cache >= 0 ? o->pid : -1;
			if (*pidfd_cache < 0) {
				r = *pidfd_cache;
				continue;
			}
		}
		fd = baton_pidfd_getfd(*pidfd_cache, o->fd);
		if (fd >= 0)
			return fd;
		r = fd;
	}
	return r;
}

void baton_pidfd_collect(struct baton_sockvec *sv, const char *iter_why, baton_log_fn log, void *log_ctx)
{
	int pidfd = -1, cached_pid = -1;
	unsigned failed = 0;
	size_t k, i;

	for (k = 0; k < sv->n; k++) {
		struct baton_sock *s = &sv->v[k];
		int fd, who = 0;

		baton_sock_why(s, "group and program: %s", iter_why);
		if (!s->nowners) {
			baton_sock_why(s, "options: no owner to copy the socket from");
			continue;
		}
		fd = copy_socket(s, &pidfd, &cached_pid, &who);
		if (fd < 0) {
			failed++;
			baton_sock_why(s, "options: pidfd_getfd from pid %d: %s", who, strerror(-fd));
			continue;
		}
		for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
			int v = 0;
			socklen_t len = sizeof(v);

			if (probes[i].tcp_only && s->proto != BATON_PROTO_TCP)
				continue;
			if (getsockopt(fd, probes[i].level, probes[i].name, &v, &len) == 0) {
				s->opt[probes[i].opt] = v;
				s->opt_known |= 1u << probes[i].opt;
			}
		}
		close(fd);
	}
	if (pidfd >= 0)
		close(pidfd);
	if (failed)
		LOG(INFO, "options of %u sockets unknown: their owners cannot be inspected "
			  "(pidfd_getfd needs ptrace access)", failed);
}
