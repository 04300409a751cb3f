/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Stop signals as they are delivered, for the health watch: a process that
 * takes SIGSTOP (or SIGTSTP, SIGTTIN, SIGTTOU with the default action) is
 * reported through a ring buffer at once, so that user space steers away
 * from its listeners without waiting for its next poll of /proc; and its
 * owner entry is marked stopped for the steering program (sigdown.h) before it
 * even stops, cleared again when SIGCONT is sent. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "sigwatch.h"
#include "sigdown.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* uapi values; vmlinux.h has types, not macros */
#define SIGCONT 18
#define SIGSTOP 19
#define SIGTSTP 20
#define SIGTTIN 21
#define SIGTTOU 22

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* signal_deliver fires in the task that dequeued the signal, before the
 * kernel acts on it: SIGSTOP always stops; the other three only with the
 * default action (sa_handler SIG_DFL, 0). A BTF tracepoint: attached
 * without tracefs, which a private mount namespace may not have. */
SEC("tp_btf/signal_deliver")
int BPF_PROG(stop_delivered, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	struct baton_sigwatch_event *e;

	if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
		return 0;
	if (sig != SIGSTOP && ka && ka->sa.sa_handler)
		return 0;
	/* first the kernel's own failover: the next connection already
	 * goes elsewhere, whenever user space gets to run */
	sigdown_mark((__u32)(bpf_get_current_pid_tgid() >> 32), 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	e->sig = (__u32)sig;
	e->at_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);	/* rare, and each one is urgent */
	return 0;
}

/* SIGCONT resumes a stopped process when it is sent (not when delivered:
 * with the default action it is never queued), so its slots are eligible
 * again from signal_generate on. A stop is marked at delivery (above), not
 * when sent: marked at send time, the standby was woken from the sender's
 * context while the target still ran, and bench/failover measured a slower
 * first answer from it on a loaded machine. */
SEC("tp_btf/signal_generate")
int BPF_PROG(cont_sent, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	if (sig == SIGCONT && task)
		sigdown_mark((__u32)task->tgid, 0);
	return 0;
}
