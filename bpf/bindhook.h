/* SPDX-License-Identifier: BSD-2-Clause */
/* Layout shared by bpf/bindhook.bpf.c and lib/cgroup.c: the addresses the
 * bind hook makes SO_REUSEPORT and the events it reports to user space.
 * Kept free of libc and vmlinux types so both sides compile it as is. */
#ifndef BATON_BPF_BINDHOOK_H
#define BATON_BPF_BINDHOOK_H

#include <linux/types.h>

/* A --listen address: family, port in host order, address in network order
 * (IPv4 in the first 4 bytes, the rest zero). */
struct baton_bind_key {
	__u16 family;
	__u16 port;
	__u8 addr[16];
};

enum baton_bind_kind {
	BATON_BIND_EVENT = 1,     /* a TCP bind() to a non-zero port in the subtree */
	BATON_LISTEN_EVENT = 2,   /* a socket of the subtree started listening on a --listen address */
};

struct baton_bind_event {
	__u32 kind;
	__u32 pid;               /* thread group id of the caller */
	__u32 uid;               /* its uid (a socket takes its creator's fsuid, mostly the same) */
	__s32 listener;          /* index of the --listen address, -1: none names it */
	__u64 cookie;            /* SO_COOKIE of the socket (listen events) */
	__u64 cgroup;            /* cgroup id of the caller (the generation's cgroup) */
	struct baton_bind_key addr;
};

#endif
