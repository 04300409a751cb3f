/* SPDX-License-Identifier: BSD-2-Clause */
/* Helpers shared inside the library; nothing here is exported (see
 * lib/libbaton.map). */
#ifndef BATON_INTERNAL_H
#define BATON_INTERNAL_H

#include "baton.h"
#include "util.h"

BATON_HIDDEN void baton_logf(baton_log_fn fn, void *ctx, enum baton_log_level level,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define baton_offsetofend(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- extensible structs (see "extensible structs" in baton.h) ---------- */

/* Copies the caller's options SRC (NULL: none) into DST of DST_SZ bytes,
 * zeroed first. KNOWN is where this library's last field ends: bytes of SRC
 * from there to SRC's sz must be zero, else -EINVAL, logged through the
 * log callback at LOG_OFF / CTX_OFF of the struct (when SRC's sz covers it)
 * with TYPE and the offset of the first such byte. -EINVAL too for sz
 * smaller than the size_t it is kept in. Use BATON_OPTS_COPY. */
BATON_HIDDEN int baton_opts_copy(void *dst, size_t dst_sz, const void *src, size_t known, const char *type,
				 size_t log_off, size_t ctx_off);
/* DST: a struct TYPE *; LAST: the last field this library knows. Every
 * options struct has log and log_ctx. */
#define BATON_OPTS_COPY(dst, src, type, last)                                                       \
	({                                                                                          \
		_Static_assert(__builtin_types_compatible_p(__typeof__(*(dst)), struct type),        \
			       "BATON_OPTS_COPY: destination is not a struct " #type);                \
		baton_opts_copy((dst), sizeof(*(dst)), (src), baton_offsetofend(struct type, last), \
				"struct " #type, offsetof(struct type, log),                         \
				offsetof(struct type, log_ctx));                                     \
	})

/* Copies a result of KNOWN bytes (SRC) into the caller's DST of LEN bytes:
 * zeroes LEN bytes and copies min(LEN, KNOWN). Returns the bytes filled, or
 * -EINVAL for a NULL DST or LEN below MIN (the size in version 0.1). */
BATON_HIDDEN int baton_out_copy(void *dst, size_t len, const void *src, size_t known, size_t min);

/* Sizes of the output structs in version 0.1: what the calls without a size
 * fill, and the least a sized call accepts. */
#define BATON_MEMBER_HEALTH_SZ_0_1 baton_offsetofend(struct baton_member_health, since_ms)
#define BATON_SLOT_STATS_SZ_0_1 baton_offsetofend(struct baton_slot_stats, missed)
#define BATON_SOCK_SZ_0_1 baton_offsetofend(struct baton_sock, why)

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
 * the sockets of SV by cookie. Fails (nothing filled) without privilege.
 * *OWNERS is set when it also filled every socket's owners (iter/task_file:
 * one read instead of a readlink per descriptor of every process). */
/* lib/iterpin.c: baton ls's iterator programs (TCP, UDP, owners) kept
 * pinned between runs, under KEY (a hash of their object). open: 0 with
 * the programs' fds (the owners one may be -1), or -errno (load them). */
#define BATON_ITER_PROGS 3
BATON_HIDDEN int baton_iterpin_open(const char *key, int fd[BATON_ITER_PROGS]);
BATON_HIDDEN void baton_iterpin_save(const char *key, const int fd[BATON_ITER_PROGS]);
BATON_HIDDEN int baton_iter_collect(struct baton_sockvec *sv, bool *owners, baton_log_fn log, void *log_ctx);
/* lib/sockiter.c: slot and weight of members of groups steered by baton. */
BATON_HIDDEN void baton_steer_collect(struct baton_sockvec *sv, baton_log_fn log, void *log_ctx);
/* lib/owners.c: pid, fd and command of every holder, from /proc. Returns
 * true when every process could be read (the owner lists are complete). */
BATON_HIDDEN bool baton_owners_collect(struct baton_sockvec *sv, baton_log_fn log, void *log_ctx);
/* lib/owners.c: SV's sockets sorted by inode (free it), and adding one
 * holder to the socket with INODE in it (none: nothing happens). */
BATON_HIDDEN struct baton_sock **baton_inode_index(struct baton_sockvec *sv);
BATON_HIDDEN void baton_owner_add(struct baton_sock **idx, size_t n, uint64_t inode, int pid, int fd,
				  const char *comm);
/* lib/owners.c: options by getsockopt on a copy taken with pidfd_getfd. */
BATON_HIDDEN void baton_pidfd_collect(struct baton_sockvec *sv, const char *iter_why,
				      baton_log_fn log, void *log_ctx);


/* lib/notify.c: one sd_notify datagram of N bytes in BUF (which has room
 * for a NUL at BUF[N]) into MSG's flags and STATUS; 0, -EBADMSG or
 * -EMSGSIZE. Apart from the socket for fuzz/notify_fuzz.c. */
BATON_HIDDEN int baton_notify_parse(char *buf, size_t n, struct baton_notify_msg *msg);
/* bpf/sigdown.h's map of G's steering program (lib/steer.c), -1 without eBPF */
BATON_HIDDEN int baton_group_sigdown_fd(const struct baton_group *g);
/* Names TGID (0: none, or several) the owner of G's SLOT for the kernel
 * failover (lib/steer_set.c); 0 or -errno. */
BATON_HIDDEN int steer_set_owner(struct baton_group *g, int slot, uint32_t tgid);

#endif
