/* SPDX-License-Identifier: BSD-2-Clause */
/* Failover decided in the kernel: per global slot (bpf/steer.h) the member's
 * only owner, and per owner whether it took a stop signal. bpf/sigwatch.bpf.c
 * sets and clears an owner's flag as stop signals are delivered and SIGCONT
 * is sent (one lookup, whatever the number of listeners); the steering
 * program skips a slot whose owner is stopped and picks a healthy owned
 * member of the same listener (the standby) instead, before the supervisor
 * has even been scheduled. lib/watch.c names owners through lib/steer_set.c. */
#ifndef BATON_BPF_SIGDOWN_H
#define BATON_BPF_SIGDOWN_H

#define BATON_SIGDOWN_SLOTS 64	/* per listener; = BATON_STEER_SLOTS */

/* sigdown: tgid (__u32) -> down (__u32, 1: that process took a stop signal
 * and was not continued since). An owner is entered by user space before it
 * is named in `owners`; the stop watcher only updates entries in place.
 * owners: global slot -> tgid, 0: unknown or several owners (never skipped,
 * never picked as the standby). */

#ifdef __bpf__
/* The steering program's; user space hands its fd to the stop watcher
 * before that one loads (bpf_map__reuse_fd), so both see it. Sized per
 * listener, scaled by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BATON_SIGDOWN_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
} sigdown SEC(".maps");

#ifdef BATON_SIGDOWN_STEER
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_SIGDOWN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} owners SEC(".maps");

/* 1 if TGID is known and stopped. */
static __always_inline int sigdown_tgid(__u32 tgid)
{
	__u32 *d;

	if (!tgid)
		return 0;
	d = bpf_map_lookup_elem(&sigdown, &tgid);
	return d && *d;
}

/* Steering: is GSLOT's owner stopped? Global (not inlined) functions, here
 * and below: the verifier checks each once, not once per path of the
 * caller's pick loop (inlined, they tripled the steering program's load). */
__noinline int sigdown_slot(__u32 gslot)
{
	__u32 *t = bpf_map_lookup_elem(&owners, &gslot);

	return t && sigdown_tgid(*t);
}

/* Steering, once every candidate was stopped: the first slot of the
 * listener whose slots start at BASE, from START on, whose owner is known
 * and running (the standby), as a global slot; or -1 (nothing else is
 * owned: the caller keeps its stopped pick, whose queue the supervisor
 * moves once it runs). Only the listener's own slots: a member of another
 * listener cannot take this connection. */
__noinline int sigdown_standby(__u32 base, __u32 start)
{
	for (__u32 i = 0; i < BATON_SIGDOWN_SLOTS; i++) {
		__u32 slot = base + ((start + i) & (BATON_SIGDOWN_SLOTS - 1));
		__u32 *t = bpf_map_lookup_elem(&owners, &slot);

		if (t && *t && !sigdown_tgid(*t))
			return (int)slot;
	}
	return -1;
}
#endif

/* Stop watcher: marks (or clears) TGID, if it owns any member. */
static __always_inline void sigdown_mark(__u32 tgid, __u32 down)
{
	__u32 *d = bpf_map_lookup_elem(&sigdown, &tgid);

	if (d && *d != down)
		*d = down;
}
#endif

#endif
