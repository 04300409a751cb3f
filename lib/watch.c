/* SPDX-License-Identifier: BSD-2-Clause */
/* Health watch over a steered group: each tick reads every member's accept
 * queue and its owners' state in /proc, steers new connections away from a
 * stopped, dead or hung member, fences it so its queue moves, and takes it
 * back when it recovers. Poll-driven: no threads, no timers of its own. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "internal.h"
#include <bpf/bpf.h>
#include <linux/types.h>

#include "sigwatch.h"
#include "sigwatch.skel.h"

#define MAX_OWNERS 32             /* per member: nginx master + workers fit */
#define DEFAULT_HANG_MS 100
#define RETRY_MAX_MS 30000        /* longest wait before a hung member is tried again */
#define STOP_INFLIGHT_MS 100      /* a stop signal reported: stopped, though /proc may not say so yet */
/* A hang is judged against the member's own pace: a server that has shown
 * stalls of 300 ms and got over them (a slow one, or one on a busy machine)
 * is not hung at 100 ms. Hung = no progress for PACE_FACTOR times the longest
 * stall it recovered from by itself (halved every PACE_HALF_LIFE_MS), and at
 * least hang_ms; the pace never stretches the limit past PACE_MAX_MS. */
#define PACE_FACTOR 4
#define PACE_HALF_LIFE_MS 30000
#define PACE_MAX_MS 10000

/* One open /proc/PID/stat per process, shared by every watch that has it as
 * an owner: a supervisor's 1,024 listeners all watch the same generation, and
 * one fd each made 1,024 fds for one process. The fd is kept open because it
 * follows this process, not a reused pid: once the process is reaped, reads
 * fail, so an entry whose read fails is never handed out again. */
struct statref {
	pid_t pid;
	int fd;
	unsigned refs;
};

static pthread_mutex_t stat_lock = PTHREAD_MUTEX_INITIALIZER;
static struct statref **stat_tab;	/* process-wide: watches of any thread share it */
static size_t stat_n, stat_cap;

/* Whether FD (an open stat file) still reads: its process is not reaped, so
 * its pid is not free for reuse and names that process. */
static bool stat_alive(int fd)
{
	struct baton_proc_stat st;

	return baton_proc_stat(0, fd, &st) == 0;
}

static struct statref *stat_find(pid_t pid)
{
	for (size_t i = 0; i < stat_n; i++)
		if (stat_tab[i]->pid == pid && stat_alive(stat_tab[i]->fd))
			return stat_tab[i];
	return NULL;
}

/* A reference to PID's stat file, opened if no watch has it yet; NULL and
 * errno on failure. */
static struct statref *stat_get(pid_t pid)
{
	struct statref *e;
	char path[64];
	int err = 0;

	pthread_mutex_lock(&stat_lock);
	if ((e = stat_find(pid))) {
		e->refs++;
		goto out;
	}
	if (stat_n == stat_cap) {
		size_t cap = stat_cap ? 2 * stat_cap : 8;
		struct statref **v = realloc(stat_tab, cap * sizeof(*v));

		if (!v) {
			err = ENOMEM;
			goto out;
		}
		stat_tab = v;
		stat_cap = cap;
	}
	if (!(e = malloc(sizeof(*e)))) {
		err = ENOMEM;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	*e = (struct statref){ .pid = pid, .fd = open(path, O_RDONLY | O_CLOEXEC), .refs = 1 };
	if (e->fd < 0) {
		err = errno;
		free(e);
		e = NULL;
		goto out;
	}
	stat_tab[stat_n++] = e;
out:
	pthread_mutex_unlock(&stat_lock);
	if (err)
		errno = err;
	return e;
}

static void stat_put(struct statref *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&stat_lock);
	if (--e->refs == 0) {
		for (size_t i = 0; i < stat_n; i++)
			if (stat_tab[i] == e) {
				stat_tab[i] = stat_tab[--stat_n];
				break;
			}
		close(e->fd);
		free(e);
		if (!stat_n) {
			free(stat_tab);	/* nothing watched: nothing kept */
			stat_tab = NULL;
			stat_cap = 0;
		}
	}
	pthread_mutex_unlock(&stat_lock);
}

