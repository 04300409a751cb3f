/* SPDX-License-Identifier: BSD-2-Clause */
/* Failover decided in the kernel: per slot, the member's only owner and
 * whether it took a stop signal. bpf/sigwatch.bpf.c sets and clears the flag
 * as stop signals are delivered and SIGCONT is sent; the steering program
 * skips a stopped slot and picks a healthy owned member (the standby) instead,
 * before the supervisor has even been scheduled. lib/watch.c writes owners. */
#ifndef BATON_BPF_SIGDOWN_H
#define BATON_BPF_SIGDOWN_H

#define BATON_SIGDOWN_SLOTS 64	/* = BATON_STEER_SLOTS */

/* No libc or vmlinux types beyond __u32: every side includes it as is. */
struct baton_sigdown {
	__u32 tgid;	/* the member's one owner; 0: unknown or several (never skipped, never picked) */
	__u32 down;	/* 1: that process took a stop signal and was not continued since */
};

#ifdef __bpf__
/* One map: the steering program's; user space hands its fd to the stop
 * watcher before that one loads (bpf_map__reuse_fd), so both see it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_SIGDOWN_SLOTS);
	__type(key, __u32);
	__type(value, struct baton_sigdown);
} sigdown SEC(".maps");

/* Steering: is SLOT's owner stopped? Global (not inlined) functions, here
 * and below: the verifier checks each once, not once per path of the
 * caller's pick loop (inlined, they tripled the steering program's load). */
__noinline int sigdown_slot(__u32 slot)
{
	struct baton_sigdown *d = bpf_map_lookup_elem(&sigdown, &slot);

	return d && d->down;
}

/* Steering, once every candidate was stopped: the first slot from START on
 * whose owner is known and running (the standby), or -1 (nothing else is
 * owned: the caller keeps its stopped pick, whose queue the supervisor
 * moves once it runs). */
__noinline int sigdown_standby(__u32 start)
{
	for (__u32 i = 0; i < BATON_SIGDOWN_SLOTS; i++) {
		__u32 slot = (start + i) & (BATON_SIGDOWN_SLOTS - 1);
		struct baton_sigdown *d = bpf_map_lookup_elem(&sigdown, &slot);

		if (d && d->tgid && !d->down)
			return (int)slot;
	}
	return -1;
}

/* Stop watcher: marks (or clears) every slot that TGID owns. */
static __always_inline void sigdown_mark(__u32 tgid, __u32 down)
{
	for (__u32 i = 0; i < BATON_SIGDOWN_SLOTS; i++) {
		__u32 slot = i;
		struct baton_sigdown *d = bpf_map_lookup_elem(&sigdown, &slot);

		if (d && d->tgid == tgid && d->down != down)
			d->down = down;
	}
}
#endif

#endif
