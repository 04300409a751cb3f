/* SPDX-License-Identifier: BSD-2-Clause */
/* Idle-connection handoff: what the supervisor (supervisor/handoff.c) and the
 * preload shim (preload/handoff.c) share. A file mapped by both (who drains,
 * the wake connections in flight, counters, each generation's channel) and
 * the messages over a generation's channel. Both sides come from one build. */
#ifndef BATON_HANDOFF_WIRE_H
#define BATON_HANDOFF_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define HANDOFF_MAGIC 0x62686f31u     /* "bho1" */
#define HANDOFF_GENS 16               /* = MAX_GENS: indexed by the generation's slot */
#define HANDOFF_WAKES 256             /* handed-off connections in flight, at most */
/* The supervisor keeps a connection waiting in the serving generation's
 * channel that long before it gives up on it; a wake without an answer is
 * made again after HANDOFF_REWAKE_MS (the first one was accepted by a
 * process outside the generation, or lost). */
#define HANDOFF_TTL_MS 3000
#define HANDOFF_REWAKE_MS 300

/* One connection in flight: the supervisor's wake connection to the serving
 * generation, known by its source address, and the token of the handed-off
 * connection waiting for it. token 0: free. The supervisor writes addr and
 * port first and token last (release); the shim reads token first
 * (acquire) and again after comparing. */
struct handoff_wake {
	uint32_t token;
	uint16_t family;
	uint16_t port;                /* network order, as accept() reports it */
	uint8_t addr[16];
};

/* A generation's channel (a SOCK_SEQPACKET socketpair the supervisor made
 * before starting it), at the map index the generation was given at its
 * start (its SLOT in BATON_HANDOFF, also its draining and answered entry):
 * the fd numbers it has in the generation and their
 * inodes, so that a supervisor that was restarted or re-executed takes
 * both back with pidfd_getfd and knows them, and the shim knows its fd is
 * still the one it was given. [0]: the generation's end, [1]: the
 * supervisor's end, which the generation keeps open for that. */
struct handoff_chan {
	int32_t fd[2];
	uint32_t id;                  /* the generation's id: a resumed supervisor may put it in another slot */
	uint64_t ino[2];
	/* The generation started next (ALT_ID) got a copy of the supervisor's
	 * end too, at ALT_FD: what this one gives while no supervisor runs
	 * outlives it, if it exits before the next supervisor comes. */
	int32_t alt_fd;
	uint32_t alt_id;
};

/* The shared file, $BATON_RUNTIME_DIR/NAME.handoff-map. Counters are
 * cumulative over the supervisor's life (a `baton upgrade` keeps them).
 * New fields go at the end: a generation started by an older baton reads
 * the beginning only. */
struct handoff_map {
	uint32_t magic;
	uint32_t nwake;                       /* wake entries in use: 0 lets accept() skip the scan */
	uint32_t draining[HANDOFF_GENS];      /* id of the generation in that slot once it is told to
					       * stop while another serves; 0: it serves or is starting */
	uint64_t answered[HANDOFF_GENS];      /* shims: answers written on connections the generation
					       * in that slot took over (reset when the slot is reused) */
	uint64_t unreachable;                 /* shims: a give that could not reach the supervisor */
	uint64_t take_failed;                 /* shims: a wake recognised but no connection came back */
	struct handoff_wake wake[HANDOFF_WAKES];
	struct handoff_chan chan[HANDOFF_GENS];
	/* The give the supervisor is moving from a channel to the serving
	 * generation's: it reads a give with MSG_PEEK, queues the connection
	 * in the serving generation, notes that here, and only then takes the
	 * give off its channel. A supervisor killed in between leaves the give
	 * queued; its successor skips the one whose socket (inode) this names
	 * as sent, so a connection is neither lost nor handed off twice. A
	 * kill during the send leaves moving_sent 0 with the connection
	 * queued: the successor sets it when it finds that socket in the
	 * serving generation's queue (it reads that queue first). */
	uint64_t moving_ino;
	uint32_t moving_sent;
};

/* Messages over a generation's channel (SOCK_SEQPACKET: one message per
 * send, whichever process of the generation sends it). Only the supervisor
 * and the generation hold the channel, so it names the generation that
 * speaks; the gen field is informative only.
 * Shim to supervisor: GIVE carries an idle connection (SCM_RIGHTS); TOOK
 * says a CONN was taken (no fd); BACK returns a CONN the shim could not use
 * (another listener's) with its fd.
 * Supervisor to shim: CONN carries a handed-off connection, queued in the
 * serving generation's channel before its wake connection is made, so it
 * survives a supervisor that dies meanwhile. */
enum { HANDOFF_GIVE = 1, HANDOFF_CONN = 3, HANDOFF_TOOK = 4, HANDOFF_BACK = 5 };

struct handoff_msg {
	uint32_t op;
	uint32_t listener;            /* index of the --listen, = its entry in BATON_PRELOAD */
	uint32_t gen;                 /* the sender's BATON_GENERATION (supervisor: the receiver's) */
	uint32_t token;               /* CONN, TOOK, BACK: the connection's */
};

