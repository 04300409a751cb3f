/* SPDX-License-Identifier: BSD-2-Clause */
/* The handover protocol on the wire, in one place: libbaton (lib/handover.c),
 * the standalone reference server and the fuzzer all build on it, and a
 * server that does not link libbaton can speak the protocol with this header
 * alone (libc only, every function static inline).
 *
 * A unix stream socket; every message is a 16-byte header in the host's byte
 * order (both ends are on one host), then LEN payload bytes:
 *
 *   magic "BTNH" (4 bytes) | version u16 (1) | type u16 | count u32 | len u32
 *
 *   HELLO  taker -> offerer   count 0, len 0: "send me your sockets"
 *   FDS    offerer -> taker   count = number of fds, 1 to 253 (SCM_MAX_FD),
 *                             passed in ONE SCM_RIGHTS control message with
 *                             the header; payload = COUNT names, each
 *                             NUL-terminated (LISTEN_FDNAMES rules: 1 to 255
 *                             printable ASCII characters, no ':')
 *   ACK    taker -> offerer   count = fds received: "I have them and serve"
 *   ERROR  either way         count = an errno value, payload = the reason
 *                             (up to 512 bytes of text, no NUL needed)
 *
 * Each side checks the other's credentials (SO_PEERCRED): the peer must run
 * as the same uid or as root. A side that refuses sends ERROR, then closes. */
#ifndef BATON_HANDOVER_WIRE_H
#define BATON_HANDOVER_WIRE_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define BATON_HANDOVER_MAGIC "BTNH"
#define BATON_HANDOVER_VERSION 1
#define BATON_HANDOVER_MAX_FDS 253       /* SCM_MAX_FD: the most one message can carry */
#define BATON_HANDOVER_NAME_MAX 255      /* as systemd's FDNAME_MAX */
#define BATON_HANDOVER_PAYLOAD_MAX (BATON_HANDOVER_MAX_FDS * (BATON_HANDOVER_NAME_MAX + 1))
#define BATON_HANDOVER_ERRTEXT_MAX 512
/* A convention, not part of the wire: a server that re-executes itself puts
 * the path it offers at in this variable of its successor's environment. */
#define BATON_HANDOVER_ENV "BATON_HANDOVER_FROM"

enum baton_handover_type {
	BATON_HANDOVER_HELLO = 1,
	BATON_HANDOVER_FDS = 2,
	BATON_HANDOVER_ACK = 3,
	BATON_HANDOVER_ERROR = 4,
};

struct baton_handover_hdr {
	char magic[4];
	uint16_t version;
	uint16_t type;
	uint32_t count;
	uint32_t len;
};

#ifdef __cplusplus
static_assert(sizeof(struct baton_handover_hdr) == 16, "the header is 16 bytes on the wire");
#else
_Static_assert(sizeof(struct baton_handover_hdr) == 16, "the header is 16 bytes on the wire");
#endif

static inline struct baton_handover_hdr baton_handover_hdr_make(enum baton_handover_type type, uint32_t count,
								  uint32_t len)
{
	struct baton_handover_hdr h;

	memcpy(h.magic, BATON_HANDOVER_MAGIC, 4);
	h.version = BATON_HANDOVER_VERSION;
	h.type = (uint16_t)type;
	h.count = count;
	h.len = len;
	return h;
}

static inline const char *baton_handover_type_name(unsigned type)
{
	switch (type) {
	case BATON_HANDOVER_HELLO: return "HELLO";
	case BATON_HANDOVER_FDS: return "FDS";
	case BATON_HANDOVER_ACK: return "ACK";
	case BATON_HANDOVER_ERROR: return "ERROR";
	default: return "unknown";
	}
}

/* Checks a received header against what may come next: magic, version,
 * the type WANT (an ERROR is always acceptable), and count and len within
 * the limits of the type (MAX_FDS: the most fds this side takes). Returns 0
 * or -EBADMSG (not this protocol, or a malformed header), -EPROTONOSUPPORT
 * (another version), -E2BIG (more fds than MAX_FDS), with the reason in ERR. */
