/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket iterators for baton ls: for each TCP listener (iter/tcp) and UDP
 * socket (iter/udp) of the reader's network namespace, one fixed-size record
 * with what ss cannot show: SO_REUSEADDR, SO_REUSEPORT, the reuseport group
 * (by its address: group ids start at 0), its size and attached program, and
 * options. A field that cannot be read stays unmarked in `known`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "sockiter.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* uapi values; vmlinux.h has types, not macros */
#define SOL_TCP 6
#define TCP_NODELAY 1
#define TCP_KEEPIDLE 4
#define TCP_KEEPINTVL 5
#define TCP_KEEPCNT 6
#define TCP_USER_TIMEOUT 18
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define TCP_LISTEN_ 10

/* The iterators' contexts, as the kernel lays them out (bpf_iter_meta,
 * bpf_iter__tcp/udp/task_file: an 8-byte slot per member, fixed since they
 * came, 5.8/5.9). Declared here, after vmlinux.h's preserve_access_index
 * region, so they need no CO-RE relocation: each relocated type costs
 * libbpf a walk over every type of the kernel's BTF, and these four were a
 * third of what baton ls spent loading this object. */
struct si_meta {
	struct seq_file *seq;
};

struct si_tcp_ctx {
	struct si_meta *meta;
	struct sock_common *sk_common;
};

struct si_udp_ctx {
	struct si_meta *meta;
	struct udp_sock *udp_sk;
};

struct si_task_file_ctx {
	struct si_meta *meta;
	struct task_struct *task;
	__u32 fd __attribute__((aligned(8)));
	struct file *file __attribute__((aligned(8)));
};

static __always_inline void set(struct baton_sockiter_rec *r, int i, __s64 v)
{
	if (i >= 0 && i < SI_NOPTS) {
		r->opt[i] = v;
		r->known |= 1u << i;
	}
}

/* Fields every socket has, read with CO-RE from struct sock. */
static __always_inline void common(struct baton_sockiter_rec *r, struct sock *sk)
{
	struct sock_reuseport *reuse;
	struct bpf_prog *prog;

	r->cookie = bpf_get_socket_cookie(sk);
	r->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	set(r, SI_V6ONLY, BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_ipv6only));
	set(r, SI_USERLOCKS, BPF_CORE_READ(sk, sk_userlocks));
	set(r, SI_BOUND_IF, BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if));

	reuse = BPF_CORE_READ(sk, sk_reuseport_cb);
	if (!reuse)
		return;
	r->group = (__u64)reuse;
	r->group_size = BPF_CORE_READ(reuse, num_socks);
	prog = BPF_CORE_READ(reuse, prog);
	if (!prog)
		return;
	/* a classic program is converted in the kernel and gets no id */
	r->prog_id = BPF_CORE_READ(prog, aux, id);
	r->prog_type = BPF_CORE_READ(prog, type) == BPF_PROG_TYPE_SK_REUSEPORT ? SI_PROG_EBPF : SI_PROG_CBPF;
}

/* Options of a socket struct without bpf_getsockopt (iter/udp has none). */
static __always_inline void direct(struct baton_sockiter_rec *r, struct sock *sk)
{
	set(r, SI_REUSEADDR, BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_reuse));
	set(r, SI_REUSEPORT, BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_reuseport));
	set(r, SI_KEEPALIVE, (BPF_CORE_READ(sk, __sk_common.skc_flags) >> SOCK_KEEPOPEN) & 1);
	set(r, SI_RCVBUF, BPF_CORE_READ(sk, sk_rcvbuf));
	set(r, SI_SNDBUF, BPF_CORE_READ(sk, sk_sndbuf));
	set(r, SI_MARK, BPF_CORE_READ(sk, sk_mark));
}

static __always_inline void getopt(struct baton_sockiter_rec *r, void *sk, int level, int name, int i)
{
	int v = 0;

	if (bpf_getsockopt(sk, level, name, &v, sizeof(v)) == 0)
		set(r, i, v);
}

SEC("iter/tcp")
int tcp_listeners(struct si_tcp_ctx *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct baton_sockiter_rec r = {};
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct sock *sk;

	/* read as struct sock: one relocated type fewer than sock_common */
	if (!skc || BPF_CORE_READ((struct sock *)skc, __sk_common.skc_state) != TCP_LISTEN_)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	r.proto = IPPROTO_TCP_;
	common(&r, sk);
	/* SOL_SOCKET options: getsockopt(2) returns these fields as they are
	 * (sk_getsockopt), so they are read directly: a helper call per option
	 * per socket was a tenth of baton ls at 10,000 listeners */
	direct(&r, sk);
	/* bpf_getsockopt answers as getsockopt(2) would (keepalive times with
	 * the sysctl defaults applied) */
	getopt(&r, tp, SOL_TCP, TCP_NODELAY, SI_NODELAY);
	getopt(&r, tp, SOL_TCP, TCP_KEEPIDLE, SI_KEEPIDLE);
	getopt(&r, tp, SOL_TCP, TCP_KEEPINTVL, SI_KEEPINTVL);
	getopt(&r, tp, SOL_TCP, TCP_KEEPCNT, SI_KEEPCNT);
	getopt(&r, tp, SOL_TCP, TCP_USER_TIMEOUT, SI_USER_TIMEOUT);
	/* not offered by bpf_getsockopt: read where the kernel keeps them */
	set(&r, SI_DEFER_ACCEPT, BPF_CORE_READ(tp, inet_conn.icsk_accept_queue.rskq_defer_accept));
	set(&r, SI_FASTOPEN, BPF_CORE_READ(tp, inet_conn.icsk_accept_queue.fastopenq.max_qlen));
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

SEC("iter/udp")
int udp_sockets(struct si_udp_ctx *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct baton_sockiter_rec r = {};
	struct udp_sock *up = ctx->udp_sk;
	struct sock *sk;

	if (!up)
		return 0;
	sk = (struct sock *)up;
	r.proto = IPPROTO_UDP_;
	common(&r, sk);
	direct(&r, sk);
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

#define S_IFMT_ 00170000
#define S_IFSOCK_ 0140000

/* Every socket descriptor of every process, as /proc/PID/fd lists them: the
 * iterator visits each thread-group leader (and threads with their own fd
 * table, which /proc does not list under a PID: skipped here too), tasks of
 * the reader's pid namespace only, in PID then fd order. */
SEC("iter/task_file")
int socket_owners(struct si_task_file_ctx *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task, *me;
	struct file *file = ctx->file;
	struct baton_sockowner_rec r = {};
	struct pid *pid;
	unsigned int level;
	umode_t mode;

	if (!task || !file)
		return 0;
	if (task->pid != task->tgid)
		return 0;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return 0;
	r.inode = BPF_CORE_READ(file, f_inode, i_ino);
	r.fd = (__s32)ctx->fd;
	/* the PID as the reader's namespace numbers it (what its /proc shows) */
	me = bpf_get_current_task_btf();
	level = BPF_CORE_READ(me, thread_pid, level);
	pid = BPF_CORE_READ(task, thread_pid);
	if (!pid || level > 32 || BPF_CORE_READ(pid, level) < level)
		return 0;
	/* at the reader's level, the task must be in the reader's namespace
	 * (a sibling namespace numbers its tasks at the same level) */
	if (BPF_CORE_READ(pid, numbers[level].ns) != BPF_CORE_READ(me, thread_pid, numbers[level].ns))
		return 0;
	if (bpf_core_read(&r.pid, sizeof(r.pid), &pid->numbers[level].nr))
		return 0;
	bpf_probe_read_kernel_str(r.comm, sizeof(r.comm), task->comm);
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