/* Checks a message as it came off a channel: N bytes, NFD descriptors
 * attached (or MSG_CTRUNC'd, TRUNC set). 0 if it is well formed for a
 * receiver that accepts the ops in the bit set WANT, else -1. One function
 * for the supervisor, the shim and the fuzz target. */
/* Room for one SCM_RIGHTS descriptor. */
union handoff_cbuf {
	struct cmsghdr h;
	char buf[CMSG_SPACE(sizeof(int))];
};

/* Fills MH (with IOV and U, which must outlive it) to send M, with FD as
 * SCM_RIGHTS or none when FD < 0: the supervisor and the shim send alike. */
static inline void handoff_msghdr(struct msghdr *mh, struct iovec *iov, union handoff_cbuf *u,
				  const struct handoff_msg *m, int fd)
{
	*iov = (struct iovec){ .iov_base = (void *)m, .iov_len = sizeof(*m) };
	memset(mh, 0, sizeof(*mh));
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(u, 0, sizeof(*u));
		mh->msg_control = u->buf;
		mh->msg_controllen = sizeof(u->buf);
		c = CMSG_FIRSTHDR(mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
}

/* The first descriptor a received message MH carried, or -1; any more are
 * closed with CLOSEFN (the shim's must not go through its own close()),
 * and *NFD counts them all. */
static inline int handoff_cmsg_fd(struct msghdr *mh, int (*closefn)(int), int *nfd)
{
	int got = -1;

	*nfd = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t j = 0; j < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); j++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			if (got < 0)
				got = f;
			else
				closefn(f);
			++*nfd;
		}
	}
	return got;
}

static inline int handoff_msg_check(const struct handoff_msg *m, long n, int nfd, int trunc, unsigned want)
{
	if (n != (long)sizeof(*m) || trunc || m->op > 31 || !(want & (1u << m->op)))
		return -1;
	if (m->op == HANDOFF_TOOK)
		return nfd == 0 && m->token ? 0 : -1;
	return nfd == 1 && (m->op == HANDOFF_GIVE || m->token) ? 0 : -1;
}

/* BATON_HANDOFF=v2;SLOT;L,L,...;FD;KEEPFD;PREVFD;MAP, the generation's
 * side: its slot, the listeners that opted in (indexes of --listen), its
 * end of the channel, the supervisor's end it keeps (-1: none), the
 * previous generation's supervisor end it keeps (-1: none), the map's path. */
#define HANDOFF_MAX_LISTENERS 4096
struct handoff_env {
	int slot, fd, keep, prev;
	uint8_t opted[HANDOFF_MAX_LISTENERS / 8];
	char map[4096];
};

static inline bool handoff_env_opted(const struct handoff_env *e, long l)
{
	return l >= 0 && l < HANDOFF_MAX_LISTENERS && (e->opted[l / 8] >> (l % 8) & 1);
}

/* A decimal at S (at most 9 digits, an optional leading '-'), its end in
 * *END; no number: -2 and *END = S. No strtol: the text may be unterminated
 * in a fuzz run only up to its NUL. */
static inline long handoff_env_num(const char *s, const char **end)
{
	long v = 0;
	int neg = *s == '-', n = 0;

	for (*end = s + neg; **end >= '0' && **end <= '9' && n < 9; ++*end, n++)
		v = v * 10 + (**end - '0');
	if (!n) {
		*end = s;
		return -2;
	}
	return neg ? -v : v;
}

/* Parses ENV for a generation of NLISTEN listeners: 0, or -1 if it is not
 * well formed (nothing of it is to be used then). */
static inline int handoff_env_parse(const char *env, long nlisten, struct handoff_env *out)
{
	const char *p, *e;
	long v;
	size_t ml;

	memset(out, 0, sizeof(*out));
	if (!env || strncmp(env, "v2;", 3))
		return -1;
	v = handoff_env_num(env + 3, &e);
	if (v < 0 || v >= HANDOFF_GENS || *e != ';')
		return -1;
	out->slot = (int)v;
	for (p = e + 1; *p && *p != ';'; p = *e == ',' ? e + 1 : e) {
		v = handoff_env_num(p, &e);
		if (v < 0 || v >= nlisten || v >= HANDOFF_MAX_LISTENERS || (*e != ',' && *e != ';'))
			return -1;
		out->opted[v / 8] |= (uint8_t)(1u << (v % 8));
	}
	if (*p != ';')
		return -1;
	v = handoff_env_num(p + 1, &e);
	if (v < 0 || v > 65535 || *e != ';')
		return -1;
	out->fd = (int)v;
	v = handoff_env_num(e + 1, &e);
	if (v < -1 || v > 65535 || *e != ';')
		return -1;
	out->keep = (int)v;
	v = handoff_env_num(e + 1, &e);
	if (v < -1 || v > 65535 || *e != ';')
		return -1;
	out->prev = (int)v;
	ml = strlen(e + 1);
	if (e[1] != '/' || ml >= sizeof(out->map))
		return -1;
	memcpy(out->map, e + 1, ml + 1);
	return 0;
}

#endif
