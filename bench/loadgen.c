/* SPDX-License-Identifier: BSD-2-Clause */
/* loadgen: a counting HTTP/1.1 load client for loopback. Every request ends
 * exactly once as answered or as one kind of failure, so a test can say "not
 * one request failed while the server was reloaded". Standalone: libc only.
 * Non-blocking, one epoll loop; new connection per request, or keep-alive. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "numarg.h"

#define RESP_MAX 4096          /* kept of each answer: its header and the start of its body */
#define MAX_TAGS 64
#define TAG_LEN 64
#define MAX_PIDS 1024
#define SIG_KEY UINT64_MAX

enum outcome { O_ANSWERED, O_REFUSED, O_RESET, O_TIMEOUT, O_TRUNCATED, O_OTHER, O_N };
static const char *const outcome_name[O_N] = { "answered", "refused", "reset", "timeout", "truncated",
					       "other_error" };

enum lstate { L_IDLE, L_CONNECTING, L_SENDING, L_READING };

struct lane {
	int fd;                     /* -1: no connection */
	enum lstate st;
	bool active;                /* a request is in flight on this lane */
	bool retry;                 /* this request is the one retry after closed_idle */
	unsigned answers_on_conn;   /* responses already read on this connection */
	long long start_us, deadline_us;
	size_t sent, got;           /* got: bytes kept in buf */
	unsigned long long rcvd;    /* bytes of this answer received, kept or not */
	struct lane *tprev, *tnext; /* deadline order */
	char buf[RESP_MAX];
};

struct opts {
	const char *host;
	int port;
	bool keepalive;
	int concurrency;
	double duration_s;
	long long max_requests;
	int timeout_ms;
	bool json, quiet;
};

struct loadgen {
	struct opts o;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	bool rotate_src;            /* bind to 127.0.0.1..250 in turn */
	unsigned src_next;
	char req[512];
	size_t reqlen;
	int ep, sigfd;
	struct lane *lanes;
	int *idle, nidle;           /* lanes free for the next request */
	struct lane *thead, *ttail;
	int inflight;
	long long started, counts[O_N], closed_idle, connections;
	bool stopping;
	const char *stopped_by;
	long long t0_us, end_us;
	uint32_t *lat;              /* answered latencies in µs */
	size_t nlat, caplat;
	char tags[MAX_TAGS][TAG_LEN];
	int ntags;
	bool tags_overflow;
	int pids[MAX_PIDS];
	int npids;
	char first_err[O_N][160];   /* what each kind of failure looked like first */
};

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* ---- deadline list: appended in start order, so the head expires first ---- */

static void dl_del(struct loadgen *g, struct lane *l)
{
	if (l->tprev)
		l->tprev->tnext = l->tnext;
	else if (g->thead == l)
		g->thead = l->tnext;
	else
		return;
	if (l->tnext)
		l->tnext->tprev = l->tprev;
	else
		g->ttail = l->tprev;
	l->tprev = l->tnext = NULL;
}

static void dl_push(struct loadgen *g, struct lane *l)
{
	l->deadline_us = now_us() + g->o.timeout_ms * 1000LL;
	l->tnext = NULL;
	l->tprev = g->ttail;
	if (g->ttail)
		g->ttail->tnext = l;
	else
		g->thead = l;
	g->ttail = l;
}

/* ---- what the answers say ------------------------------------------------- */

static void note_err(struct loadgen *g, enum outcome o, const char *what, int err)
{
	if (g->first_err[o][0])
		return;
	if (err)
		snprintf(g->first_err[o], sizeof(g->first_err[o]), "%s: %s", what, strerror(err));
	else
		snprintf(g->first_err[o], sizeof(g->first_err[o]), "%s", what);
}

/* refserver's body is "refserver pid=N tag=TEXT\n": count who answered. */
static void note_body(struct loadgen *g, const char *body, size_t len)
{
	const char *p = memmem(body, len, "pid=", 4), *t = memmem(body, len, "tag=", 4), *e;
	int i;

	if (p) {
		int pid = atoi(p + 4);

		for (i = 0; i < g->npids && g->pids[i] != pid; i++)
			;
		if (i == g->npids && g->npids < MAX_PIDS)
			g->pids[g->npids++] = pid;
	}
	if (t) {
		char tag[TAG_LEN];
		size_t tl;

		t += 4;
		e = memchr(t, '\n', (size_t)(body + len - t));
		tl = (size_t)((e ? e : body + len) - t);
		if (tl >= TAG_LEN)
			tl = TAG_LEN - 1;
		memcpy(tag, t, tl);
		tag[tl] = '\0';
		for (i = 0; i < g->ntags && strcmp(g->tags[i], tag); i++)
			;
		if (i == g->ntags) {
			if (g->ntags < MAX_TAGS)
				memcpy(g->tags[g->ntags++], tag, tl + 1);
			else
				g->tags_overflow = true;
		}
	}
}