struct owner {
	pid_t pid;
	struct statref *stat;	/* shared /proc/PID/stat of this process */
	uint64_t stop_ms;	/* a stop signal was delivered at this tick (events), 0: none */
};

struct wmember {
	struct owner *own;         /* grown as owners come, up to MAX_OWNERS: a fixed
				    * array made every listener's watch 56 kB */
	int nown, cap;
	enum baton_health health;
	bool down;
	uint32_t queue, stalled_ms;
	uint64_t arrived;          /* connections steered or migrated to it (eBPF counters) */
	uint64_t held_sig;         /* no counters (cBPF): the sockets its owners hold, summed */
	uint64_t progress_ms;      /* last tick at which the queue was empty or shrank */
	uint32_t pace_ms;          /* longest stall it recovered from by itself ... */
	uint64_t pace_at;          /* ... seen at this tick */
	uint64_t since_ms;         /* went down at */
	uint64_t retry_ms;         /* hung and fenced: when to try it again */
	unsigned strikes;          /* times it was fenced for hanging */
	bool kowner;               /* its owner is written in the kernel's failover map (sigdown.h) */
	int running;
	bool warned;               /* said that it is the last member up */
};

struct baton_watch {
	struct baton_group *g;
	struct baton_watch_opts o;
	struct wmember *m[BATON_MAX_SLOTS];	/* allocated while the slot holds a member:
						 * 64 structs per listener whether used or not
						 * were ~7 MB at 1,024 listeners */
	struct sigwatch_bpf *ev;   /* baton_watch_events: stop signals as they happen */
	struct ring_buffer *rb;
	uint64_t now_ms;           /* of the tick that reads the ring buffer */
};

/* new fields go after log_ctx and may not hide in padding an older library skips */
_Static_assert(sizeof(struct baton_watch_opts) == baton_offsetofend(struct baton_watch_opts, log_ctx),
	       "baton_watch_opts ends in padding");

#define LOG(w, lvl, ...) baton_logf((w)->o.log, (w)->o.log_ctx, BATON_LOG_##lvl, __VA_ARGS__)

const char *baton_health_name(enum baton_health h)
{
	switch (h) {
	case BATON_HEALTH_OK: return "ok";
	case BATON_HEALTH_STOPPED: return "owner stopped";
	case BATON_HEALTH_ZOMBIE: return "owner zombie";
	case BATON_HEALTH_GONE: return "owner gone";
	case BATON_HEALTH_HUNG: return "queue hung";
	}
	return "?";
}

struct baton_watch *baton_watch_new(struct baton_group *g, const struct baton_watch_opts *opts)
{
	struct baton_watch *w;
	int r;

