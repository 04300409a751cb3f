/* SPDX-License-Identifier: BSD-2-Clause */
/* refserver's one header: its limits, the server and connection records,
 * and what each file offers the others (main.c: loop, stop, timers;
 * options.c; sockets.c: LISTEN_FDS, --listen, sd_notify; upgrade.c: the
 * handover protocol; conn.c: connections; http.c: requests, responses). */
#ifndef REFSERVER_H
#define REFSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "baton_handover_wire.h"

#define MAX_LISTEN 16
#define REQ_MAX 8192           /* request line + headers; larger is a 431 */
#define OUT_MAX 1024           /* one response (ours are small) */
#define LINGER_MS 1000         /* how long a closing connection may take to read EOF */
/* On stop, a keep-alive connection idle between requests gets this long to
 * send one more, answered with "Connection: close". A busy client's next
 * request is often already on the wire when the stop comes; closing at once
 * would make it retry (or fail, if it does not). */
#define LAST_CALL_MS 50
#define ACCEPT_BATCH 64        /* accepts per wake-up, so clients get their turn */
#define STR_(x) #x
#define STR(x) STR_(x)

/* What an epoll event points at; the kind is the first member of each. */
enum kind { K_LISTEN, K_CONN, K_SIGNAL, K_TIMER, K_UPLISTEN, K_UPCONN };

struct listener {
	enum kind kind;
	int fd;
	char name[64];
};

/* A queue of connections with one common timeout: deadlines are then in
 * insertion order, so the head is always the next to expire. */
struct tqueue {
	struct conn *head, *tail;
};

enum cstate {
	C_READING,   /* waiting for (the rest of) a request */
	C_DELAYED,   /* request parsed, answer held back for --delay-ms */
	C_WRITING,   /* response partly sent */
	C_LINGER,    /* our side shut down; reading until the client's EOF */
};

struct conn {
	enum kind kind;
	int fd;
	enum cstate state;
	bool close_after;           /* this response ends the connection */
	bool http10;
	int status;                 /* of the request being answered */
	bool head;                  /* HEAD: headers only */
	bool peer_eof;              /* the client shut its side after sending */
	unsigned answered;          /* responses completed on this connection */
	size_t discard;             /* request body bytes still to skip */
	long long due_ms;           /* C_DELAYED: when to answer; C_LINGER: when to give up */
	struct conn *prev, *next;   /* all connections */
	struct conn *tprev, *tnext; /* on the queue ONQ: delay or linger */
	struct tqueue *onq;
	size_t inlen, outlen, outoff;
	char in[REQ_MAX];
	char out[OUT_MAX];
};

struct opts {
	const char *listen[MAX_LISTEN];
	int nlisten;
	const char *tag;
	int ready_delay_ms;
	bool never_ready;
	bool crash_at_start;
	int fail_after_ms;          /* --fail-after: stop and exit 1 this long after READY=1 */
	int delay_ms;
	int stop_signal;
	int grace_ms;
	bool quiet;
	bool reuseport;
	const char *upgrade_socket;
};

struct server {
	struct opts o;
	int ep, sigfd, timerfd;
	struct listener ls[MAX_LISTEN];
	int nls;
	struct conn *conns;
	int nconns;
	struct tqueue delayed, lingering;
	long long ready_at_ms;      /* -1: sent or never */
	long long grace_end_ms;     /* -1: not stopping */
	long long last_call_ms;     /* -1: idle connections already ended */
	bool stopping, accept_paused;
	long long fail_at_ms;       /* -1: not failing */
	bool failed;
	char notify[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	unsigned long long served;
	pid_t pid;
	char **argv;
	/* --upgrade-socket: our offer, the taker being served, our successor */
	int upfd, upconn, handed_conn;
	dev_t updev;
	ino_t upino;
	struct baton_handover_cred uppeer;
	pid_t successor;
};

/* main.c */
long long now_ms(void);
/* One line on stderr, "refserver[PID]: ..."; only with ALWAYS under --quiet. */
void say(bool always, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Stop accepting for good, finish what was asked, end idle connections now. */
void begin_stop(struct server *s, const char *why);

/* options.c: -1 to run, else the exit code (0 after --help) */
int parse_opts(int argc, char **argv, struct opts *o);

/* sockets.c */
int take_listen_fds(struct server *s);
int bind_own(struct server *s, const char *spec);
int notify(struct server *s, const char *msg);
void send_ready(struct server *s);

/* upgrade.c */
int take_handover(struct server *s, const char *path);
int offer_open(struct server *s);
void offer_close(struct server *s);
void offer_accept(struct server *s);
void offer_answer(struct server *s);
void start_successor(struct server *s);
void reap(struct server *s);

/* conn.c */
void tq_del(struct conn *c);
void listeners_watch(struct server *s, bool on);
void conn_free(struct server *s, struct conn *c);
void conn_linger(struct server *s, struct conn *c);
void conn_process(struct server *s, struct conn *c);
void conn_write(struct server *s, struct conn *c);
bool conn_read(struct server *s, struct conn *c);
void conn_event(struct server *s, struct conn *c, uint32_t ev);
void do_accept(struct server *s, struct listener *l);

/* http.c */
long parse_request(struct conn *c);
void build_response(struct server *s, struct conn *c);

#endif