enum parse { P_MORE, P_DONE, P_BAD };

/* Parses the answer on L: its header is in l->buf, its body may be of any
 * size (l->rcvd counts it; only its start is kept, for the tags). Framed by
 * Content-Length, or, without one, by the server closing the connection
 * (EOF: the connection has ended). On P_DONE *status, *close_after and the
 * kept start of the body are set. Bytes beyond Content-Length are P_BAD: we
 * never pipeline. Chunked answers are not read (P_BAD). */
static enum parse parse_response(struct lane *l, bool eof, int *status, bool *close_after, const char **body,
				 size_t *blen)
{
	const char *b = l->buf, *end = memmem(b, l->got, "\r\n\r\n", 4), *line;
	long long clen = -1;
	unsigned long long total;
	bool http10, ka = false, cl = false, chunked = false;

	if (!end)
		return l->got >= RESP_MAX || eof ? P_BAD : P_MORE;
	if (l->got < 12 || memcmp(b, "HTTP/1.", 7) || (b[7] != '0' && b[7] != '1') || b[8] != ' ')
		return P_BAD;
	http10 = b[7] == '0';
	*status = atoi(b + 9);
	for (line = memchr(b, '\n', (size_t)(end - b)) + 1; line < end + 2;) {
		const char *le = memchr(line, '\n', (size_t)(end + 2 - line)), *v;

		if (!le)
			return P_BAD;
		v = memchr(line, ':', (size_t)(le - line));
		if (v) {
			size_t nl = (size_t)(v - line);

			for (v++; *v == ' ' || *v == '\t'; v++)
				;
			if (nl == 14 && !strncasecmp(line, "Content-Length", 14))
				clen = strtoll(v, NULL, 10);
			else if (nl == 10 && !strncasecmp(line, "Connection", 10)) {
				size_t vl = (size_t)(le - v);

				cl |= memmem(v, vl, "close", 5) != NULL;
				ka |= memmem(v, vl, "keep-alive", 10) != NULL;
			} else if (nl == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
				chunked |= memmem(v, (size_t)(le - v), "chunked", 7) != NULL;
			}
		}
		line = le + 1;
	}
	if (chunked)
		return P_BAD;
	*body = end + 4;
	*blen = l->got - (size_t)(end + 4 - b);
	total = l->rcvd - (unsigned long long)(end + 4 - b);
	if (clen < 0) {
		/* no length: the body ends where the server closes */
		*close_after = true;
		return eof ? P_DONE : P_MORE;
	}
	if (total < (unsigned long long)clen)
		return eof ? P_BAD : P_MORE;
	if (total > (unsigned long long)clen)
		return P_BAD;
	*close_after = cl || (http10 && !ka) || eof;
	return P_DONE;
}

/* ---- one lane's life ------------------------------------------------------------ */

static void lane_send(struct loadgen *g, struct lane *l);

static void drop_conn(struct loadgen *g, struct lane *l)
{
	(void)g;
	if (l->fd >= 0)
		close(l->fd);	/* the epoll set forgets it with the last reference */
	l->fd = -1;
	l->st = L_IDLE;
	l->answers_on_conn = 0;
}

/* The request on L has its outcome; KEEP says its connection may serve the next. */
static void finish(struct loadgen *g, struct lane *l, enum outcome o, bool keep)
{
	g->counts[o]++;
	l->active = false;
	l->retry = false;
	g->inflight--;
	dl_del(g, l);
	if (!keep || !g->o.keepalive || g->stopping)
		drop_conn(g, l);
	else
		l->st = L_IDLE;
	/* the main loop starts the next one: starting it here would recurse
	 * once per request while every connect fails at once (refused) */
	g->idle[g->nidle++] = (int)(l - g->lanes);
}

