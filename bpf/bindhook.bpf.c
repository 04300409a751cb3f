/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The cgroup bind hook of `baton run --bind-mode cgroup`: binds to a --listen
 * address from a generation's cgroup get SO_REUSEPORT (Linux 5.11 lets
 * cgroup/bind4|6 call bpf_setsockopt, before the port conflict check), and
 * the moment such a socket listens, a sockops callback tells baton, which
 * then adopts it into the generation's steering slot. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bindhook.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* <sys/socket.h> does not build for the BPF target */
#define SOL_SOCKET 1
#define SO_REUSEADDR 2
#define SO_REUSEPORT 15
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct baton_bind_key);
	__type(value, __u32);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline void report(__u32 kind, __s32 listener, __u64 cookie, const struct baton_bind_key *k)
{
	struct baton_bind_event e = { .kind = kind, .listener = listener, .cookie = cookie, .addr = *k };

	e.pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	e.uid = (__u32)bpf_get_current_uid_gid();
	e.cgroup = bpf_get_current_cgroup_id();
	/* a full ring loses the event; user space polls sock_diag as a fallback */
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
}

static __always_inline int on_bind(struct bpf_sock_addr *ctx, struct baton_bind_key *k)
{
	__u32 *l;
	int one = 1;

	if (ctx->type != SOCK_STREAM || !k->port)
		return 1;
	l = bpf_map_lookup_elem(&targets, k);
	if (l) {
		/* applies to this very bind: the hook runs before get_port() */
		bpf_setsockopt(ctx, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		bpf_setsockopt(ctx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	report(BATON_BIND_EVENT, l ? (__s32)*l : -1, 0, k);
	return 1;
}

SEC("cgroup/bind4")
int baton_bind4(struct bpf_sock_addr *ctx)
{
	struct baton_bind_key k = { .family = AF_INET };

	k.port = bpf_ntohs((__u16)ctx->user_port);
	*(__u32 *)k.addr = ctx->user_ip4;
	return on_bind(ctx, &k);
}

SEC("cgroup/bind6")
int baton_bind6(struct bpf_sock_addr *ctx)
{
	struct baton_bind_key k = { .family = AF_INET6 };

	k.port = bpf_ntohs((__u16)ctx->user_port);
	((__u32 *)k.addr)[0] = ctx->user_ip6[0];
	((__u32 *)k.addr)[1] = ctx->user_ip6[1];
	((__u32 *)k.addr)[2] = ctx->user_ip6[2];
	((__u32 *)k.addr)[3] = ctx->user_ip6[3];
	return on_bind(ctx, &k);
}

/* BPF_SOCK_OPS_TCP_LISTEN_CB runs in listen() right after the socket joined
 * the listening hash (and so its reuseport group), with no flag to set: an
 * event for the one moment baton needs, instead of polling sock_diag. */
SEC("sockops")
int baton_listen(struct bpf_sock_ops *ops)
{
	struct baton_bind_key k = { 0 };
	__u32 *l;

	if (ops->op != BPF_SOCK_OPS_TCP_LISTEN_CB)
		return 1;
	/* every field read once, before any branch: the verifier refuses a
	 * context pointer that the compiler offsets on a shared path */
	__u32 family = ops->family, port = ops->local_port, ip4 = ops->local_ip4;
	__u32 a0 = ops->local_ip6[0], a1 = ops->local_ip6[1], a2 = ops->local_ip6[2], a3 = ops->local_ip6[3];

	k.family = (__u16)family;
	k.port = (__u16)port;
	if (family == AF_INET) {
		*(__u32 *)k.addr = ip4;
	} else if (family == AF_INET6) {
		((__u32 *)k.addr)[0] = a0;
		((__u32 *)k.addr)[1] = a1;
		((__u32 *)k.addr)[2] = a2;
		((__u32 *)k.addr)[3] = a3;
	} else {
		return 1;
	}
	l = bpf_map_lookup_elem(&targets, &k);
	if (l)
		report(BATON_LISTEN_EVENT, (__s32)*l, bpf_get_socket_cookie(ops), &k);
	return 1;
}