static inline int baton_handover_hdr_check(const struct baton_handover_hdr *h, enum baton_handover_type want,
					   unsigned max_fds, char *err, size_t errlen)
{
	if (max_fds > BATON_HANDOVER_MAX_FDS)
		max_fds = BATON_HANDOVER_MAX_FDS;
	if (memcmp(h->magic, BATON_HANDOVER_MAGIC, 4)) {
		snprintf(err, errlen, "not a baton handover peer: magic %02x %02x %02x %02x, expected \"%s\"",
			 (unsigned char)h->magic[0], (unsigned char)h->magic[1], (unsigned char)h->magic[2],
			 (unsigned char)h->magic[3], BATON_HANDOVER_MAGIC);
		return -EBADMSG;
	}
	if (h->version != BATON_HANDOVER_VERSION) {
		snprintf(err, errlen, "peer speaks handover protocol version %u; this side speaks version %u",
			 (unsigned)h->version, (unsigned)BATON_HANDOVER_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (h->type == BATON_HANDOVER_ERROR) {
		if (h->count == 0 || h->count > 4095 || h->len > BATON_HANDOVER_ERRTEXT_MAX) {
			snprintf(err, errlen, "malformed ERROR message (errno %u, %u bytes of text)",
				 (unsigned)h->count, (unsigned)h->len);
			return -EBADMSG;
		}
		return 0;
	}
	if (h->type != want) {
		snprintf(err, errlen, "expected %s, got %s (message type %u)", baton_handover_type_name(want),
			 baton_handover_type_name(h->type), (unsigned)h->type);
		return -EBADMSG;
	}
	switch (want) {
	case BATON_HANDOVER_HELLO:
		if (h->count || h->len) {
			snprintf(err, errlen, "malformed HELLO message (count %u, len %u; both must be 0)",
				 (unsigned)h->count, (unsigned)h->len);
			return -EBADMSG;
		}
		return 0;
	case BATON_HANDOVER_ACK:
		if (h->len) {
			snprintf(err, errlen, "malformed ACK message (len %u, must be 0)", (unsigned)h->len);
			return -EBADMSG;
		}
		return 0;
	case BATON_HANDOVER_FDS:
		if (h->count == 0) {
			snprintf(err, errlen, "FDS message announces no fds");
			return -EBADMSG;
		}
		if (h->count > max_fds) {
			snprintf(err, errlen, "offerer announces %u fds, more than the %u this side takes",
				 (unsigned)h->count, max_fds);
			return -E2BIG;
		}
		if (h->len < 2 * h->count || h->len > h->count * (BATON_HANDOVER_NAME_MAX + 1)) {
			snprintf(err, errlen, "%u bytes of names cannot name %u fds", (unsigned)h->len,
				 (unsigned)h->count);
			return -EBADMSG;
		}
		return 0;
	default:
		snprintf(err, errlen, "unknown message type %u", (unsigned)want);
		return -EBADMSG;
	}
}

/* Whether the LEN bytes at S are a valid fd name. */
static inline bool baton_handover_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > BATON_HANDOVER_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == ':')
			return false;
	return true;
}

/* Splits the payload of an FDS message (LEN bytes at BUF) into exactly
 * COUNT names: NAMES[i] points into BUF. Returns 0, or -EBADMSG with the
 * reason in ERR when the names do not match the count or one is invalid. */
static inline int baton_handover_names_parse(const char *buf, size_t len, uint32_t count, const char **names,
					     char *err, size_t errlen)
{
	size_t off = 0;
	uint32_t i;

	for (i = 0; i < count; i++) {
		const char *nul = off < len ? (const char *)memchr(buf + off, '\0', len - off) : NULL;

		if (!nul) {
			snprintf(err, errlen, "names end after %u of %u fds", (unsigned)i, (unsigned)count);
			return -EBADMSG;
		}
		if (!baton_handover_name_ok(buf + off, (size_t)(nul - (buf + off)))) {
			snprintf(err, errlen, "name %u is not a valid fd name (1 to %d printable characters, no ':')",
				 (unsigned)i, BATON_HANDOVER_NAME_MAX);
			return -EBADMSG;
		}
		names[i] = buf + off;
		off = (size_t)(nul - buf) + 1;
	}
	if (off != len) {
		snprintf(err, errlen, "%zu bytes left after the %u names the fd count announces", len - off,
			 (unsigned)count);
		return -EBADMSG;
	}
	return 0;
}

/* SO_PEERCRED's answer: the layout of struct ucred, which glibc declares
 * only under _GNU_SOURCE. */
