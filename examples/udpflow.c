/* SPDX-License-Identifier: BSD-2-Clause */
/* udpflow: a flow-stateful UDP server for baton's flow tests and benchmark.
 * A datagram "FLOW SEQ" opens flow FLOW at SEQ 0; later ones must follow on
 * the generation that saw SEQ 0, else the answer is "misrouted". QUIC-shaped
 * datagrams (long header: client's first packet; short header: 0x40 and the
 * 8-byte connection ID this server issued, its first byte the generation's
 * BATON_QUIC_CID_BYTE) carry the same text. --echo answers every datagram
 * with itself (the benchmark). Sockets from LISTEN_FDS, READY=1 on
 * NOTIFY_SOCKET; SIGTERM ends it. Standalone: libc only. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 16
#define TABLE (1u << 18)	/* flows remembered (open addressing, power of two) */
#define BATCH 32

static volatile sig_atomic_t stop;

struct flow {
	uint32_t id;	/* 0: empty */
	uint32_t next;	/* the SEQ expected next */
};

static struct flow *flows;
static int gen, marker = -1;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static struct flow *flow_find(uint32_t id, int add)
{
	uint32_t h = id * 2654435761u, i;

	for (i = 0; i < TABLE; i++) {
		struct flow *f = &flows[(h + i) & (TABLE - 1)];

		if (f->id == id)
			return f;
		if (!f->id) {
			if (!add)
				return NULL;
			f->id = id;
			return f;
		}
	}
	return NULL;	/* full: counted as misrouted by the caller, never silently */
}

/* sd_notify(3) without libsystemd */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len;
	int fd;

	if (!path || (len = strlen(path)) == 0 || len >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	if (fd >= 0)
		close(fd);
}

/* Where the text starts in D (LEN bytes), and whether the client needs a
 * connection ID: -1 for a datagram that is none of the shapes. */
static int text_at(const unsigned char *d, size_t len, int *want_cid)
{
	size_t at;

	*want_cid = 0;
	if (len && (d[0] & 0x80)) {	/* long header: flags, version, DCID, SCID */
		if (len < 7)
			return -1;
		at = 6 + d[5];
		if (at >= len)
			return -1;
		at += 1 + d[at];
		*want_cid = 1;
		return at <= len ? (int)at : -1;
	}
	if (len && (d[0] & 0x40))	/* short header: flags and our 8-byte CID */
		return len >= 9 ? 9 : -1;
	return 0;
}

static size_t answer(const unsigned char *d, size_t len, char *out, size_t outlen)
{
	char text[64];
	int at, want_cid, n;
	unsigned long id, seq;
	struct flow *f;
	const char *verdict = "ok";

	at = text_at(d, len, &want_cid);
	if (at < 0 || len - (size_t)at >= sizeof(text))
		return (size_t)snprintf(out, outlen, "bad %d", gen);
	memcpy(text, d + at, len - (size_t)at);
	text[len - (size_t)at] = '\0';
	if (sscanf(text, "%lu %lu", &id, &seq) != 2 || !id || id > UINT32_MAX)
		return (size_t)snprintf(out, outlen, "bad %d", gen);
	f = flow_find((uint32_t)id, seq == 0);
	if (!f || (seq && f->next != seq))
		verdict = "misrouted";	/* this generation never saw the flow start, or lost its place */
	else
		f->next = (uint32_t)seq + 1;
	n = snprintf(out, outlen, "%s %d %lu %lu", verdict, gen, id, seq);
	if (want_cid && n > 0 && (size_t)n < outlen)
		/* the CID this server issues: the marker, then the flow id */
		n += snprintf(out + n, outlen - (size_t)n, " cid=%02x%014lx", marker < 0 ? 0 : marker, id);
	return n < 0 ? 0 : (size_t)n;
}

int main(int argc, char **argv)
{
	const char *e;
	int echo = argc > 1 && !strcmp(argv[1], "--echo");
	int nfds, i, ep;

	if (argc > 1 && !echo) {
		fprintf(stderr, "usage: udpflow [--echo]  (sockets from LISTEN_FDS)\n");
		return 2;
	}
	e = getenv("LISTEN_FDS");
	nfds = e ? atoi(e) : 0;
	if (nfds < 1 || nfds > MAX_FDS) {
		fprintf(stderr, "udpflow: LISTEN_FDS=%s: want 1 to %d UDP sockets from fd 3\n", e ? e : "(unset)",
			MAX_FDS);
		return 2;
	}
	gen = (e = getenv("BATON_GENERATION")) ? atoi(e) : 0;
	marker = (e = getenv("BATON_QUIC_CID_BYTE")) ? atoi(e) : -1;
	flows = calloc(TABLE, sizeof(*flows));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!flows || ep < 0)
		return 1;
	for (i = 0; i < nfds; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = 3 + i };

		int big = 8 << 20;

		/* a burst of a thousand flows must not overflow the socket: as
		 * root past net.core.rmem_max, else as far as it allows */
		if (setsockopt(3 + i, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
			setsockopt(3 + i, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		fcntl(3 + i, F_SETFL, fcntl(3 + i, F_GETFL) | O_NONBLOCK);
		fcntl(3 + i, F_SETFD, FD_CLOEXEC);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, 3 + i, &ev)) {
			perror("udpflow: epoll_ctl");
			return 1;
		}
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	notify("READY=1");
	while (!stop) {
		struct epoll_event evs[MAX_FDS];
		int n = epoll_wait(ep, evs, MAX_FDS, 200);

		for (i = 0; i < n; i++) {
			struct mmsghdr in[BATCH], out[BATCH];
			struct sockaddr_storage from[BATCH];
			struct iovec iv[BATCH], ov[BATCH];
			unsigned char buf[BATCH][512];
			char reply[BATCH][128];
			int got, k;

			memset(in, 0, sizeof(in));
			for (k = 0; k < BATCH; k++) {
				iv[k] = (struct iovec){ buf[k], sizeof(buf[k]) };
				in[k].msg_hdr = (struct msghdr){ .msg_name = &from[k], .msg_namelen = sizeof(from[k]),
								  .msg_iov = &iv[k], .msg_iovlen = 1 };
			}
			while ((got = recvmmsg(evs[i].data.fd, in, BATCH, MSG_DONTWAIT, NULL)) > 0) {
				for (k = 0; k < got; k++) {
					size_t len = echo ? in[k].msg_len : answer(buf[k], in[k].msg_len, reply[k], sizeof(reply[k]));

					ov[k] = echo ? (struct iovec){ buf[k], len } : (struct iovec){ reply[k], len };
					out[k].msg_hdr = (struct msghdr){ .msg_name = &from[k],
									   .msg_namelen = in[k].msg_hdr.msg_namelen,
									   .msg_iov = &ov[k], .msg_iovlen = 1 };
				}
				sendmmsg(evs[i].data.fd, out, (unsigned)got, MSG_DONTWAIT);
				for (k = 0; k < got; k++)
					in[k].msg_hdr.msg_namelen = sizeof(from[k]);
			}
		}
	}
	return 0;
}
