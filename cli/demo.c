/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton demo`: the problem and the answer, measured with nothing to set up.
 * Two tiny servers share a free loopback port; a client counts every
 * request's outcome. plain: one server frozen, the kernel keeps hashing onto
 * it. baton: the same, with baton watching and steering away. switch: traffic
 * moves from A to B under load and A closes; migration keeps its queue. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "util.h"

#define REQUESTS 100         /* parts plain and baton */
#define SPACING_MS 10        /* one request started every 10 ms */
#define TIMEOUT_MS 1000      /* each request's own deadline */
#define SWITCH_LANES 8       /* part switch: requests in flight at once */
#define SWITCH_MS 1500       /* part switch: how long load runs */
#define SWITCH_AT_MS 500     /* part switch: when traffic moves to B */
#define SWITCH_MAX 100000    /* part switch: bound on requests */
#define SLOW_US 2000         /* server A's time per request in part switch */
/* Parts plain and baton end after REQUESTS attempts; this only bounds them.
 * (A cap of REQUESTS * SPACING_MS cut off the last attempt whenever the loop
 * woke up late, and 99 were counted.) */
#define COUNTED_CAP_MS 20000

struct outcome {
	int worked, refused, reset, timeout, truncated;
};

static int failed(const struct outcome *o)
{
	return o->refused + o->reset + o->timeout + o->truncated;
}

static long long now_ms(void)
{
	return baton_mono_ms();
}

/* ---- the tiny server ---------------------------------------------------- */

static volatile sig_atomic_t server_stop;

static void on_term(int sig)
{
	(void)sig;
	server_stop = 1;
}

/* One request per connection: read a line, answer "pong <name>", close. On
 * SIGTERM it finishes the request in hand and exits, leaving its queue. */
static _Noreturn void serve(int lfd, char name, int slow_us)
{
	struct sigaction sa = { .sa_handler = on_term };	/* no SA_RESTART: accept returns */

	sigaction(SIGTERM, &sa, NULL);
	while (!server_stop) {
		struct timeval tv = { .tv_sec = 1 };
		char buf[64], reply[16];
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINVAL)	/* listener shut down (fenced) */
				break;
			continue;
		}
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (read(c, buf, sizeof(buf)) > 0) {
			int n = snprintf(reply, sizeof(reply), "pong %c\n", name);

			if (slow_us)
				usleep((useconds_t)slow_us);
			if (write(c, reply, (size_t)n) != n)
				(void)0;	/* the client counts what it got */
		}
		close(c);
	}
	_exit(0);
}

static pid_t spawn(int lfd, char name, int slow_us)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid;
	/* dies with the demo, and holds no copy of the other server's socket
	 * (or baton's maps): its listener closes when it exits */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (lfd > 3)
		close_range(3, (unsigned)lfd - 1, 0);
	close_range((unsigned)lfd + 1, ~0U, 0);
	serve(lfd, name, slow_us);
}

/* State letter of a process from /proc/PID/stat, or 0 if it is gone. */
static char proc_state(pid_t pid)
{
	struct baton_proc_stat st;

	return baton_proc_stat(pid, -1, &st) ? 0 : st.state;
}

/* SIGSTOP and wait until the kernel says it is stopped: kill() returns
 * before that, and a request accepted in between would hang inside B in
 * every part alike, which is not what the experiment is about. */
static void freeze(pid_t pid)
{
	int i;

	kill(pid, SIGSTOP);
	for (i = 0; i < 1000 && proc_state(pid) != 'T'; i++)
		usleep(1000);
}

static void reap(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGCONT);
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

/* ---- the counting client ------------------------------------------------ */

enum step { FREE, CONNECTING, WAITING };

struct attempt {
	enum step step;
	int fd;
	long long deadline;
};

struct load {
	uint16_t port;
	int lanes;            /* most attempts in flight */
	int max;              /* most attempts in all */
	int spacing_ms;       /* between starts */
	int duration_ms;      /* no new attempt after this */
	void (*tick)(void *ctx, long long elapsed_ms);
	void *ctx;
};

static void finish(struct attempt *a, struct outcome *o, int *field)
{
	(*field)++;
	(void)o;
	close(a->fd);
	a->step = FREE;
}

static int start(struct attempt *a, uint16_t port, long long now)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	a->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0)
		return -errno;
	a->deadline = now + TIMEOUT_MS;
	if (connect(a->fd, (struct sockaddr *)&sin, sizeof(sin)) && errno != EINPROGRESS) {
		int e = errno;

		close(a->fd);
		return -e;
	}
	a->step = CONNECTING;
	return 0;
}

/* Advances one attempt whose socket is ready. */
static void advance(struct attempt *a, short revents, struct outcome *o)
{
	char buf[32];
	ssize_t n;

	if (a->step == CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err == ECONNREFUSED)
			return finish(a, o, &o->refused);
		if (err)
			return finish(a, o, err == ECONNRESET ? &o->reset : &o->truncated);
		if (write(a->fd, "ping\n", 5) != 5)
			return finish(a, o, errno == ECONNRESET || errno == EPIPE ? &o->reset : &o->truncated);
		a->step = WAITING;
		return;
	}
	(void)revents;
	n = read(a->fd, buf, sizeof(buf));
	if (n > 0 && memcmp(buf, "pong", 4) == 0)
		return finish(a, o, &o->worked);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n < 0 && errno == ECONNRESET)
		return finish(a, o, &o->reset);
	finish(a, o, &o->truncated);
}

/* Runs the load to the end: every attempt ends worked or failed (refused,
 * reset, timed out, truncated); none is left uncounted. */
static int run_load(const struct load *l, struct outcome *o)
{
	struct attempt *a = calloc((size_t)l->lanes, sizeof(*a));
	struct pollfd *pfd = calloc((size_t)l->lanes, sizeof(*pfd));
	long long t0 = now_ms(), next = t0;
	int started = 0, inflight = 0, i, r = 0;

	memset(o, 0, sizeof(*o));
	if (!a || !pfd) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		long long now = now_ms();
		int np = 0, wait = 5;

		if (l->tick)
			l->tick(l->ctx, now - t0);
		while (started < l->max && inflight < l->lanes && now >= next && now - t0 < l->duration_ms) {
			for (i = 0; a[i].step != FREE; i++)
				;
			r = start(&a[i], l->port, now);
			if (r)
				goto out;
			started++;
			inflight++;
			next = l->spacing_ms ? next + l->spacing_ms : now;
		}
		if (!inflight && (started >= l->max || now - t0 >= l->duration_ms))
			break;
		for (i = 0; i < l->lanes; i++) {
			if (a[i].step == FREE)
				continue;
			if (now >= a[i].deadline) {
				finish(&a[i], o, &o->timeout);
				inflight--;
				continue;
			}
			pfd[np++] = (struct pollfd){ .fd = a[i].fd,
						     .events = a[i].step == CONNECTING ? POLLOUT : POLLIN };
		}
		if (poll(pfd, (nfds_t)np, wait) <= 0)
			continue;
		for (i = 0; i < l->lanes; i++) {
			int k;

			if (a[i].step == FREE)
				continue;
			for (k = 0; k < np && pfd[k].fd != a[i].fd; k++)
				;
			if (k == np || !pfd[k].revents)
				continue;
			advance(&a[i], pfd[k].revents, o);
			if (a[i].step == FREE)
				inflight--;
		}
	}
out:
	for (i = 0; a && i < l->lanes; i++)
		if (a[i].step != FREE)
			close(a[i].fd);
	free(a);
	free(pfd);
	return r;
}

/* ---- the parts ----------------------------------------------------------- */

struct part {
	struct outcome o;
	long long steered_ms;   /* baton: from freeze to steered away; -1 never */
	uint64_t moved;         /* connections migrated (eBPF counters) */
};

struct demo {
	int verbose;
	bool progress;          /* stdout is a terminal: say what runs, on stderr */
	enum baton_mode mode;
	struct part plain, baton, sw;
};

/* On a terminal the demo would otherwise be silent for seconds; the lines go
 * to stderr so that what stdout prints stays the same everywhere. */
static void progress(const struct demo *d, const char *what)
{
	if (d->progress)
		blog(BLOG_INFO, "baton demo", "%s", what);
}

/* Two listeners on one free loopback port, in the order they joined. */
static int two_listeners(int fds[2], uint16_t *port)
{
	struct baton_spec spec;
	char err[128], text[64];
	int i;

	*port = 0;
	for (i = 0; i < 2; i++) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);

		snprintf(text, sizeof(text), "tcp://127.0.0.1:%u?backlog=128", *port);
		if (baton_spec_parse(text, &spec, err, sizeof(err))) {
			blog(BLOG_ERR, "baton demo", "%s", err);
			return -EINVAL;
		}
		fds[i] = baton_listener_open(&spec);
		if (fds[i] < 0) {
			blog(BLOG_ERR, "baton demo", "cannot listen on %s: %s", text, strerror(-fds[i]));
			if (i)
				close(fds[0]);
			return fds[i];
		}
		getsockname(fds[i], (struct sockaddr *)&sin, &len);
		*port = ntohs(sin.sin_port);
	}
	return 0;
}

static struct baton_group *new_group(struct demo *d)
{
	BATON_OPTS(baton_group_opts, o, .log = cli_log, .log_ctx = &d->verbose);
	struct baton_group *g = baton_group_new(&o);

	if (!g)
		blog(BLOG_ERR, "baton demo", "cannot create a steering group: %s", strerror(errno));
	else
		d->mode = baton_group_mode(g);
	return g;
}

static int part_plain(struct demo *d)
{
	struct load l = { .lanes = REQUESTS, .max = REQUESTS, .spacing_ms = SPACING_MS,
			  .duration_ms = COUNTED_CAP_MS };
	pid_t a, b;
	int fds[2], r;

	progress(d, "part 1/3: plain SO_REUSEPORT, server B frozen (SIGSTOP), 100 requests...");
	if ((r = two_listeners(fds, &l.port)))
		return r;
	a = spawn(fds[0], 'A', 0);
	b = spawn(fds[1], 'B', 0);
	close(fds[0]);
	close(fds[1]);
	freeze(b);
	r = run_load(&l, &d->plain.o);
	reap(&a);
	reap(&b);
	return r;
}

/* Part baton: the library's health watch, with each server as its member's
 * owner. A member whose owner is stopped is steered away from at the next
 * tick and (eBPF mode) fenced, so what already waits in its queue moves. */
struct watch {
	struct baton_watch *w;
	long long elapsed_ms;
	bool done;
	long long at_ms;
};

static void on_watch_event(void *ctx, const struct baton_watch_event *ev)
{
	struct watch *w = ctx;

	if (!w->done && !ev->err && ev->type == BATON_WATCH_DOWN) {
		w->done = true;
		w->at_ms = w->elapsed_ms;
	}
}

static void watch_tick(void *ctx, long long elapsed_ms)
{
	struct watch *w = ctx;

	w->elapsed_ms = elapsed_ms;
	baton_watch_tick(w->w, (uint64_t)now_ms());
}

static int part_baton(struct demo *d)
{
	struct load l = { .lanes = REQUESTS, .max = REQUESTS, .spacing_ms = SPACING_MS,
			  .duration_ms = COUNTED_CAP_MS, .tick = watch_tick };
	struct watch w = { 0 };
	BATON_OPTS(baton_watch_opts, wo, .on_event = on_watch_event, .ctx = &w, .log = cli_log,
		   .log_ctx = &d->verbose);
	struct baton_group *g;
	struct baton_slot_stats st;
	pid_t pid[2] = { 0, 0 };
	int fds[2], slot[2], i, r;

	progress(d, "part 2/3: the same with baton watching, B frozen, 100 requests...");
	if ((r = two_listeners(fds, &l.port)))
		return r;
	g = new_group(d);
	if (!g) {
		r = -errno;
		goto out;
	}
	/* classic BPF cannot move a queue: fencing would reset it */
	wo.no_fence = baton_group_mode(g) != BATON_MODE_EBPF;
	w.w = baton_watch_new(g, &wo);
	if (!w.w) {
		r = -errno;
		goto out;
	}
	for (i = 0; i < 2; i++) {
		slot[i] = baton_group_add(g, fds[i], 1);	/* spread: both take traffic */
		if (slot[i] < 0) {
			r = slot[i];
			blog(BLOG_ERR, "baton demo", "cannot steer the group: %s", strerror(-r));
			goto out;
		}
	}
	pid[0] = spawn(fds[0], 'A', 0);
	pid[1] = spawn(fds[1], 'B', 0);
	for (i = 0; i < 2; i++)
		if ((r = baton_watch_set_owner(w.w, slot[i], pid[i])))
			goto out;
	freeze(pid[1]);
	l.ctx = &w;
	r = run_load(&l, &d->baton.o);
	d->baton.steered_ms = w.done ? w.at_ms : -1;
	if (baton_group_stats(g, slot[0], &st) == 0)
		d->baton.moved = st.migrated;
out:
	reap(&pid[0]);
	reap(&pid[1]);
	baton_watch_free(w.w);
	baton_group_free(g);
	close(fds[0]);
	close(fds[1]);
	return r;
}

struct switch_run {
	struct baton_group *g;
	pid_t *a;
	int slot[2];
	int phase;
	int err;
};

/* At SWITCH_AT_MS: new connections go to B, A is told to stop; once A has
 * exited, baton closes its own copy, which closes A's listener for good. */
static void switch_tick(void *ctx, long long elapsed_ms)
{
	struct switch_run *h = ctx;
	int r;

	if (h->phase == 0 && elapsed_ms >= SWITCH_AT_MS) {
		if ((r = baton_group_activate(h->g, h->slot[1])))
			h->err = r;
		kill(*h->a, SIGTERM);
		h->phase = 1;
	} else if (h->phase == 1 && waitpid(*h->a, NULL, WNOHANG) == *h->a) {
		*h->a = 0;
		if ((r = baton_group_remove(h->g, h->slot[0])))
			h->err = r;
		h->phase = 2;
	}
}

static int part_switch(struct demo *d)
{
	struct load l = { .lanes = SWITCH_LANES, .max = SWITCH_MAX, .duration_ms = SWITCH_MS,
			  .tick = switch_tick };
	struct switch_run h = { 0 };
	struct baton_slot_stats st;
	pid_t a = 0, b = 0;
	int fds[2], i, r;

	progress(d, "part 3/3: traffic switched from A to B under load, A exits...");
	if ((r = two_listeners(fds, &l.port)))
		return r;
	h.g = new_group(d);
	if (!h.g) {
		r = -errno;
		goto out;
	}
	for (i = 0; i < 2; i++) {
		h.slot[i] = baton_group_add(h.g, fds[i], i == 0);	/* A takes all */
		if (h.slot[i] < 0) {
			r = h.slot[i];
			blog(BLOG_ERR, "baton demo", "cannot steer the group: %s", strerror(-r));
			goto out;
		}
	}
	a = spawn(fds[0], 'A', SLOW_US);	/* slow enough that a queue builds */
	b = spawn(fds[1], 'B', 0);
	close(fds[0]);	/* from here on A's listener lives in A and in the group */
	fds[0] = -1;
	h.a = &a;
	l.ctx = &h;
	r = run_load(&l, &d->sw.o);
	if (!r && h.err)
		r = h.err;
	if (baton_group_stats(h.g, h.slot[1], &st) == 0)
		d->sw.moved = st.migrated;
out:
	reap(&a);
	reap(&b);
	baton_group_free(h.g);
	if (fds[0] >= 0)
		close(fds[0]);
	close(fds[1]);
	return r;
}

/* ---- output --------------------------------------------------------------- */

static void json_part(const char *name, const struct part *p, bool last)
{
	printf("  \"%s\": {\"worked\": %d, \"failed\": %d, \"refused\": %d, \"reset\": %d, "
	       "\"timed_out\": %d, \"truncated\": %d, \"migrated\": %llu",
	       name, p->o.worked, failed(&p->o), p->o.refused, p->o.reset, p->o.timeout, p->o.truncated,
	       (unsigned long long)p->moved);
	if (!strcmp(name, "baton"))
		printf(", \"steered_after_ms\": %lld", p->steered_ms);
	printf("}%s\n", last ? "" : ",");
}

static void print_table(const struct demo *d)
{
	const struct part *p;
	bool ebpf = d->mode == BATON_MODE_EBPF;

	printf("baton demo: two servers, A and B, share a loopback port with SO_REUSEPORT.\n"
	       "Each request is a new connection with %d ms to be answered.\n"
	       "Steering mode: %s%s\n\n", TIMEOUT_MS, baton_mode_name(d->mode),
	       ebpf ? " (eBPF: steer by slot, migrate queues)"
		    : " (classic BPF: no eBPF privilege here, so no migration of queues)");
	printf("%-7s %7s %7s  %s\n", "part", "worked", "failed", "what happened");
	p = &d->plain;
	printf("%-7s %7d %7d  B frozen (SIGSTOP); the kernel keeps hashing about half of the new\n"
	       "%-7s %7s %7s  connections onto B, where they wait in its queue until they time out\n",
	       "plain", p->o.worked, failed(&p->o), "", "", "");
	p = &d->baton;
	if (p->steered_ms >= 0) {
		printf("%-7s %7d %7d  B frozen; baton saw it stopped after %lld ms, steered new connections\n"
		       "%-7s %7s %7s  to A%s",
		       "baton", p->o.worked, failed(&p->o), p->steered_ms, "", "", "",
		       ebpf ? " and fenced B" : "");
		if (p->moved)
			printf(" (%llu queued on B moved to A)", (unsigned long long)p->moved);
		printf("\n");
	} else
		printf("%-7s %7d %7d  B frozen; baton never saw it stop\n", "baton", p->o.worked, failed(&p->o));
	p = &d->sw;
	printf("%-7s %7d %7d  %d clients at once; after %d ms traffic switched from A to B and A\n"
	       "%-7s %7s %7s  exited, closing its listener: %llu queued on A %s\n",
	       "switch", p->o.worked, failed(&p->o), SWITCH_LANES, SWITCH_AT_MS, "", "", "",
	       (unsigned long long)p->moved,
	       ebpf ? "migrated to B instead of being reset" : "(no migration without eBPF)");
	if (failed(&d->plain.o) || failed(&d->baton.o) || failed(&d->sw.o))
		printf("\nfailed = refused + reset + timed out + truncated; --json shows each.\n");
}

void usage_demo(FILE *out)
{
	fprintf(out,
		"usage: baton demo [--json] [--verbose]\n\n"
		"Runs three short experiments on a free 127.0.0.1 port with its own tiny\n"
		"servers (about 5 s, nothing to set up, every process ended afterwards):\n"
		"  plain   two SO_REUSEPORT servers, B frozen with SIGSTOP, 100 requests\n"
		"  baton   the same, with baton watching B and steering away from it\n"
		"  switch  concurrent load while traffic moves from A to B and A exits\n\n"
		"  --json      print one JSON object: keys plain, baton, switch, each with\n"
		"              integer worked and failed (and the kinds of failure)\n"
		"  -v, --verbose  print the library's messages\n"
		"  -h, --help  this text\n\n"
		"Needs root (or CAP_BPF and CAP_NET_ADMIN) for eBPF steering; without it the\n"
		"demo runs in classic BPF mode and says so.\n");
}

int cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct demo d = { .mode = BATON_MODE_AUTO };
	bool json = false;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jvh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'v': d.verbose++; break;
		case 'h': usage_demo(stdout); return 0;
		default:
			blog(BLOG_ERR, "baton demo", "unknown option \"%s\" (see baton demo --help)",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		blog(BLOG_ERR, "baton demo", "unexpected argument \"%s\" (see baton demo --help)", argv[optind]);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	d.progress = !json && isatty(STDOUT_FILENO);
	if ((r = part_plain(&d)) || (r = part_baton(&d)) || (r = part_switch(&d))) {
		blog(BLOG_ERR, "baton demo", "%s", strerror(-r));
		return 1;
	}
	if (json) {
		printf("{\n  \"mode\": \"%s\",\n", baton_mode_name(d.mode));
		json_part("plain", &d.plain, false);
		json_part("baton", &d.baton, false);
		json_part("switch", &d.sw, true);
		printf("}\n");
	} else {
		print_table(&d);
	}
	return 0;
}