struct baton_handover_cred {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/* The peer of unix socket FD, allowed when it runs as our effective uid or
 * as root. Returns 0, -EPERM naming the peer's uid, or -errno. */
static inline int baton_handover_peer_check(int fd, struct baton_handover_cred *uc, char *err, size_t errlen)
{
	socklen_t len = sizeof(*uc);
	uid_t me = geteuid();

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &len)) {
		int e = errno;

		snprintf(err, errlen, "cannot read the peer's credentials: %s", strerror(e));
		return -e;
	}
	if (uc->uid != me && uc->uid != 0) {
		snprintf(err, errlen, "peer pid %d runs as uid %u, not as uid %u or root: refused", (int)uc->pid,
			 (unsigned)uc->uid, (unsigned)me);
		return -EPERM;
	}
	return 0;
}

static inline long long baton_handover_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Waits for EVENTS on FD until DEADLINE_MS (monotonic; -1: no limit).
 * Returns 0 when ready, -ETIMEDOUT, or -errno. */
static inline int baton_handover_wait(int fd, short events, long long deadline_ms)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long long left = deadline_ms < 0 ? -1 : deadline_ms - baton_handover_now_ms();
		int r;

		if (deadline_ms >= 0 && left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > 1000000000 ? 1000000000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Sends one message: header H, then PAYLOAD (H->len bytes), with the NFDS
 * fds FDS in one SCM_RIGHTS control message on the first byte. FD may be
 * non-blocking: the rest waits for room until DEADLINE_MS. Returns 0 or
 * -errno (-ETIMEDOUT, -EPIPE when the peer is gone). */
static inline int baton_handover_send(int fd, const struct baton_handover_hdr *h, const void *payload,
				      const int *fds, size_t nfds, long long deadline_ms)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * BATON_HANDOVER_MAX_FDS)];
	} ctl;
	struct iovec iov[2] = { { (void *)h, sizeof(*h) }, { (void *)payload, h->len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)(payload && h->len ? 2 : 1) };
	size_t total = sizeof(*h) + (payload ? h->len : 0), sent = 0;

	if (nfds > BATON_HANDOVER_MAX_FDS)
		return -E2BIG;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while (sent < total) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if ((r = baton_handover_wait(fd, POLLOUT, deadline_ms)))
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		sent += (size_t)n;
		/* the fds went with the first byte; the rest is plain data */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			size_t take = (size_t)n < mh.msg_iov[0].iov_len ? (size_t)n : mh.msg_iov[0].iov_len;

			mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + take;
			mh.msg_iov[0].iov_len -= take;
			n -= (ssize_t)take;
			if (!mh.msg_iov[0].iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

/* Fds that arrived while receiving, up to CAP of them. */
struct baton_handover_fdset {
	int *fds;
	size_t n, cap;
	bool truncated;    /* MSG_CTRUNC, or more fds than CAP: the rest are lost */
};

static inline void baton_handover_fdset_close(struct baton_handover_fdset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		close(s->fds[i]);
	s->n = 0;
}

/* Receives exactly LEN bytes into BUF until DEADLINE_MS, keeping any fds
 * that come along in SET (O_CLOEXEC; when SET is NULL the kernel drops
 * them). Returns 0, -ETIMEDOUT, -ECONNRESET when the peer hangs up first
 * (*GOT says how much came), -EMSGSIZE when fds were cut off (set->truncated),
 * or -errno. On failure the fds in SET stay for the caller to close. */
static inline int baton_handover_recv(int fd, void *buf, size_t len, struct baton_handover_fdset *set,
				      long long deadline_ms, size_t *got)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * BATON_HANDOVER_MAX_FDS)];
	} ctl;

	*got = 0;
	while (*got < len) {
		struct iovec iov = { (char *)buf + *got, len - *got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct cmsghdr *c;
		ssize_t n;
		int r;

		if (set) {
			size_t room = set->cap > set->n ? set->cap - set->n : 0;

			mh.msg_control = ctl.buf;
			/* room for exactly what may still come: more is cut off
			 * by the kernel (MSG_CTRUNC) and never installed */
			mh.msg_controllen = room ? CMSG_SPACE(sizeof(int) * room) : 0;
		}
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if ((r = baton_handover_wait(fd, POLLIN, deadline_ms)))
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		for (c = mh.msg_controllen ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				size_t i, k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (i = 0; i < k; i++) {
					int f;

					memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
					if (set->n < set->cap)
						set->fds[set->n++] = f;
					else {
						close(f);
						set->truncated = true;
					}
				}
			}
		}
		if (set && (mh.msg_flags & MSG_CTRUNC))
			set->truncated = true;
		if (set && set->truncated)
			return -EMSGSIZE;
		if (n == 0)
			return -ECONNRESET;
		*got += (size_t)n;
	}
	return 0;
}

#endif
