/* SPDX-License-Identifier: BSD-2-Clause */
/* The growable array of sockets that baton ls's collectors fill in turn
 * (sock_diag, the BPF iterator, /proc, the steering maps), its cookie index,
 * and the "why unknown" notes: kept apart so the collectors depend on it and
 * not on one another. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct baton_sock *baton_sockvec_push(struct baton_sockvec *sv)
{
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 256;
		struct baton_sock *nv = realloc(sv->v, cap * sizeof(*nv));

		if (!nv)
			return NULL;
		sv->v = nv;
		sv->cap = cap;
	}
	memset(&sv->v[sv->n], 0, sizeof(sv->v[0]));
	return &sv->v[sv->n++];
}

static int cmp_cookie(const void *a, const void *b)
{
	const struct baton_sock *x = a, *y = b;

	return x->cookie < y->cookie ? -1 : x->cookie > y->cookie;
}

void baton_sockvec_sort_cookie(struct baton_sockvec *sv)
{
	if (sv->n)
		qsort(sv->v, sv->n, sizeof(sv->v[0]), cmp_cookie);
}

struct baton_sock *baton_sockvec_by_cookie(struct baton_sockvec *sv, uint64_t cookie)
{
	struct baton_sock key = { .cookie = cookie };

	if (!sv->n || !cookie)
		return NULL;
	return bsearch(&key, sv->v, sv->n, sizeof(sv->v[0]), cmp_cookie);
}

void baton_sock_why(struct baton_sock *s, const char *fmt, ...)
{
	size_t len = strlen(s->why);
	va_list ap;

	if (len + 3 >= sizeof(s->why))
		return;
	if (len) {
		memcpy(s->why + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(s->why + len, sizeof(s->why) - len, fmt, ap);
	va_end(ap);
}
