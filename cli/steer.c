/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton steer SPEC`: takes control of a reuseport group that baton did not
 * start. Finds every listener on SPEC (sock_diag, /proc owners), copies each
 * with pidfd_getfd, attaches the steering program over pinned maps, applies
 * the policy, and with --watch fails over and picks up members that join. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "cli.h"
#include "log.h"
#include "util.h"
#include "pins.h"
#include "pinlayout.h"
#include "steer.h"


#define RESCAN_MS 200          /* how often --watch looks for members that joined */
#define MAX_PASSES 2000000000  /* bound of the watch loop (years at 10 ms) */

enum policy { P_STANDBY, P_SPREAD, P_WEIGHTS };

struct steer {
	struct baton_spec spec;
	const char *spec_text;
	enum policy policy;
	bool policy_given;
	uint32_t weights[BATON_MAX_SLOTS];
	int nweights;
	pid_t primary;
	bool watch, no_fence, release, pin_given, no_events;
	bool fresh;         /* no group was pinned: on failure, remove what this run made */
	bool made_dir, made_root;
	uint32_t hang_ms, interval_ms;
	char pin[PATH_MAX - 32];
	char root[PATH_MAX - 32];	/* pinlayout.h: BASE/baton */
	int verbose;
	struct baton_group *g;
	struct baton_watch *w;
	uint64_t cookie[BATON_MAX_SLOTS];   /* 0: slot free */
	pid_t owner[BATON_MAX_SLOTS][BATON_SOCK_MAX_OWNERS];
	int nowner[BATON_MAX_SLOTS];
};

static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	stop_sig = sig;
}

void usage_steer(FILE *out)
{
	fprintf(out,
		"usage: baton steer SPEC [--policy standby|spread|weights:W1,W2,...] [--primary PID]\n"
		"                   [--watch] [--no-fence] [--hang-threshold DUR] [--interval DUR]\n"
		"                   [--pin DIR] [-v]\n"
		"       baton steer --release SPEC [--pin DIR]\n\n"
		"Takes control of the SO_REUSEPORT group listening on SPEC, whoever started its\n"
		"members: copies every listener on that address (pidfd_getfd), attaches baton's\n"
		"eBPF steering program in place of any other, and applies the policy.\n\n"
		"  --policy standby     all new connections to the primary; the others wait (default)\n"
		"  --policy spread      new connections spread over the healthy members\n"
		"  --policy weights:W1,W2,...  shares by member, in slot order\n"
		"  --primary PID        the member owned by PID is the primary (default: the first)\n"
		"  --watch              stay in the foreground: steer away from and fence members\n"
		"                       whose owners stop, die or hang; pick up members that join\n"
		"  --no-fence           only steer away; leave an unhealthy member's queue alone\n"
		"  --hang-threshold DUR queue without progress this long is hung (default 100ms)\n"
		"  --interval DUR       time between health checks (default 10ms)\n"
		"  --no-events          find stopped members by polling alone (by default, with\n"
		"                       eBPF, a stop signal is reported as it is delivered)\n"
		"  --pin DIR            bpffs directory of the group's state\n"
		"                       (default $BATON_BPFFS/baton/steer-ADDR-PORT, dots of\n"
		"                       ADDR as _; BATON_BPFFS defaults to /sys/fs/bpf)\n"
		"  --release            give the group back to the kernel's hash: detach the\n"
		"                       steering program and remove the pins (refused while\n"
		"                       a baton steer --watch still steers it)\n"
		"  -v, --verbose        say more\n\n"
		"A restarted baton steer resumes from the pinned state without touching traffic.\n"
		"A baton steer that fails leaves nothing pinned or attached that it made.\n"
		"On SIGTERM or SIGINT it exits and leaves the group steered to healthy members.\n"
		"Needs root (or CAP_BPF, CAP_NET_ADMIN and ptrace access to the owners).\n");
}

/* "150ms", "2s", "1.5s" or plain milliseconds. */
static int parse_dur(const char *v, uint32_t *ms)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || d < 0)
		return -1;
	if (!strcmp(end, "s"))
		d *= 1000;
	else if (*end && strcmp(end, "ms"))
		return -1;
	if (d < 1 || d > 3600000)
		return -1;
	*ms = (uint32_t)d;
	return 0;
}

static int parse_policy(struct steer *s, const char *v)
{
	s->policy_given = true;
	if (!strcmp(v, "standby"))
		s->policy = P_STANDBY;
	else if (!strcmp(v, "spread"))
		s->policy = P_SPREAD;
	else if (!strncmp(v, "weights:", 8)) {
		const char *p = v + 8;

		s->policy = P_WEIGHTS;
		while (*p && s->nweights < BATON_MAX_SLOTS) {
			char *end;
			unsigned long w = strtoul(p, &end, 10);

			if (end == p || w > 1000000 || (*end && *end != ','))
				return -1;
			s->weights[s->nweights++] = (uint32_t)w;
			p = *end ? end + 1 : end;
		}
		return s->nweights ? 0 : -1;
	} else
		return -1;
	return 0;
}

static int parse_args(struct steer *s, int argc, char **argv)
{
	enum { O_POLICY = 256, O_PRIMARY, O_WATCH, O_NOFENCE, O_HANG, O_INTERVAL, O_PIN, O_RELEASE, O_NOEVENTS };
	static const struct option lopts[] = {
		{ "policy", required_argument, NULL, O_POLICY },
		{ "primary", required_argument, NULL, O_PRIMARY },
		{ "watch", no_argument, NULL, O_WATCH },
		{ "no-fence", no_argument, NULL, O_NOFENCE },
		{ "hang-threshold", required_argument, NULL, O_HANG },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "pin", required_argument, NULL, O_PIN },
		{ "release", no_argument, NULL, O_RELEASE },
		{ "no-events", no_argument, NULL, O_NOEVENTS },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	char err[256];
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":v", lopts, NULL)) != -1) {
		switch (c) {
		case O_POLICY:
			if (parse_policy(s, optarg)) {
				blog(BLOG_ERR, "baton steer", "option --policy: \"%s\" is not standby, spread "
						"or weights:W1,W2,...", optarg);
				return EXIT_USAGE;
			}
			break;
		case O_PRIMARY: {
			char *end;
			long p = strtol(optarg, &end, 10);

			if (end == optarg || *end || p <= 0 || p > INT_MAX) {
				blog(BLOG_ERR, "baton steer", "option --primary: \"%s\" is not a pid", optarg);
				return EXIT_USAGE;
			}
			s->primary = (pid_t)p;
			s->policy_given = true;
			break;
		}
		case O_WATCH: s->watch = true; break;
		case O_RELEASE: s->release = true; break;
		case O_NOEVENTS: s->no_events = true; break;
		case O_NOFENCE: s->no_fence = true; break;
		case O_HANG:
		case O_INTERVAL:
			if (parse_dur(optarg, c == O_HANG ? &s->hang_ms : &s->interval_ms)) {
				blog(BLOG_ERR, "baton steer", "option %s: \"%s\" is not a duration like 100ms or 2s",
					c == O_HANG ? "--hang-threshold" : "--interval", optarg);
				return EXIT_USAGE;
			}
			break;
		case O_PIN:
			if (strlen(optarg) >= sizeof(s->pin) || optarg[0] != '/') {
				blog(BLOG_ERR, "baton steer", "option --pin: \"%s\" is not an absolute path", optarg);
				return EXIT_USAGE;
			}
			snprintf(s->pin, sizeof(s->pin), "%s", optarg);
			s->pin_given = true;
			break;
		case 'v': s->verbose++; break;
		case ':':
			blog(BLOG_ERR, "baton steer", "option \"%s\" needs a value (see baton steer --help)",
				argv[optind - 1]);
			return EXIT_USAGE;
		default:
			blog(BLOG_ERR, "baton steer", "unknown option \"%s\" (see baton steer --help)",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		blog(BLOG_ERR, "baton steer", "%s (see baton steer --help)",
			optind >= argc ? "which listener? give one SPEC, e.g. tcp://127.0.0.1:8080"
				       : "give exactly one SPEC");
		return EXIT_USAGE;
	}
	if (s->release && (s->watch || s->policy_given || s->no_fence)) {
		blog(BLOG_ERR, "baton steer", "--release takes only SPEC and --pin (see baton steer --help)");
		return EXIT_USAGE;
	}
	s->spec_text = argv[optind];
	if (baton_spec_parse(s->spec_text, &s->spec, err, sizeof(err))) {
		blog(BLOG_ERR, "baton steer", "%s", err);
		return EXIT_USAGE;
	}
	if (s->spec.proto != BATON_PROTO_TCP || !s->spec.port) {
		blog(BLOG_ERR, "baton steer", "%s: give a TCP listener with its port", s->spec_text);
		return EXIT_USAGE;
	}
	return -1;
}

static uint64_t now_ms(void)
{
	return (uint64_t)baton_mono_ms();
}

/* Pins need bpffs at BATON_BPFFS (/sys/fs/bpf); mount it if nothing is there. */
static int need_bpffs(void)
{
	const char *base = pin_base();
	int r = pin_bpffs_mount(base);

	if (r == -EPERM || r == -EACCES)
		blog(BLOG_ERR, "baton steer", "cannot mount bpffs at %s: %s: baton steer needs CAP_BPF and "
			     "CAP_NET_ADMIN (or root), and bpffs mounted", base, strerror(-r));
	else if (r)
		blog(BLOG_ERR, "baton steer", "cannot mount bpffs at %s: %s", base, strerror(-r));
	return r;
}

/* The spec's address in network order: 4 or 16 bytes by its family. */
static const void *spec_inaddr(const struct baton_spec *sp)
{
	if (sp->family == AF_INET)
		return &((const struct sockaddr_in *)&sp->addr)->sin_addr;
	return &((const struct sockaddr_in6 *)&sp->addr)->sin6_addr;
}

static bool on_spec(const struct steer *s, const struct baton_sock *k)
{
	const struct baton_spec *sp = &s->spec;

	if (k->proto != BATON_PROTO_TCP || k->state != 10 || k->lport != sp->port || k->family != sp->family)
		return false;
	return !memcmp(k->local, spec_inaddr(sp), sp->family == AF_INET ? 4 : 16);
}

static bool known_cookie(const struct steer *s, uint64_t cookie)
{
	for (int i = 0; i < BATON_MAX_SLOTS; i++)
		if (s->cookie[i] == cookie)
			return true;
	return false;
}

/* A copy of K from one of its owners, or -errno (message printed). */
static int copy_sock(const struct steer *s, const struct baton_sock *k)
{
	uint32_t n = k->nowners < BATON_SOCK_MAX_OWNERS ? k->nowners : BATON_SOCK_MAX_OWNERS;
	char comm[4 * BATON_COMM_MAX + 1];	/* a process name: its owner's to choose */
	int r = -ESRCH;

	for (uint32_t i = 0; i < n; i++) {
		int fd = baton_fd_adopt(k->owners[i].pid, k->owners[i].fd);

		if (fd >= 0)
			return fd;
		r = fd;
	}
	if (!n)
		blog(BLOG_ERR, "baton steer", "the owner of a listener on %s cannot be read (the open files of "
				"other users' processes need root)", s->spec_text);
	else
		blog(BLOG_ERR, "baton steer", "cannot copy the listener of pid %d (%s): %s%s", k->owners[0].pid,
			baton_text_escape(comm, sizeof(comm), k->owners[0].comm, 0), strerror(-r),
			r == -EPERM || r == -EACCES ? " (pidfd_getfd needs ptrace access: run as root or with "
						      "CAP_SYS_PTRACE)" : "");
	return r;
}

static uint32_t weight_for(const struct steer *s, int idx, bool primary)
{
	switch (s->policy) {
	case P_STANDBY: return primary;
	case P_SPREAD: return 1;
	case P_WEIGHTS: return idx < s->nweights ? s->weights[idx] : 0;
	}
	return 0;
}

static bool owned_by(const struct baton_sock *k, pid_t pid)
{
	uint32_t n = k->nowners < BATON_SOCK_MAX_OWNERS ? k->nowners : BATON_SOCK_MAX_OWNERS;

	for (uint32_t i = 0; i < n; i++)
		if (k->owners[i].pid == pid)
			return true;
	return false;
}

static void say_member(const struct steer *s, int slot, const char *what)
{
	printf("baton steer: slot %d %s (pid", slot, what);
	for (int i = 0; i < s->nowner[slot]; i++)
		printf(" %d", (int)s->owner[slot][i]);
	printf(")\n");
	fflush(stdout);
}

/* Adds the listeners on SPEC that are not members yet. FIRST: the start,
 * where every error counts; later, a member that vanished meanwhile is no
 * error. Returns the number added or -errno. */
static int collect(struct steer *s, bool first)
{
	BATON_OPTS(baton_collect_opts, o, .log = cli_log, .log_ctx = &s->verbose, .sock_sz = sizeof(struct baton_sock));
	struct baton_sock *v = NULL;
	size_t n = 0, k;
	uint32_t group = 0;
	int added = 0, found = 0, r;
	bool primary_found = false;

	if (!first) {
		/* a cheap look first: anything new on the address? */
		bool fresh = false;

		o.diag_only = true;
		if ((r = baton_socks_collect(&o, &v, &n)))
			return r;
		for (k = 0; k < n; k++)
			if (on_spec(s, &v[k]) && !known_cookie(s, v[k].cookie))
				fresh = true;
		baton_socks_free(v);
		if (!fresh)
			return 0;
		o.diag_only = false;
	}
	if ((r = baton_socks_collect(&o, &v, &n))) {
		blog(BLOG_ERR, "baton steer", "cannot list sockets: %s", strerror(-r));
		return r;
	}
	for (k = 0; k < n; k++) {
		if (!on_spec(s, &v[k]))
			continue;
		found++;
		if ((v[k].known & BATON_SOCK_GROUP) && v[k].group) {
			if (group && v[k].group != group) {
				blog(BLOG_ERR, "baton steer", "the listeners on %s are not in one reuseport group "
						"(sockets of different users, or some without SO_REUSEPORT); "
						"baton steers one group", s->spec_text);
				r = -EINVAL;
				goto out;
			}
			group = v[k].group;
		}
	}
	if (!found) {
		if (first) {
			blog(BLOG_ERR, "baton steer", "nothing listens on %s", s->spec_text);
			r = -ENOENT;
		}
		goto out;
	}
	for (int pass = 0; pass < 2; pass++) {	/* the primary first, so it takes slot 0 on a fresh group */
		for (k = 0; k < n; k++) {
			bool primary;
			int fd, slot;

			if (!on_spec(s, &v[k]) || known_cookie(s, v[k].cookie))
				continue;
			primary = s->primary ? owned_by(&v[k], s->primary) : (first && added == 0);
			primary_found |= primary;
			if (pass == 0 && !primary && s->primary)
				continue;
			if (pass == 0 && !s->primary && added)
				continue;
			fd = copy_sock(s, &v[k]);
			if (fd < 0) {
				if (first) {
					r = fd;
					goto out;
				}
				continue;
			}
			slot = baton_group_add(s->g, fd, weight_for(s, added, primary));
			close(fd);
			if (slot < 0) {
				if (first) {
					r = slot;
					goto out;
				}
				continue;
			}
			s->cookie[slot] = v[k].cookie;
			s->nowner[slot] = 0;
			baton_watch_clear_owners(s->w, slot);
			for (uint32_t i = 0; i < v[k].nowners && i < BATON_SOCK_MAX_OWNERS; i++) {
				s->owner[slot][s->nowner[slot]++] = v[k].owners[i].pid;
				baton_watch_set_owner(s->w, slot, v[k].owners[i].pid);
			}
			if (v[k].nowners > BATON_SOCK_MAX_OWNERS)
				blog(BLOG_WARN, "baton steer", "slot %d has %u owners; only the first %d are watched",
					slot, v[k].nowners, BATON_SOCK_MAX_OWNERS);
			say_member(s, slot, first ? "member" : "joined");
			added++;
		}
	}
	if (first && s->primary && !primary_found) {
		blog(BLOG_ERR, "baton steer", "pid %d holds no listener on %s", (int)s->primary, s->spec_text);
		r = -ENOENT;
		goto out;
	}
	r = added;
out:
	baton_socks_free(v);
	return r;
}

/* The policy over the members as they are now (slot order). */
static int apply_policy(struct steer *s)
{
	uint32_t w[BATON_MAX_SLOTS] = { 0 };
	int idx = 0, primary = -1;

	for (int slot = 0; slot < BATON_MAX_SLOTS; slot++) {
		if (!s->cookie[slot])
			continue;
		if (s->primary)
			for (int i = 0; i < s->nowner[slot]; i++)
				if (s->owner[slot][i] == s->primary)
					primary = slot;
		if (!s->primary && primary < 0)
			primary = slot;
	}
	for (int slot = 0; slot < BATON_MAX_SLOTS; slot++)
		if (s->cookie[slot])
			w[slot] = weight_for(s, idx++, slot == primary);
	return baton_group_set_weights(s->g, w, BATON_MAX_SLOTS);
}

static void on_event(void *ctx, const struct baton_watch_event *ev)
{
	static const char *const what[] = { "down", "fenced", "up", "removed" };
	struct steer *s = ctx;
	char buf[96];

	snprintf(buf, sizeof(buf), "%s: %s, queue %u%s%s", what[ev->type], baton_health_name(ev->why), ev->queue,
		 ev->err ? ", failed: " : "", ev->err ? strerror(-ev->err) : "");
	say_member(s, ev->slot, buf);
	if (ev->type == BATON_WATCH_REMOVED && !ev->err) {
		s->cookie[ev->slot] = 0;
		s->nowner[ev->slot] = 0;
	}
}

/* On exit, fenced members whose owners live are listening again (still
 * steered away), so that a server that is continued later can accept. */
static void leave(struct steer *s)
{
	for (int slot = 0; slot < BATON_MAX_SLOTS; slot++) {
		struct baton_member_health h;

		if (baton_watch_health(s->w, slot, &h) || !h.fenced || h.health == BATON_HEALTH_GONE)
			continue;
		if (baton_group_unfence(s->g, slot) == 0)
			baton_group_set_down(s->g, slot, true);
	}
}

static int watch_loop(struct steer *s)
{
	uint64_t next_scan = now_ms() + RESCAN_MS, next_tick = 0;
	struct sigaction sa = { .sa_handler = on_stop };
	int evfd = s->no_events ? -1 : baton_watch_events(s->w);

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (long pass = 0; pass < MAX_PASSES && !stop_sig; pass++) {
		uint64_t now = now_ms();
		struct pollfd pf = { .fd = evfd, .events = POLLIN };

		/* a stop signal wakes the loop at once; /proc is polled at the interval */
		if (now >= next_tick || evfd >= 0) {
			baton_watch_tick(s->w, now);
			if (now >= next_tick)
				next_tick = now + s->interval_ms;
		}
		if (now >= next_scan) {
			int added = collect(s, false);

			if (added > 0 && s->policy != P_STANDBY)
				apply_policy(s);
			next_scan = now + RESCAN_MS;
		}
		poll(evfd >= 0 ? &pf : NULL, evfd >= 0, (int)(next_tick > now_ms() ? next_tick - now_ms() : 0));
	}
	leave(s);
	printf("baton steer: %s, leaving %s steered to its healthy members\n",
	       stop_sig ? strsignal(stop_sig) : "stopped", s->spec_text);
	fflush(stdout);
	return 0;
}

/* What the run that failed made goes again: the program it attached, its
 * pins and the directories it created. A group resumed from pins made
 * earlier is left as it was found. */
static void undo(struct steer *s)
{
	struct stat st;
	int r;

	if (!s->fresh)
		return;
	if (s->g && (r = baton_group_detach(s->g)))
		blog(BLOG_WARN, "baton steer", "cannot detach the steering program from %s: %s", s->spec_text,
		     strerror(-r));
	baton_group_free(s->g);
	s->g = NULL;
	if (stat(s->pin, &st))
		return;
	r = baton_group_unpin_dir(s->pin);
	if (!s->made_dir && (r == 0 || r == -ENOENT))
		mkdir(s->pin, st.st_mode & 07777);	/* the user's own --pin directory stays */
	else if (r && r != -ENOENT)
		blog(BLOG_WARN, "baton steer", "cannot remove %s: %s", s->pin, strerror(-r));
	if (s->made_root)
		rmdir(s->root);	/* only if empty: other groups keep theirs */
}

/* The group on SPEC, back to the kernel's hash. The program is detached
 * in one step rather than first given equal weights: both end with every
 * listening member taking new connections, and equal weights would only
 * matter while the program stayed (it can move a closing member's queue),
 * but a program nobody can reach by its pins any more is steering nobody can
 * see or change. */
static int release(struct steer *s)
{
	struct baton_collect_opts o = { .sz = sizeof(o), .log = cli_log, .log_ctx = &s->verbose };
	struct baton_sock *v = NULL;
	size_t n = 0, k;
	uint32_t map_id = 0, prog_id = 0;
	int sockets = 0, listeners = 0, r, fd;
	bool ours = false;
	char comm[32], safe[4 * sizeof(comm) + 1];	/* a process name: its owner's to choose */
	pid_t holder;

	r = pins_group(s->pin, &map_id, &sockets);
	if (r == -ENOENT) {
		blog(BLOG_ERR, "baton steer", "no baton steering state for %s: nothing pinned at %s%s", s->spec_text,
		     s->pin, s->pin_given ? "" : " (if it was steered with --pin DIR, give that DIR again)");
		return 1;
	}
	if (r) {
		blog(BLOG_ERR, "baton steer", "cannot open the pins at %s: %s%s", s->pin, strerror(-r),
		     r == -EPERM || r == -EACCES ? ": baton steer needs CAP_BPF and CAP_NET_ADMIN (or root)" : "");
		return 1;
	}
	holder = pins_map_holder(map_id, comm, sizeof(comm));
	if (holder) {
		blog(BLOG_ERR, "baton steer", "pid %d (%s) still steers %s with the pins at %s; stop it first "
			     "(kill %d), then release", (int)holder, baton_text_escape(safe, sizeof(safe), comm, 0),
		     s->spec_text, s->pin, (int)holder);
		return 1;
	}
	if ((r = baton_socks_collect(&o, &v, &n))) {
		blog(BLOG_ERR, "baton steer", "cannot list sockets: %s", strerror(-r));
		return 1;
	}
	for (k = 0; k < n; k++) {
		if (!on_spec(s, &v[k]))
			continue;
		listeners++;
		if (v[k].prog_type == BATON_PROG_EBPF && v[k].prog_id && !prog_id) {
			prog_id = v[k].prog_id;
			ours = pins_prog_uses_map(prog_id, map_id);
		}
	}
	if (!listeners && sockets) {
		/* the group lives where this process cannot see it: its pins
		 * are the only handle on the program still steering it */
		blog(BLOG_ERR, "baton steer", "the group pinned at %s still has %d socket(s), but nothing listens on "
			     "%s in this network namespace: run --release where its servers run", s->pin, sockets,
		     s->spec_text);
		r = -EBUSY;
		goto out;
	}
	for (k = 0; ours && k < n; k++) {
		int zero = 0;

		if (!on_spec(s, &v[k]) || v[k].prog_id != prog_id)
			continue;
		/* one member speaks for the group: the program is the group's */
		fd = copy_sock(s, &v[k]);
		if (fd < 0)
			goto out;
		r = setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &zero, sizeof(zero)) ? -errno : 0;
		close(fd);
		if (r) {
			blog(BLOG_ERR, "baton steer", "cannot detach the steering program from %s: %s%s", s->spec_text,
			     strerror(-r), r == -EPERM ? ": needs CAP_NET_ADMIN (or root)" : "");
			goto out;
		}
		break;
	}
	r = baton_group_unpin_dir(s->pin);
	if (r) {
		blog(BLOG_ERR, "baton steer", "cannot remove the pins at %s: %s", s->pin, strerror(-r));
		goto out;
	}
	if (!strncmp(s->pin, s->root, strlen(s->root)) && s->pin[strlen(s->root)] == '/')
		rmdir(s->root);	/* only if empty */
	if (ours)
		printf("baton steer: released %s: detached the steering program from its %d listener(s), which "
		       "the kernel's hash spreads new connections over again; removed the pins at %s\n",
		       s->spec_text, listeners, s->pin);
	else if (prog_id)
		printf("baton steer: released %s: removed the pins at %s; the program attached there now "
		       "(id %u) is not baton's and stays\n", s->spec_text, s->pin, prog_id);
	else if (listeners)
		printf("baton steer: released %s: removed the pins at %s; no program was attached to its %d "
		       "listener(s)\n", s->spec_text, s->pin, listeners);
	else
		printf("baton steer: released %s: nothing listens there any more; removed the pins at %s\n",
		       s->spec_text, s->pin);
	fflush(stdout);
	r = 0;
out:
	baton_socks_free(v);
	return r ? 1 : 0;
}

int cmd_steer(int argc, char **argv)
{
	struct steer *s = calloc(1, sizeof(*s));
	BATON_OPTS(baton_group_opts, go, .mode = BATON_MODE_EBPF, .log = cli_log);
	BATON_OPTS(baton_watch_opts, wo, .on_event = on_event, .log = cli_log);
	char path[PATH_MAX];
	int r;

	if (!s)
		return 1;
	s->interval_ms = 10;
	r = parse_args(s, argc, argv);
	if (r >= 0)
		goto out;
	r = 1;
	if (pin_root(s->root, sizeof(s->root)) ||
	    (!s->pin[0] && pin_steer_dir(s->pin, sizeof(s->pin), s->spec.family, spec_inaddr(&s->spec),
					 s->spec.port))) {
		blog(BLOG_ERR, "baton steer", "BATON_BPFFS=%s: too long a path for the pins", pin_base());
		goto out;
	}
	if (s->release) {	/* without bpffs nothing is pinned: mount none */
		r = release(s);
		goto out;
	}
	if (need_bpffs())
		goto out;
	snprintf(path, sizeof(path), "%s/" BATON_STEER_PIN_SOCKS, s->pin);
	s->fresh = access(path, F_OK) != 0;
	s->made_dir = access(s->pin, F_OK) != 0;
	s->made_root = access(s->root, F_OK) != 0;
	go.log_ctx = &s->verbose;
	go.pin_path = s->pin;
	s->g = baton_group_new(&go);
	if (!s->g) {
		if (errno == EPERM || errno == EACCES)
			blog(BLOG_ERR, "baton steer", "no privilege to load eBPF (needs CAP_BPF and CAP_NET_ADMIN, "
					"or root). The classic BPF fallback cannot steer this group: it picks a "
					"member by its index in the kernel's group, whose order is unknown for "
					"sockets baton did not create, and it cannot move queued connections when "
					"it fences a member. It could only spread at random (SKF_AD_RANDOM), which "
					"the kernel's hash already does.");
		else
			blog(BLOG_ERR, "baton steer", "cannot set up steering: %s", strerror(errno));
		goto fail;
	}
	wo.hang_ms = s->hang_ms;
	wo.no_fence = s->no_fence;
	wo.ctx = s;
	wo.log_ctx = &s->verbose;
	s->w = baton_watch_new(s->g, &wo);
	if (!s->w)
		goto fail;
	if (collect(s, true) < 0)
		goto fail;
	/* a member found frozen is marked before the policy names it */
	baton_watch_tick(s->w, now_ms());
	if ((s->policy_given || !baton_group_size(s->g)) && apply_policy(s))
		goto fail;
	if (!s->policy_given) {
		/* resumed groups keep the pinned policy; fresh ones get standby */
		uint32_t wt;
		bool any = false;

		for (int slot = 0; slot < BATON_MAX_SLOTS; slot++)
			any |= s->cookie[slot] && baton_group_weight(s->g, slot, &wt) == 0 && wt;
		if (!any && apply_policy(s))
			goto fail;
	}
	printf("baton steer: steering %d member(s) of %s (%s, state in %s)\n", baton_group_size(s->g),
	       s->spec_text, s->policy == P_STANDBY ? "standby" : s->policy == P_SPREAD ? "spread" : "weights",
	       s->pin);
	fflush(stdout);
	r = s->watch ? watch_loop(s) : 0;
	goto out;
fail:
	baton_watch_free(s->w);
	s->w = NULL;
	undo(s);
out:
	baton_watch_free(s->w);
	baton_group_free(s->g);
	free(s);
	return r;
}