static bool open_conn(struct loadgen *g, struct lane *l)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.u64 = (uint64_t)(l - g->lanes) };
	int one = 1;

	l->fd = socket(g->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		note_err(g, O_OTHER, "socket", errno);
		finish(g, l, O_OTHER, false);
		return false;
	}
	g->connections++;
	setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (g->rotate_src) {
		/* A connection is one 4-tuple; closing first leaves ours in
		 * TIME_WAIT for 60 s. Spreading the source over 250 loopback
		 * addresses gives 250 times the ports, whatever tcp_tw_reuse
		 * says. NO_PORT defers the port choice to connect(), which
		 * needs only the 4-tuple to be free. */
		struct sockaddr_in src = { .sin_family = AF_INET };

		src.sin_addr.s_addr = htonl(0x7f000001u + g->src_next++ % 250);
		setsockopt(l->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(l->fd, (struct sockaddr *)&src, sizeof(src))) {
			note_err(g, O_OTHER, "bind source", errno);
			drop_conn(g, l);
			finish(g, l, O_OTHER, false);
			return false;
		}
	}
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, l->fd, &e)) {
		note_err(g, O_OTHER, "epoll_ctl", errno);
		drop_conn(g, l);
		finish(g, l, O_OTHER, false);
		return false;
	}
	l->st = L_CONNECTING;
	if (connect(l->fd, (struct sockaddr *)&g->dst, g->dstlen) == 0) {
		l->st = L_SENDING;
		lane_send(g, l);
		return true;
	}
	if (errno == EINPROGRESS)
		return true;
	{
		int err = errno;
		enum outcome o = err == ECONNREFUSED ? O_REFUSED : err == ECONNRESET ? O_RESET
			       : err == ETIMEDOUT ? O_TIMEOUT : O_OTHER;

		note_err(g, o, "connect", err);
		drop_conn(g, l);
		finish(g, l, o, false);
	}
	return false;
}

static void start_request(struct loadgen *g, struct lane *l)
{
	g->started++;
	g->inflight++;
	l->active = true;
	l->retry = false;
	l->start_us = now_us();
	l->sent = l->got = 0;
	l->rcvd = 0;
	dl_push(g, l);
	if (l->fd >= 0) {
		l->st = L_SENDING;
		lane_send(g, l);
	} else {
		open_conn(g, l);
	}
}

/* The connection ended before this request's answer. On a connection that
 * has already served (keep-alive) and before any byte of the answer, the
 * server most likely closed it as idle while our request was on its way: the
 * race every HTTP/1.1 client has. Like browsers, try once more on a fresh
 * connection; only that retry's outcome counts. */
static void conn_failed(struct loadgen *g, struct lane *l, enum outcome o, const char *what, int err)
{
	if (l->answers_on_conn > 0 && l->got == 0 && !l->retry && (o == O_RESET || o == O_TRUNCATED)) {
		g->closed_idle++;
		drop_conn(g, l);
		l->retry = true;
		l->sent = 0;
		dl_del(g, l);
		dl_push(g, l);	/* the retry gets its own time */
		open_conn(g, l);	/* on failure it finishes the request itself */
		return;
	}
	note_err(g, o, what, err);
	drop_conn(g, l);
	finish(g, l, o, false);
}

static enum outcome errno_outcome(int err)
{
	switch (err) {
	case ECONNREFUSED: return O_REFUSED;
	case ECONNRESET: case EPIPE: return O_RESET;
	case ETIMEDOUT: return O_TIMEOUT;
	default: return O_OTHER;
	}
}

