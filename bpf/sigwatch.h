/* SPDX-License-Identifier: BSD-2-Clause */
/* Layout shared by bpf/sigwatch.bpf.c and lib/watch.c: the record the
 * program puts in its ring buffer when a process is about to stop. */
#ifndef BATON_BPF_SIGWATCH_H
#define BATON_BPF_SIGWATCH_H

/* No libc or vmlinux types: both sides include it as is. */
struct baton_sigwatch_event {
	unsigned int tgid;	/* the process that takes the stop signal */
	unsigned int sig;	/* SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU */
	unsigned long long at_ns;	/* CLOCK_MONOTONIC */
};

#endif
