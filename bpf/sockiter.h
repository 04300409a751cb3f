/* SPDX-License-Identifier: BSD-2-Clause */
/* Record the socket iterator (bpf/sockiter.bpf.c) writes for each TCP
 * listener and UDP socket, read by lib/sockiter.c. Fixed size, so user space
 * reads the iterator's output as an array. No libc or vmlinux types. */
#ifndef BATON_BPF_SOCKITER_H
#define BATON_BPF_SOCKITER_H

/* Indexes into opt[] and bits of known; the same order as enum baton_sockopt
 * in include/baton.h (checked there with _Static_assert). */
#define SI_REUSEADDR 0
#define SI_REUSEPORT 1
#define SI_V6ONLY 2
#define SI_KEEPALIVE 3
#define SI_NODELAY 4
#define SI_KEEPIDLE 5
#define SI_KEEPINTVL 6
#define SI_KEEPCNT 7
#define SI_DEFER_ACCEPT 8	/* retransmits, as the kernel stores it */
#define SI_FASTOPEN 9
#define SI_USER_TIMEOUT 10
#define SI_RCVBUF 11
#define SI_SNDBUF 12
#define SI_USERLOCKS 13
#define SI_MARK 14
#define SI_BOUND_IF 15
#define SI_NOPTS 16

#define SI_PROG_NONE 0
#define SI_PROG_EBPF 1
#define SI_PROG_CBPF 2

struct baton_sockiter_rec {
	__u64 cookie;
	__u64 group;		/* the group's kernel address, only compared; 0: none */
	__u32 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u32 state;
	__u32 group_size;
	__u32 prog_type;	/* SI_PROG_* */
	__u32 prog_id;
	__u32 known;		/* 1 << SI_*: opt[SI_*] was read */
	__s64 opt[SI_NOPTS];
};

/* What iter/task_file (socket_owners) writes for each socket a process
 * holds open: the same facts as /proc/PID/fd/FD -> socket:[INODE] and
 * /proc/PID/comm, for every process of the reader's pid namespace in one
 * read instead of a readlink per descriptor. pid is as the reader sees it. */
#define SI_COMM_LEN 16

struct baton_sockowner_rec {
	__u64 inode;
	__s32 pid;
	__s32 fd;
	char comm[SI_COMM_LEN];
};

#endif