static void lane_send(struct loadgen *g, struct lane *l)
{
	while (l->sent < g->reqlen) {
		ssize_t n = send(l->fd, g->req + l->sent, g->reqlen - l->sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;	/* EPOLLOUT (edge) brings us back */
		if (n < 0) {
			int err = errno;

			conn_failed(g, l, errno_outcome(err), "send", err);
			return;
		}
		l->sent += (size_t)n;
	}
	l->st = L_READING;
}

static void lane_read(struct loadgen *g, struct lane *l, uint32_t ev)
{
	static char scratch[65536];	/* the rest of a big body: counted, not kept */

	for (;;) {
		bool keep = l->got < RESP_MAX;
		ssize_t n = keep ? recv(l->fd, l->buf + l->got, RESP_MAX - l->got, 0)
				 : recv(l->fd, scratch, sizeof(scratch), 0);
		const char *body;
		size_t blen;
		bool close_after = false;
		int status = 0;
		enum parse p;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			int err = errno;

			conn_failed(g, l, errno_outcome(err), "recv", err);
			return;
		}
		if (n == 0 && (!l->got || parse_response(l, true, &status, &close_after, &body, &blen) != P_DONE)) {
			conn_failed(g, l, O_TRUNCATED, l->got ? "connection closed inside a response"
							      : "connection closed before any response", 0);
			return;
		}
		if (keep)
			l->got += (size_t)n;
		l->rcvd += (unsigned long long)n;
		p = parse_response(l, n == 0, &status, &close_after, &body, &blen);
		if (p == P_MORE)
			continue;
		if (p == P_BAD) {
			note_err(g, O_TRUNCATED, "malformed response", 0);
			drop_conn(g, l);
			finish(g, l, O_TRUNCATED, false);
			return;
		}
		l->answers_on_conn++;
		if (status != 200) {
			char what[64];

			snprintf(what, sizeof(what), "HTTP status %d", status);
			note_err(g, O_OTHER, what, 0);
			finish(g, l, O_OTHER, !close_after && !(ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)));
			return;
		}
		note_body(g, body, blen);
		if (g->nlat == g->caplat) {
			size_t cap = g->caplat ? g->caplat * 2 : 65536;
			uint32_t *nl = realloc(g->lat, cap * sizeof(*nl));

			if (nl) {
				g->lat = nl;
				g->caplat = cap;
			}
		}
		if (g->nlat < g->caplat) {
			long long us = now_us() - l->start_us;

			g->lat[g->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		}
		/* A server that said "Connection: close", or whose FIN came with
		 * the answer, is done with this connection: not a failure. */
		finish(g, l, O_ANSWERED, !close_after && !(ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)));
		return;
	}
}

static void lane_event(struct loadgen *g, struct lane *l, uint32_t ev)
{
	if (!l->active || l->fd < 0)
		return;	/* a late event for a connection already dropped */
	if (l->st == L_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			enum outcome o = errno_outcome(err);

			note_err(g, o, "connect", err);
			drop_conn(g, l);
			finish(g, l, o, false);
			return;
		}
		l->st = L_SENDING;
	}
	if (l->st == L_SENDING) {
		lane_send(g, l);
		if (l->fd < 0 || l->st != L_READING)
			return;
	}
	if (l->st == L_READING)
		lane_read(g, l, ev);
}

/* ---- report ---------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t pct(const struct loadgen *g, int p)
{
	size_t rank;

	if (!g->nlat)
		return 0;
	rank = (g->nlat * (size_t)p + 99) / 100;	/* nearest rank */
	return g->lat[rank ? rank - 1 : 0];
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void report(struct loadgen *g, long long elapsed_us)
{
	long long failed = 0;
	double secs = elapsed_us / 1e6, rate;
	int i;

	for (i = O_REFUSED; i < O_N; i++)
		failed += g->counts[i];
	rate = secs > 0 ? g->counts[O_ANSWERED] / secs : 0;
	if (g->nlat)	/* qsort may not be given NULL, even for no elements */
		qsort(g->lat, g->nlat, sizeof(*g->lat), cmp_u32);
	if (g->o.json) {
		printf("{\"mode\": \"%s\", \"concurrency\": %d, \"elapsed_s\": %.3f, \"requests\": %lld, "
		       "\"answered\": %lld, \"failed\": %lld",
		       g->o.keepalive ? "keepalive" : "conn", g->o.concurrency, secs, g->started,
		       g->counts[O_ANSWERED], failed);
		for (i = O_REFUSED; i < O_N; i++)
			printf(", \"%s\": %lld", outcome_name[i], g->counts[i]);
		printf(", \"closed_idle\": %lld, \"connections\": %lld, \"rate_per_s\": %.0f, "
		       "\"latency_us\": {\"p50\": %u, \"p99\": %u, \"max\": %u}, "
		       "\"distinct_tags\": %d, \"distinct_pids\": %d, \"tags\": [",
		       g->closed_idle, g->connections, rate, pct(g, 50), pct(g, 99), pct(g, 100), g->ntags,
		       g->npids);
		for (i = 0; i < g->ntags; i++) {
			if (i)
				printf(", ");
			json_str(g->tags[i]);
		}
		printf("], \"stopped_by\": \"%s\"}\n", g->stopped_by);
	} else {
		printf("loadgen %s c=%d %.2fs: %lld requests, %lld answered, %lld failed (refused %lld, "
		       "reset %lld, timeout %lld, truncated %lld, other %lld), closed_idle %lld, %.0f/s, "
		       "latency p50 %uus p99 %uus max %uus, %d tag(s), %d pid(s)\n",
		       g->o.keepalive ? "keepalive" : "conn", g->o.concurrency, secs, g->started,
		       g->counts[O_ANSWERED], failed, g->counts[O_REFUSED], g->counts[O_RESET],
		       g->counts[O_TIMEOUT], g->counts[O_TRUNCATED], g->counts[O_OTHER], g->closed_idle, rate,
		       pct(g, 50), pct(g, 99), pct(g, 100), g->ntags, g->npids);
	}
	if (!g->o.quiet)
		for (i = O_REFUSED; i < O_N; i++)
			if (g->first_err[i][0])
				fprintf(stderr, "loadgen: first %s: %s\n", outcome_name[i], g->first_err[i]);
	if (g->tags_overflow && !g->o.quiet)
		fprintf(stderr, "loadgen: more than %d distinct tags; counted the first %d\n", MAX_TAGS, MAX_TAGS);
	if (g->started != g->counts[O_ANSWERED] + failed)
		fprintf(stderr, "loadgen: BUG: %lld requests but %lld outcomes\n", g->started,
			g->counts[O_ANSWERED] + failed);
}

