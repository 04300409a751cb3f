/* SPDX-License-Identifier: BSD-2-Clause */
/* baton_socks_collect: runs the collectors of baton ls in order (sock_diag,
 * then the BPF iterator or the pidfd fallback, /proc owners, baton's steering
 * maps) over one array, and records why any field stays unknown. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LOG(lvl, ...) baton_logf(o.log, o.log_ctx, BATON_LOG_##lvl, __VA_ARGS__)

/* new fields go after sock_sz and may not hide in padding an older library skips */
_Static_assert(sizeof(struct baton_collect_opts) == baton_offsetofend(struct baton_collect_opts, sock_sz),
	       "baton_collect_opts ends in padding");

/* Protocol, port, family, address, then group and cookie: members of one
 * group sit together and the order is the same from run to run. */
static int cmp_show(const void *a, const void *b)
{
	const struct baton_sock *x = a, *y = b;
	int c;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->lport != y->lport)
		return x->lport < y->lport ? -1 : 1;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if ((c = memcmp(x->local, y->local, 16)))
		return c;
	if ((c = memcmp(x->remote, y->remote, 16)))
		return c;
	if (x->rport != y->rport)
		return x->rport < y->rport ? -1 : 1;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->cookie < y->cookie ? -1 : x->cookie > y->cookie;
}

/* Groups are numbered 1, 2, ... in the order they first appear. */
static int renumber_groups(struct baton_sockvec *sv)
{
	uint32_t max = 0, next = 0, *map;
	size_t k;

	for (k = 0; k < sv->n; k++)
		if (sv->v[k].group > max)
			max = sv->v[k].group;
	if (!max)
		return 0;
	map = calloc((size_t)max + 1, sizeof(*map));
	if (!map)
		return -ENOMEM;
	for (k = 0; k < sv->n; k++) {
		uint32_t g = sv->v[k].group;

		if (g && !map[g])
			map[g] = ++next;
		sv->v[k].group = map[g];
	}
	free(map);
	return 0;
}

/* The caller's struct baton_sock is SZ bytes, older or newer than ours:
 * give each element its size, fields we do not know zero. */
static int restride(struct baton_sockvec *sv, size_t sz)
{
	unsigned char *v;
	size_t k;

	if (!sv->n)
		return 0;
	if (sv->n > SIZE_MAX / sz)
		return -ENOMEM;
	v = malloc(sv->n * sz);
	if (!v)
		return -ENOMEM;
	for (k = 0; k < sv->n; k++)
		baton_out_copy(v + k * sz, sz, &sv->v[k], sizeof(sv->v[k]), BATON_SOCK_SZ_0_1);
	free(sv->v);
	sv->v = (struct baton_sock *)(void *)v;
	return 0;
}

int baton_socks_collect(const struct baton_collect_opts *opts, struct baton_sock **out, size_t *n)
{
	struct baton_collect_opts o;
	struct baton_sockvec sv = { 0 };
	char iter_why[96] = "";
	bool complete, iter_owners = false;
	size_t k;
	int r;

	if (!out || !n)
		return -EINVAL;
	*out = NULL;
	*n = 0;
	if ((r = BATON_OPTS_COPY(&o, opts, baton_collect_opts, sock_sz)))
		return r;
	if (!o.sock_sz)
		o.sock_sz = BATON_SOCK_SZ_0_1;
	if (o.sock_sz < BATON_SOCK_SZ_0_1 || o.sock_sz > (size_t)INT_MAX) {
		LOG(ERROR, "struct baton_collect_opts: sock_sz %zu is not the size of a struct baton_sock "
			   "(at least %zu; set it to sizeof(struct baton_sock))", o.sock_sz, BATON_SOCK_SZ_0_1);
		return -EINVAL;
	}
	r = baton_diag_collect(&sv, o.udp_all);
	if (r) {
		LOG(ERROR, "sock_diag: %s", strerror(-r));
		goto fail;
	}
	baton_sockvec_sort_cookie(&sv);
	if (o.diag_only)
		goto done;
	if (o.no_iter) {
		snprintf(iter_why, sizeof(iter_why), "the BPF iterator was not asked for");
	} else {
		r = baton_iter_collect(&sv, &iter_owners, o.log, o.log_ctx);
		if (r == -ENOMEM)
			goto fail;
		if (r) {
			snprintf(iter_why, sizeof(iter_why), "the BPF iterator cannot load (%s%s)", strerror(-r),
				 r == -EPERM ? ": needs CAP_BPF and CAP_PERFMON, or root" : "");
			LOG(INFO, "%s", iter_why);
		}
	}
	/* the iterator saw every process (it needs the privilege /proc would) */
	complete = iter_owners || baton_owners_collect(&sv, o.log, o.log_ctx);
	for (k = 0; k < sv.n; k++) {
		if (complete)
			sv.v[k].known |= BATON_SOCK_OWNERS;
		else if (!sv.v[k].nowners)
			baton_sock_why(&sv.v[k], "owners: the open files of other users' processes need root");
	}
	if (iter_why[0])
		baton_pidfd_collect(&sv, iter_why, o.log, o.log_ctx);
	else
		baton_steer_collect(&sv, o.log, o.log_ctx);
done:
	if (sv.n)
		qsort(sv.v, sv.n, sizeof(sv.v[0]), cmp_show);
	r = renumber_groups(&sv);
	if (r)
		goto fail;
	if (o.sock_sz != sizeof(struct baton_sock) && (r = restride(&sv, o.sock_sz)))
		goto fail;
	*out = sv.v;
	*n = sv.n;
	return 0;
fail:
	free(sv.v);
	return r;
}

void baton_socks_free(struct baton_sock *socks)
{
	free(socks);
}
