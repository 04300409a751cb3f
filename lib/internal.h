/* SPDX-License-Identifier: BSD-2-Clause */
/* Helpers shared inside the library; nothing here is exported (see
 * lib/libbaton.map). */
#ifndef BATON_INTERNAL_H
#define BATON_INTERNAL_H

#include "baton.h"
#include "util.h"

BATON_HIDDEN void baton_logf(baton_log_fn fn, void *ctx, enum baton_log_level level,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- socket inspector: collectors filling one array (lib/socks.c) ------ */

struct baton_sockvec {
	struct baton_sock *v;
	size_t n, cap;
};

/* A zeroed new element, or NULL (ENOMEM). */
BATON_HIDDEN struct baton_sock *baton_sockvec_push(struct baton_sockvec *sv);
/* The element with COOKIE, or NULL; needs baton_sockvec_sort_cookie first. */
BATON_HIDDEN struct baton_sock *baton_sockvec_by_cookie(struct baton_sockvec *sv, uint64_t cookie);
BATON_HIDDEN void baton_sockvec_sort_cookie(struct baton_sockvec *sv);
/* Appends to WHY ("; "-separated), keeping what fits. */
BATON_HIDDEN void baton_sock_why(struct baton_sock *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* lib/diag.c: TCP listeners and UDP sockets from sock_diag (no privilege). */
BATON_HIDDEN int baton_diag_collect(struct baton_sockvec *sv, bool udp_all);
/* lib/sockiter.c: options, groups and programs from the BPF iterator; fills
 * the sockets of SV by cookie. Fails (nothing filled) without privilege. */
BATON_HIDDEN int baton_iter_collect(struct baton_sockvec *sv, baton_log_fn log, void *log_ctx);
/* lib/sockiter.c: slot and weight of members of groups steered by baton. */
BATON_HIDDEN void baton_steer_collect(struct baton_sockvec *sv, baton_log_fn log, void *log_ctx);
/* lib/owners.c: pid, fd and command of every holder, from /proc. Returns
 * true when every process could be read (the owner lists are complete). */
BATON_HIDDEN bool baton_owners_collect(struct baton_sockvec *sv, baton_log_fn log, void *log_ctx);
/* lib/owners.c: options by getsockopt on a copy taken with pidfd_getfd. */
BATON_HIDDEN void baton_pidfd_collect(struct baton_sockvec *sv, const char *iter_why,
				      baton_log_fn log, void *log_ctx);


#endif