/* ---- options and main ----------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: loadgen --port P [--host ADDR] [--mode conn|keepalive] [--concurrency N]\n"
		"               [--duration SEC] [--max-requests N] [--timeout-ms T] [--json] [--quiet]\n\n"
		"Sends GET / to ADDR:P (default 127.0.0.1) from N lanes at once (32), for SEC\n"
		"seconds (5) or N requests in all (10000000), and counts each request once as\n"
		"answered (a complete 200 of any size, framed by Content-Length or by the\n"
		"server closing; chunked answers are not read) or failed: refused, reset, timeout (no complete\n"
		"answer within T ms, default 2000), truncated (closed early or malformed) or\n"
		"other_error. conn: one connection per request; keepalive: each lane reuses\n"
		"its connection and reconnects when the server closes it between requests.\n"
		"A keep-alive connection closed just as a request went out (closed_idle) is\n"
		"retried once on a new connection; only the retry's outcome counts.\n"
		"SIGTERM or SIGINT stops new requests; those in flight finish or time out.\n"
		"Prints one line, or with --json one object. Exit 0 when it ran, 2 on usage.\n");
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out)
{
	if (!numarg_parse(v, lo, hi, false, out))
		return 0;
	fprintf(stderr, "loadgen: option %s: \"%s\" is not a number from %g to %g\n", opt, v, lo, hi);
	return -1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_PORT = 256, O_HOST, O_MODE, O_CONC, O_DUR, O_MAX, O_TMO, O_JSON, O_QUIET };
	static const struct option lopts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "host", required_argument, NULL, O_HOST },
		{ "mode", required_argument, NULL, O_MODE },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "duration", required_argument, NULL, O_DUR },
		{ "max-requests", required_argument, NULL, O_MAX },
		{ "timeout-ms", required_argument, NULL, O_TMO },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	double d;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			if (parse_num("--port", optarg, 1, 65535, &d))
				return 2;
			o->port = (int)d;
			break;
		case O_HOST: o->host = optarg; break;
		case O_MODE:
			if (strcmp(optarg, "conn") && strcmp(optarg, "keepalive")) {
				fprintf(stderr, "loadgen: option --mode: \"%s\" is not conn or keepalive\n", optarg);
				return 2;
			}
			o->keepalive = !strcmp(optarg, "keepalive");
			break;
		case O_CONC:
			if (parse_num("--concurrency", optarg, 1, 100000, &d))
				return 2;
			o->concurrency = (int)d;
			break;
		case O_DUR:
			if (parse_num("--duration", optarg, 0.001, 86400, &o->duration_s))
				return 2;
			break;
		case O_MAX:
			if (parse_num("--max-requests", optarg, 1, 1e15, &d))
				return 2;
			o->max_requests = (long long)d;
			break;
		case O_TMO:
			if (parse_num("--timeout-ms", optarg, 1, 3600000, &d))
				return 2;
			o->timeout_ms = (int)d;
			break;
		case O_JSON: o->json = true; break;
		case O_QUIET: o->quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: return bench_opt_error("loadgen", c, argv);
		}
	}
	if (bench_extra_args("loadgen", argc, argv))
		return 2;
	if (!o->port) {
		fprintf(stderr, "loadgen: option --port is required (see loadgen --help)\n");
		return 2;
	}
	return -1;
}

static int setup(struct loadgen *g)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&g->dst;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&g->dst;
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = SIG_KEY };
	sigset_t mask;
	int i;

	if (inet_pton(AF_INET, g->o.host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)g->o.port);
		g->dstlen = sizeof(*sin);
		g->rotate_src = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (inet_pton(AF_INET6, g->o.host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)g->o.port);
		g->dstlen = sizeof(*sin6);
	} else {
		fprintf(stderr, "loadgen: option --host: \"%s\" is not a numeric IPv4 or IPv6 address\n", g->o.host);
		return 2;
	}
	g->reqlen = (size_t)snprintf(g->req, sizeof(g->req),
				     "GET / HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: baton-loadgen\r\n%s\r\n",
				     g->dst.ss_family == AF_INET6 ? "[" : "", g->o.host,
				     g->dst.ss_family == AF_INET6 ? "]" : "", g->o.port,
				     g->o.keepalive ? "" : "Connection: close\r\n");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	g->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (g->ep < 0 || g->sigfd < 0 || epoll_ctl(g->ep, EPOLL_CTL_ADD, g->sigfd, &e)) {
		fprintf(stderr, "loadgen: %s\n", strerror(errno));
		return 1;
	}
	g->lanes = calloc((size_t)g->o.concurrency, sizeof(*g->lanes));
	g->idle = calloc((size_t)g->o.concurrency, sizeof(*g->idle));
	if (!g->lanes || !g->idle) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	for (i = 0; i < g->o.concurrency; i++) {
		g->lanes[i].fd = -1;
		g->idle[g->nidle++] = g->o.concurrency - 1 - i;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct loadgen g;
	struct epoll_event ev[256];
	int r, i;

	g.o = (struct opts){ .host = "127.0.0.1", .concurrency = 32, .duration_s = 5,
			     .max_requests = 10000000, .timeout_ms = 2000 };
	r = parse_opts(argc, argv, &g.o);
	if (r >= 0)
		return r;
	if ((r = setup(&g)))
		return r;
	g.stopped_by = "duration";
	g.t0_us = now_us();
	g.end_us = g.t0_us + (long long)(g.o.duration_s * 1e6);
	for (;;) {
		long long now = now_us(), wake = LLONG_MAX;
		int n, timeout, starts;

		if (!g.stopping && (now >= g.end_us || g.started >= g.o.max_requests)) {
			g.stopping = true;
			if (now < g.end_us)
				g.stopped_by = "max_requests";
		}
		/* expired requests: the list is in deadline order */
		while (g.thead && g.thead->deadline_us <= now) {
			struct lane *l = g.thead;

			note_err(&g, O_TIMEOUT, l->st == L_CONNECTING ? "no connection within --timeout-ms"
								      : "no complete answer within --timeout-ms", 0);
			drop_conn(&g, l);
			finish(&g, l, O_TIMEOUT, false);
		}
		/* bounded, so that signals and deadlines get their turn even when
		 * every attempt fails at once */
		for (starts = 0; !g.stopping && g.nidle && starts < g.o.concurrency &&
				 g.started < g.o.max_requests; starts++)
			start_request(&g, &g.lanes[g.idle[--g.nidle]]);
		if (g.stopping) {
			/* idle keep-alive connections are ours to close */
			while (g.nidle)
				drop_conn(&g, &g.lanes[g.idle[--g.nidle]]);
			if (!g.inflight)
				break;
		}
		if (g.thead)
			wake = g.thead->deadline_us;
		if (!g.stopping && g.end_us < wake)
			wake = g.end_us;
		timeout = wake == LLONG_MAX ? -1 : (int)((wake - now + 999) / 1000);
		if (!g.stopping && g.nidle && g.started < g.o.max_requests)
			timeout = 0;	/* lanes are waiting to start */
		n = epoll_wait(g.ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), timeout);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.u64 == SIG_KEY) {
				struct signalfd_siginfo si;

				while (read(g.sigfd, &si, sizeof(si)) == sizeof(si))
					if (!g.stopping) {
						g.stopping = true;
						g.stopped_by = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
					}
				continue;
			}
			lane_event(&g, &g.lanes[ev[i].data.u64], ev[i].events);
		}
	}
	report(&g, now_us() - g.t0_us);
	free(g.lat);
	free(g.lanes);
	free(g.idle);
	return 0;
}