	if (!g) {
		errno = EINVAL;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	if ((r = BATON_OPTS_COPY(&w->o, opts, baton_watch_opts, log_ctx))) {
		free(w);
		errno = -r;
		return NULL;
	}
	if (!w->o.hang_ms)
		w->o.hang_ms = DEFAULT_HANG_MS;
	w->g = g;
	return w;
}

/* The kernel fails a member over by itself only when it has one owner: a
 * stop of one of several (nginx's master) is not the member's stop. */
static void kernel_owner(struct baton_watch *w, int slot, struct wmember *m)
{
	__u32 tgid = m->nown == 1 ? (__u32)m->own[0].pid : 0;

	if (baton_group_sigdown_fd(w->g) < 0 || (!tgid && !m->kowner))
		return;	/* nothing written before, nothing to clear */
	if (!steer_set_owner(w->g, slot, tgid))
		m->kowner = tgid != 0;
}

static void drop_owners(struct wmember *m)
{
	int i;

	for (i = 0; i < m->nown; i++)
		stat_put(m->own[i].stat);
	free(m->own);
	m->own = NULL;
	m->nown = m->cap = 0;
}

/* The member of SLOT, made on first use; NULL if out of memory. */
static struct wmember *member(struct baton_watch *w, int slot)
{
	if (!w->m[slot])
		w->m[slot] = calloc(1, sizeof(*w->m[slot]));
	return w->m[slot];
}

/* SLOT holds no member any more: its owners are dropped (and cleared in the
 * kernel's failover map if written there) and its struct freed. */
static void forget(struct baton_watch *w, int slot)
{
	struct wmember *m = w->m[slot];

	if (!m)
		return;
	drop_owners(m);
	kernel_owner(w, slot, m);
	free(m);
	w->m[slot] = NULL;
}

void baton_watch_free(struct baton_watch *w)
{
	int s;

	if (!w)
		return;
	for (s = 0; s < BATON_MAX_SLOTS; s++)
		forget(w, s);
	ring_buffer__free(w->rb);
	sigwatch_bpf__destroy(w->ev);
	free(w);
}

static int on_stop_event(void *ctx, void *data, size_t len)
{
	const struct baton_sigwatch_event *e = data;
	struct baton_watch *w = ctx;

	if (len < sizeof(*e))
		return 0;
	for (int s = 0; s < BATON_MAX_SLOTS; s++)
		for (int i = 0; w->m[s] && i < w->m[s]->nown; i++)
			if (w->m[s]->own[i].pid == (pid_t)e->tgid)
				w->m[s]->own[i].stop_ms = w->now_ms ? w->now_ms : 1;
	return 0;
}

int baton_watch_events(struct baton_watch *w)
{
	int r;

	if (!w)
		return -EINVAL;
	if (w->rb)
		return ring_buffer__epoll_fd(w->rb);
	w->ev = sigwatch_bpf__open();
	if (!w->ev) {
		r = -errno;
		goto fail;
	}
	/* it marks stopped owners in the steering program's own map */
	if (baton_group_sigdown_fd(w->g) >= 0 &&
	    (r = bpf_map__reuse_fd(w->ev->maps.sigdown, baton_group_sigdown_fd(w->g))))
		goto fail;
	if ((r = sigwatch_bpf__load(w->ev)))
		goto fail;
	if ((r = sigwatch_bpf__attach(w->ev)))
		goto fail;
	w->rb = ring_buffer__new(bpf_map__fd(w->ev->maps.events), on_stop_event, w, NULL);
	if (!w->rb) {
		r = -errno;
		goto fail;
	}
	LOG(w, INFO, "stop signals reported as they are delivered (eBPF ring buffer), and the kernel steers "
		     "away from a stopped owner at once; polling stays for hangs");
	return ring_buffer__epoll_fd(w->rb);
fail:
	LOG(w, WARN, "no stop-signal events (%s): stopped members are found by polling alone", strerror(-r));
	sigwatch_bpf__destroy(w->ev);
	w->ev = NULL;
	return r ? r : -EIO;
}

static void reset(struct wmember *m)
{
	drop_owners(m);
	*m = (struct wmember){ 0 };
}

int baton_watch_set_owner(struct baton_watch *w, int slot, pid_t pid)
{
	struct statref *st;
	struct wmember *m;
	int i, fd;

	if (!w || pid <= 0)
		return -EINVAL;
	if ((fd = baton_group_fd(w->g, slot)) < 0)
		return fd;
	if (!(m = member(w, slot)))
		return -ENOMEM;
	for (i = 0; i < m->nown; i++)
		if (m->own[i].pid == pid)
			return 0;
	if (m->nown == MAX_OWNERS)
		return -ENOSPC;
	if (m->nown == m->cap) {
		int cap = m->cap ? 2 * m->cap : 1;
		struct owner *v = realloc(m->own, (size_t)cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->own = v;
		m->cap = cap;
	}
	if (!(st = stat_get(pid))) {
		int r = -errno;

		LOG(w, ERROR, "cannot watch pid %d: /proc/%d/stat: %s", (int)pid, (int)pid, strerror(-r));
		return r;
	}
	m->own[m->nown++] = (struct owner){ .pid = pid, .stat = st };
	kernel_owner(w, slot, m);
	return 0;
}

int baton_watch_clear_owners(struct baton_watch *w, int slot)
{
	if (!w || slot < 0 || slot >= BATON_MAX_SLOTS)
		return -EINVAL;
	if (w->m[slot]) {
		drop_owners(w->m[slot]);
		kernel_owner(w, slot, w->m[slot]);
	}
	return 0;
}

/* State letter of the process behind FD, or 0 once it has been reaped. */
static char owner_state(int fd)
{
	struct baton_proc_stat st;

	return baton_proc_stat(0, fd, &st) ? 0 : st.state;
}

/* OK while at least one owner runs; else the "liveliest" reason. */
static enum baton_health owners_health(struct wmember *m, uint64_t now)
{
	int i, stopped = 0, zombie = 0;

	m->running = 0;
	for (i = 0; i < m->nown; i++) {
		char st = owner_state(m->own[i].stat->fd);
		struct owner *o = &m->own[i];

		if (o->stop_ms && (st == 'T' || st == 't' || now - o->stop_ms >= STOP_INFLIGHT_MS))
			o->stop_ms = 0;	/* /proc tells from now on */
		if (st == 'T' || st == 't' || (o->stop_ms && st != 'Z' && st != 'X' && st))
			stopped++;
		else if (st == 'Z' || st == 'X')
			zombie++;
		else if (st)
			m->running++;
	}
	if (!m->nown || m->running)
		return BATON_HEALTH_OK;
	return stopped ? BATON_HEALTH_STOPPED : zombie ? BATON_HEALTH_ZOMBIE : BATON_HEALTH_GONE;
}

/* Progress: the queue was empty, or something left it since the last look:
 * it is shorter, or (eBPF) fewer are waiting than were waiting plus have
 * arrived since. A busy member whose queue never empties between two looks
 * still shows progress that way. A connection counted on arrival but not
 * yet through its handshake can pass for progress once; that errs on the
 * side of not fencing. */
/* The pace learnt so far, decayed: an old slow spell fades. */
static uint64_t pace_now(const struct wmember *m, uint64_t now)
{
	uint64_t halvings = now > m->pace_at ? (now - m->pace_at) / PACE_HALF_LIFE_MS : 0;

	return halvings >= 32 ? 0 : m->pace_ms >> halvings;
}

/* How long this member may go without progress before it counts as hung. */
static uint64_t hang_limit(const struct baton_watch *w, const struct wmember *m, uint64_t now)
{
	uint64_t pace = pace_now(m, now) * PACE_FACTOR;

	if (pace > PACE_MAX_MS)
		pace = PACE_MAX_MS;
	return pace > w->o.hang_ms ? pace : w->o.hang_ms;
}

struct held_ctx {
	uint64_t sum;
	unsigned n;
};

static int add_held(void *ctx, int fd, unsigned long long ino)
{
	struct held_ctx *c = ctx;

	(void)fd;
	c->sum += ino * 0x9e3779b97f4a7c15ull + (ino >> 7);	/* a set signature: order does not matter */
	c->n++;
	return 0;
}

/* The sockets M's owners (and their children, the workers) hold, as one
 * number: it changes when one of them accepts (or closes) a connection.
 * 0 if none could be read. Bounded: HELD_BUDGET entries per process. */
#define HELD_BUDGET 4096
#define HELD_KIDS 64
static uint64_t held_signature(const struct wmember *m)
{
	struct held_ctx c = { 0 };
	pid_t kids[HELD_KIDS];

	for (int i = 0; i < m->nown; i++) {
		int nk = baton_proc_children(m->own[i].pid, kids, HELD_KIDS);

		baton_proc_sockets(m->own[i].pid, HELD_BUDGET, add_held, &c);
		for (int k = 0; k < nk; k++)
			baton_proc_sockets(kids[k], HELD_BUDGET, add_held, &c);
	}
	return c.n ? c.sum + c.n : 0;
}

static bool is_stream(const struct baton_watch *w, int slot)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return !getsockopt(baton_group_fd(w->g, slot), SOL_SOCKET, SO_TYPE, &type, &len) && type == SOCK_STREAM;
}

static bool queue_hung(struct baton_watch *w, struct wmember *m, int slot, uint64_t now)
{
	struct baton_slot_stats st;
	struct baton_queue q;
	uint64_t arrived = m->arrived, held = 0;
	bool counted;

	/* a datagram socket has no accept queue: its receive buffer in bytes
	 * says nothing about a hang (and fencing it would end its flows) */
	if (!is_stream(w, slot))
		return false;
	if (baton_group_fenced(w->g, slot) || baton_group_queue(w->g, slot, &q))
		return false;	/* fenced: no queue to judge */
	counted = baton_group_stats(w->g, slot, &st) == 0;
	if (counted)
		arrived = st.selected + st.migrated;
	else if (q.len && m->queue && q.len >= m->queue && m->nown)
		/* cBPF: no arrival counters, so a loaded member whose queue
		 * never shrinks between two looks would pass for hung: its
		 * owners accepting (new sockets held) is progress too */
		held = held_signature(m);
	/* empty at the last look: whatever waits now came after it */
	if (!m->progress_ms || q.len == 0 || m->queue == 0 || q.len < m->queue ||
	    (uint64_t)q.len < m->queue + (arrived - m->arrived) || (held && m->held_sig && held != m->held_sig)) {
		/* connections waited since the last progress and it got over
		 * it unaided: that stall is part of its pace */
		if (m->progress_ms && m->queue && !m->down && m->health != BATON_HEALTH_HUNG &&
		    now - m->progress_ms > pace_now(m, now)) {
			m->pace_ms = (uint32_t)(now - m->progress_ms < UINT32_MAX ? now - m->progress_ms : UINT32_MAX);
			m->pace_at = now;
		}
		m->progress_ms = now;
	}
	m->arrived = arrived;
	m->held_sig = held;
	m->queue = q.len;
	m->stalled_ms = (uint32_t)(now - m->progress_ms);
	return m->stalled_ms >= hang_limit(w, m, now);
}

static void emit(struct baton_watch *w, enum baton_watch_event_type type, int slot, struct wmember *m,
		 uint64_t now, int err, int *count)
{
	struct baton_watch_event ev = { .type = type, .slot = slot, .why = m->health, .queue = m->queue,
					.at_ms = now, .err = err };
	static const char *const names[] = { "down", "fenced", "up", "removed" };

	if (err)
		LOG(w, ERROR, "slot %d: %s failed: %s", slot, names[type], strerror(-err));
	else
		LOG(w, INFO, "slot %d %s (%s, queue %u)", slot, names[type], baton_health_name(m->health),
		    m->queue);
	(*count)++;
	if (w->o.on_event)
		w->o.on_event(w->o.ctx, &ev);
}

/* Another member that is up: only then is steering away worth anything.
 * One held in reserve takes nothing, so it does not count. */
static bool others_up(const struct baton_watch *w, int slot)
{
	for (int s = 0; s < BATON_MAX_SLOTS; s++)
		if (s != slot && baton_group_fd(w->g, s) >= 0 && !(w->m[s] && w->m[s]->down) &&
		    !(baton_group_flags(w->g, s) & BATON_SLOT_RESERVE))
			return true;
	return false;
}

static void go_down(struct baton_watch *w, int slot, struct wmember *m, uint64_t now, int *count)
{
	int r;

	if (w->o.keep_gone && (m->health == BATON_HEALTH_GONE || m->health == BATON_HEALTH_ZOMBIE))
		return;	/* the caller handles owners that exit (a supervisor restarts them) */
	if (!others_up(w, slot) && m->health != BATON_HEALTH_GONE) {
		/* the last member up keeps its listener: fencing it would move
		 * its queue nowhere and refuse what comes next */
		if (!m->warned)
			LOG(w, WARN, "slot %d is unhealthy (%s) but no other member is up; it keeps its traffic",
			    slot, baton_health_name(m->health));
		m->warned = true;
		return;
	}
	m->warned = false;

	/* steer first: from this update on no new connection lands here */
	r = baton_group_set_down(w->g, slot, true);
	m->down = true;
	m->since_ms = now;
	emit(w, BATON_WATCH_DOWN, slot, m, now, r, count);
	if (m->health == BATON_HEALTH_GONE && !w->o.keep_gone) {
		/* fence, then close our copy: the queue migrates even if some
		 * process we do not know of still holds the socket */
		r = baton_group_fence(w->g, slot);
		if (!r)
			r = baton_group_remove(w->g, slot);
		emit(w, BATON_WATCH_REMOVED, slot, m, now, r, count);
		reset(m);
		return;
	}
	if (w->o.no_fence)
		return;
	r = baton_group_fence(w->g, slot);
	emit(w, BATON_WATCH_FENCED, slot, m, now, r, count);
	if (m->health == BATON_HEALTH_HUNG) {
		uint64_t wait = (uint64_t)w->o.hang_ms * 10u << (m->strikes < 8 ? m->strikes : 8);

		m->strikes++;
		m->retry_ms = now + (wait < RETRY_MAX_MS ? wait : RETRY_MAX_MS);
	}
}

static void go_up(struct baton_watch *w, int slot, struct wmember *m, uint64_t now, int *count)
{
	int r = baton_group_unfence(w->g, slot);

	if (!r)
		r = baton_group_set_down(w->g, slot, false);
	if (r) {
		emit(w, BATON_WATCH_UP, slot, m, now, r, count);
		return;
	}
	m->health = BATON_HEALTH_OK;
	m->down = false;
	m->since_ms = 0;
	m->progress_ms = now;	/* a fresh start for the hang clock */
	m->stalled_ms = 0;
	emit(w, BATON_WATCH_UP, slot, m, now, 0, count);
}

static void check(struct baton_watch *w, int slot, uint64_t now, int *count)
{
	struct wmember *m = w->m[slot];
	enum baton_health h;
	bool hung;

	if (w->o.owned_only && !m->nown)
		return;
	h = owners_health(m, now);
	hung = queue_hung(w, m, slot, now);

	if (!m->down) {
		if (h == BATON_HEALTH_OK && hung)
			h = BATON_HEALTH_HUNG;
		m->health = h;
		if (h != BATON_HEALTH_OK)
			go_down(w, slot, m, now, count);
		return;
	}
	/* down: is it back? */
	if (h == BATON_HEALTH_GONE && m->health != BATON_HEALTH_GONE && !w->o.keep_gone) {
		m->down = false;	/* re-enter as gone: removed */
		m->health = h;
		go_down(w, slot, m, now, count);
		return;
	}
	if (h != BATON_HEALTH_OK) {
		if (m->health == BATON_HEALTH_HUNG)
			m->health = h;	/* the owner stopped meanwhile: that is the reason now */
		return;
	}
	if (m->health == BATON_HEALTH_HUNG) {
		/* no_fence: the queue shows it; fenced: nothing shows it, so try
		 * again after a backoff (if it still hangs, it is fenced again
		 * and what it queued moves again) */
		if (baton_group_fenced(w->g, slot) ? now < m->retry_ms : hung)
			return;
	}
	go_up(w, slot, m, now, count);
}

int baton_watch_tick(struct baton_watch *w, uint64_t now_ms)
{
	int slot, count = 0;

	if (!w)
		return -EINVAL;
	if (w->rb) {
		w->now_ms = now_ms;
		ring_buffer__consume(w->rb);
	}
	for (slot = 0; slot < BATON_MAX_SLOTS; slot++) {
		if (baton_group_fd(w->g, slot) < 0) {
			if (w->m[slot]) {
				reset(w->m[slot]);
				w->m[slot]->kowner = true;	/* cleared in the map too */
				forget(w, slot);
			}
			continue;
		}
		if (member(w, slot))	/* out of memory: looked at next tick */
			check(w, slot, now_ms, &count);
	}
	return count;
}

int baton_watch_health(const struct baton_watch *w, int slot, struct baton_member_health *h)
{
	int r = baton_watch_health_info(w, slot, h, BATON_MEMBER_HEALTH_SZ_0_1);

	return r < 0 ? r : 0;
}

int baton_watch_health_info(const struct baton_watch *w, int slot, struct baton_member_health *out, size_t len)
{
	static const struct wmember none;	/* a slot not looked at yet */
	struct baton_member_health h;
	const struct wmember *m;
	int r;

	if (!w || !out || len < BATON_MEMBER_HEALTH_SZ_0_1)
		return -EINVAL;
	if ((r = baton_group_fd(w->g, slot)) < 0)
		return r;
	m = w->m[slot] ? w->m[slot] : &none;
	memset(&h, 0, sizeof(h));	/* padding too: it is copied out */
	h.health = m->health;
	h.down = m->down;
	h.fenced = baton_group_fenced(w->g, slot);
	h.queue = m->queue;
	h.stalled_ms = m->stalled_ms;
	h.nowners = m->nown;
	h.owners_running = m->running;
	h.since_ms = m->since_ms;
	return baton_out_copy(out, len, &h, sizeof(h), BATON_MEMBER_HEALTH_SZ_0_1);
}
