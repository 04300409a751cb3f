/* SPDX-License-Identifier: BSD-2-Clause */
/* baton: hand a listening port from one process to the next without losing a
 * connection. Public C interface: listener specs, member sockets, and steered
 * SO_REUSEPORT groups (eBPF with migration, or classic BPF as a fallback).
 * Functions return 0 (or a count/slot) on success and a negative errno on
 * failure; functions returning pointers return NULL and set errno. */
#ifndef BATON_H
#define BATON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; baton_version() gives the library's. */
#define BATON_VERSION_MAJOR 0
#define BATON_VERSION_MINOR 3
#define BATON_VERSION_PATCH 0
#define BATON_VERSION "0.3.0"   /* MAJOR.MINOR.PATCH, as above */

/* The version of the library the program runs with, e.g. "0.3.0". It can
 * differ from BATON_VERSION, the header the program was built with. */
const char *baton_version(void);

/* ---- extensible structs ------------------------------------------------
 *
 * Options (struct baton_*_opts) start with `size_t sz`, the size of the
 * struct as the caller knows it. Fields are only ever added at the end. A
 * library older than the caller's header accepts a larger struct when every
 * byte it does not know is zero, and refuses it with -EINVAL (and a message
 * through the log callback naming the struct and the byte) otherwise, so a
 * new option is never silently ignored. sz smaller than the size_t itself:
 * -EINVAL. Declare options with BATON_OPTS, which also zeroes the padding:
 *
 *     BATON_OPTS(baton_group_opts, o, .mode = BATON_MODE_EBPF, .log = my_log);
 *     struct baton_group *g = baton_group_new(&o);
 *
 * Results a caller allocates (struct baton_member_health, baton_slot_stats,
 * the elements of baton_socks_collect) follow libbpf's info_len model: the
 * caller passes the size of its struct (baton_*_info(..., sizeof(x)), or
 * baton_collect_opts.sock_sz); the library zeroes that many bytes, fills
 * the fields it knows, and says how many bytes it filled, so fields newer
 * than the library read as zero. The calls without a size fill the layout
 * of version 0.1 and never more. struct baton_queue, baton_spec,
 * baton_notify_msg and baton_handover_fds are fixed: a new result would
 * come with a new function. */
#define BATON_OPTS(TYPE, NAME, ...)                                            \
	struct TYPE NAME = ({                                                  \
		memset(&NAME, 0, sizeof(struct TYPE));                         \
		(struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ };       \
	})

/* ---- logging ---------------------------------------------------------- */

enum baton_log_level { BATON_LOG_ERROR, BATON_LOG_WARN, BATON_LOG_INFO, BATON_LOG_DEBUG };

/* The library never prints; it hands each message to this callback if set.
 * libbpf, which loads the steering program, prints its own messages (load
 * errors, the verifier's log) on stderr through its print hook unless the
 * program installs one with libbpf_set_print(); the baton command line
 * drops them unless BATON_DEBUG is set to anything but 0. */
typedef void (*baton_log_fn)(void *ctx, enum baton_log_level level, const char *msg);

/* ---- listener specs --------------------------------------------------- */

enum baton_proto { BATON_PROTO_TCP = 1, BATON_PROTO_UDP = 2 };

#define BATON_NAME_MAX 63

/* A parsed listener spec: tcp://HOST:PORT, tcp://[V6]:PORT, udp://HOST:PORT,
 * with query options backlog=N, name=NAME, v6only=0|1, handoff=idle|none. */
struct baton_spec {
	enum baton_proto proto;
	int family;                  /* AF_INET or AF_INET6 */
	struct sockaddr_storage addr; /* the address; its port is not read (see
				      * port). All zero: the wildcard address */
	socklen_t addrlen;           /* set by the parser; not read */
	uint16_t port;               /* host order; 0 = any free port. The one
				      * place the port is read from */
	uint8_t handoff;             /* 0.2, enum baton_handoff; it sits in what
				      * was padding, so the struct keeps its
				      * size and layout. Read by `baton run`
				      * only (the preload shim's idle handoff) */
	uint8_t reserved_;           /* padding, zero */
	int backlog;                 /* TCP listen backlog (default 4096; 0 in a
				      * spec made by hand: 4096) */
	int v6only;                  /* -1 = not given, else 0 or 1 (IPv6 only) */
	char name[BATON_NAME_MAX + 1]; /* "" if not given */
};

/* handoff=: what a stopping generation does with an idle keep-alive
 * connection it closes. IDLE: the preload shim passes it to the serving
 * generation instead (plaintext TCP only: TLS state cannot move). */
enum baton_handoff { BATON_HANDOFF_NONE = 0, BATON_HANDOFF_IDLE = 1 };

/* Parses TEXT into SPEC. On failure returns -EINVAL and writes into ERR a
 * message naming the bad part, e.g. `bad port "80a" in "tcp://x:80a"`. */
int baton_spec_parse(const char *text, struct baton_spec *spec, char *err, size_t errlen);

/* Whether NAME is a valid listener or supervisor name: 1 to 63 of
 * A-Z a-z 0-9 - _ . and not starting with a dot. */
bool baton_name_valid(const char *name);

/* Writes the canonical text of SPEC (the form the parser accepts). Returns
 * the length it needed (like snprintf) or a negative errno. */
int baton_spec_format(const struct baton_spec *spec, char *buf, size_t len);

/* Opens a socket for SPEC with SO_REUSEPORT (and SO_REUSEADDR for TCP),
 * bound to SPEC's address and SPEC->port, and listening for TCP. O_CLOEXEC.
 * Returns the fd or -errno (-EINVAL: no spec, or a protocol, family or
 * backlog out of range). */
int baton_listener_open(const struct baton_spec *spec);

/* Opens another member next to FD, a TCP listener or bound UDP socket with
 * SO_REUSEPORT: same family, protocol, address and port as FD actually has
 * (so a listener bound to port 0 can get more members), same IPV6_V6ONLY and
 * bound device, SO_REUSEPORT (and SO_REUSEADDR for TCP), listening with
 * BACKLOG (0: FD's backlog) for TCP. O_CLOEXEC. A steered group gives it no
 * traffic until it is added with baton_group_add. Returns the fd or -errno:
 * -EINVAL (FD < 0, BACKLOG < 0, a TCP socket not listening, UDP not bound),
 * -EPROTOTYPE (not TCP or UDP over IPv4 or IPv6), -EADDRINUSE (FD lacks
 * SO_REUSEPORT, or belongs to another user). */
int baton_listener_open_like(int fd, int backlog);

/* Queue of a member socket. TCP listener: connections waiting in the accept
 * queue and the backlog. UDP: bytes waiting and the receive buffer size.
 * Fixed layout (see "extensible structs"). */
struct baton_queue {
	uint32_t len;
	uint32_t max;
};

int baton_socket_queue(int fd, struct baton_queue *q);

/* ---- steered groups --------------------------------------------------- */

#define BATON_MAX_SLOTS 64

enum baton_mode {
	BATON_MODE_AUTO = 0,  /* opts only: eBPF if it loads, else classic BPF */
	BATON_MODE_EBPF = 1,  /* slot map, atomic switch, migration of queues */
	BATON_MODE_CBPF = 2,  /* unprivileged: group index, no migration */
};

const char *baton_mode_name(enum baton_mode mode);

/* UDP flow affinity in the steering program (see "UDP flows" below). */
enum baton_flows {
	BATON_FLOWS_OFF = 0,   /* every datagram is steered by the policy */
	BATON_FLOWS_ON = 1,    /* a flow (4-tuple) stays where its first datagram went */
	BATON_FLOWS_QUIC = 2,  /* ON, and QUIC packets follow their DCID's generation marker */
};

#define BATON_FLOW_TABLE_DEFAULT 16384
#define BATON_FLOW_TABLE_MAX (1u << 24)
#define BATON_FLOW_IDLE_DEFAULT_MS 30000

struct baton_group_opts {
	size_t sz;              /* sizeof(struct baton_group_opts) */
	enum baton_mode mode;   /* AUTO, or force one mode (fails if it cannot load) */
	bool no_migrate;        /* eBPF: load for selection only (queues of closing
	                         * listeners are then reset, as without baton) */
	baton_log_fn log;
	void *log_ctx;
	const char *pin_path;   /* eBPF: pin the maps and program in this bpffs
	                         * directory (created if missing); a group made
	                         * later with the same path resumes its slots and
	                         * policy without touching traffic. NULL: none */
	/* 0.3: UDP flow affinity (eBPF only; see "UDP flows" below). OFF
	 * (the zero of older callers): every datagram is steered by the policy */
	enum baton_flows flows;
	uint32_t flow_table;    /* flow table entries; 0: BATON_FLOW_TABLE_DEFAULT */
	uint64_t flow_idle_ms;  /* a flow unseen this long is new again; 0: BATON_FLOW_IDLE_DEFAULT_MS */
	/* 0.3: eBPF: steer through SET's program and maps (baton_steerset_new)
	 * as its listener SET_INDEX, instead of a program of the group's own;
	 * pin_path, no_migrate and flow_table are then the set's. NULL: own */
	struct baton_steerset *set;
	uint32_t set_index;
	uint32_t set_reserved;  /* 0 */
};

/* ---- steering sets (0.3) -------------------------------------------------
 * One eBPF program and one set of maps for many groups (the listeners of a
 * server): every group's reuseport group runs the same program, which finds
 * the listener from the group's socket. Changes made to the set's groups
 * between baton_steerset_begin and baton_steerset_commit take effect on
 * every listener at the same instant, and every connection is decided by
 * the policy before or the policy after, never a mix. A group made without
 * a set has a set of one of its own. */
struct baton_steerset;

struct baton_steerset_opts {
	size_t sz;              /* sizeof(struct baton_steerset_opts) */
	baton_log_fn log;
	void *log_ctx;
	uint32_t listeners;     /* groups it can hold (1 .. 65536; 0: 1) */
	bool no_migrate;        /* load for selection only */
	bool flows;             /* some listener uses UDP flows: size the table */
	uint32_t flow_table;    /* flow table entries (shared); 0: BATON_FLOW_TABLE_DEFAULT */
	const char *pin_path;   /* pin the maps and program in this bpffs directory;
	                         * a set made later with the same path resumes them
	                         * if it has room for as many listeners or fewer */
};

/* Loads the program and its maps (needs CAP_BPF and CAP_NET_ADMIN, or
 * root); NULL with errno set: EEXIST for a pinned set with room for fewer
 * listeners (said through log), else the load's error, which the caller
 * says. There is no classic BPF set. */
struct baton_steerset *baton_steerset_new(const struct baton_steerset_opts *opts);
/* Releases the caller's reference; groups made with it keep theirs. */
void baton_steerset_free(struct baton_steerset *set);
/* What the set's groups publish after this waits for the matching commit.
 * Nests. 0 or -EINVAL. */
int baton_steerset_begin(struct baton_steerset *set);
/* Puts everything published since the outermost begin in force at once
 * (one store to the set's mapped `live` word, whatever the number of
 * listeners; the tables were written into a free policy bank as they were
 * published). 0, or -EINVAL without a matching begin. */
int baton_steerset_commit(struct baton_steerset *set);
/* The listeners SET has room for (a resumed pinned set may have more than
 * asked), or -EINVAL. */
int baton_steerset_capacity(const struct baton_steerset *set);

/* What a set's commits cost: a commit that finds no free policy bank waits
 * for a grace period, so many commits in a row (changes made listener by
 * listener outside begin/commit) show as bank_waits. */
struct baton_steerset_stats {
	uint32_t listeners;      /* room for (baton_steerset_capacity) */
	uint32_t banks;          /* policy banks: K commits in a row need no wait */
	uint64_t commits;        /* policies put in force (one per outermost commit) */
	uint64_t bank_waits;     /* commits that waited for a bank to come free */
};

/* Reads SET's counters into ST, a struct of LEN bytes (as
 * baton_group_stats_info): the bytes filled, or -EINVAL. */
int baton_steerset_stats(const struct baton_steerset *set, struct baton_steerset_stats *st, size_t len);

/* Functions that take a group and a slot return -EINVAL for a NULL group, a
 * slot outside 0 .. BATON_MAX_SLOTS - 1 or a NULL result pointer, and -ENOENT
 * for a slot that holds no member. The watch's functions do the same. */
struct baton_group;

/* Creates an empty group. The steering program is attached to the kernel's
 * reuseport group when the first member is added. */
struct baton_group *baton_group_new(const struct baton_group_opts *opts);

/* Closes baton's copies of the members and releases the group. A program
 * already attached stays attached with the last policy, so the port keeps
 * being steered; use baton_group_detach first to give it back to the
 * kernel's hash. */
void baton_group_free(struct baton_group *g);

/* The group's mode: BATON_MODE_EBPF or BATON_MODE_CBPF. For NULL,
 * BATON_MODE_AUTO (never a group's mode) with errno EINVAL. */
enum baton_mode baton_group_mode(const struct baton_group *g);

/* Adds a member: a socket with SO_REUSEPORT, bound (UDP) or listening (TCP)
 * on the same address as the other members. baton keeps its own copy of the
 * fd (the caller keeps FD). WEIGHT is its share of new connections (0: takes
 * none yet). Returns the slot (>= 0), stable until the member is removed, or
 * -errno. cBPF mode: members must be added in the order they joined the
 * kernel's group (the order of listen() for TCP, bind() for UDP). */
int baton_group_add(struct baton_group *g, int fd, uint32_t weight);

/* Sets every slot's weight at once (WEIGHTS[slot] for slot < N, the rest 0).
 * Readers see the old or the new policy, never a mix. All weights 0: the
 * kernel's own hash picks among the members. */
int baton_group_set_weights(struct baton_group *g, const uint32_t *weights, size_t n);

/* Only SLOT takes new connections. */
int baton_group_activate(struct baton_group *g, int slot);

/* SLOT takes no new connections; the other weights stay. */
int baton_group_drain(struct baton_group *g, int slot);

int baton_group_weight(const struct baton_group *g, int slot, uint32_t *weight);

/* Steers new connections away from SLOT and shuts its listener down
 * (shutdown(SHUT_RD) on the shared socket, so every process holding it stops
 * accepting from it): eBPF mode moves its queued and half-open connections
 * to the slots with weight. baton keeps its copy; baton_group_remove closes it.
 * Inside baton_steerset_begin/_commit the shutdown waits for the commit, so
 * the queue moves by the policy committed. */
int baton_group_fence(struct baton_group *g, int slot);

/* Takes a fenced SLOT back: listens on its socket again (the kernel puts it
 * back into its reuseport group) and restores its slot, so it takes its
 * weight again. 0 if SLOT is not fenced. */
int baton_group_unfence(struct baton_group *g, int slot);

/* Marks SLOT unhealthy (DOWN) or healthy: a member that is down takes no new
 * connections, whatever its weight; when every slot with weight is down, the
 * healthy members share the traffic equally (a standby takes over). The
 * health watch (baton_watch_*) calls this. */
int baton_group_set_down(struct baton_group *g, int slot, bool down);

/* Marks SLOT's socket as another owner's (FOREIGN true), one that owner
 * keeps listening, such as a systemd .socket unit's: baton_group_fence then
 * only steers new connections away (what waits in its queue stays there),
 * and neither fence nor baton_group_remove ever shuts it down, so the
 * owner never sees a hang-up. baton_group_remove still closes baton's copy. */
int baton_group_set_foreign(struct baton_group *g, int slot, bool foreign);

/* Holds SLOT in reserve (RESERVE true) or releases it: a member kept for
 * later, listening in the group (a supervisor's spare for its next
 * generation), takes no new connections whatever its weight, and is never
 * among the healthy members that share the traffic when every slot with
 * weight is down. Only the kernel's own hash, which the program leaves the
 * choice to when no slot of the listener takes traffic, can still reach it. */
int baton_group_set_reserve(struct baton_group *g, int slot, bool reserve);

/* Whether SLOT is fenced; false for NULL, a slot out of range or without a
 * member. baton_group_flags tells those apart. */
bool baton_group_fenced(const struct baton_group *g, int slot);

#define BATON_SLOT_FENCED 0x1u   /* baton_group_fence: listener shut down */
#define BATON_SLOT_DOWN   0x2u   /* baton_group_set_down: steered away */
#define BATON_SLOT_FOREIGN 0x4u  /* baton_group_set_foreign: never shut down */
#define BATON_SLOT_RESERVE 0x8u  /* baton_group_set_reserve: held for later, no traffic */

/* SLOT's BATON_SLOT_* bits (0: taking its weight), or -EINVAL (NULL, slot
 * out of range) or -ENOENT (no member in SLOT). */
int baton_group_flags(const struct baton_group *g, int slot);

/* Removes the pins of a pinned group (the maps live on while in use). */
int baton_group_unpin(struct baton_group *g);
/* Removes the pins baton makes (maps and program) in the bpffs directory
 * PIN_PATH, and the directory: for a group no process holds any more.
 * -ENOENT if there is no such directory; -ENOTEMPTY if it holds anything
 * else (baton's pins are gone, the rest and the directory stay). */
int baton_group_unpin_dir(const char *pin_path);
/* Pins again, from the group's own descriptors, whatever of its pins was
 * removed while it ran. Returns how many were missing, or -errno. */
int baton_group_repin(struct baton_group *g);

/* Forgets SLOT and closes baton's copy. If that was the last reference, the
 * socket closes and (eBPF mode) its queue migrates to the slots with weight. */
int baton_group_remove(struct baton_group *g, int slot);

/* baton's copy of SLOT's socket (still owned by the group), or -errno. */
int baton_group_fd(const struct baton_group *g, int slot);

int baton_group_queue(const struct baton_group *g, int slot, struct baton_queue *q);

struct baton_slot_stats {
	uint64_t selected;   /* new connections steered to the slot */
	uint64_t migrated;   /* queued connections moved to the slot */
	uint64_t missed;     /* picks of the slot that found no listener */
	/* 0.2, filled by baton_group_stats_info only: queued connections the
	 * kernel moved away from the slot's socket (the last one put there)
	 * as it closed or was fenced */
	uint64_t migrated_out;
};

/* eBPF mode counters. SLOT == BATON_MAX_SLOTS: decisions left to the
 * kernel's hash. -EOPNOTSUPP in cBPF mode. Fills the 0.1 layout (selected,
 * migrated, missed) and never more. */
int baton_group_stats(const struct baton_group *g, int slot, struct baton_slot_stats *st);

/* baton_group_stats for a struct of LEN bytes (sizeof(*ST) as the caller
 * knows it, at least the 0.1 size): zeroes LEN bytes, fills what this
 * library knows, and returns the number of bytes filled, or -errno. */
int baton_group_stats_info(const struct baton_group *g, int slot, struct baton_slot_stats *st, size_t len);

/* Loads a fresh copy of the steering program and attaches it in place of the
 * running one, keeping the members and the policy. */
int baton_group_reload(struct baton_group *g);

/* The kernel's id of the steering program this group attaches (as bpftool
 * and baton ls show it), or -EOPNOTSUPP in cBPF mode. */
int baton_group_prog_id(const struct baton_group *g, uint32_t *id);

/* Removes the steering program from the kernel's group. */
int baton_group_detach(struct baton_group *g);

/* Number of members. */
int baton_group_size(const struct baton_group *g);

/* SLOT's share of new connections as the steering program applies it now,
 * in parts per million: read back from the published pick table (eBPF) or
 * from what the classic program was generated from, so fences and members
 * that are down count. */
int baton_group_share(const struct baton_group *g, int slot, uint32_t *ppm);

#define BATON_MAX_PINS 4

/* New connections (or datagrams) from a source port in LO .. HI go to SLOT,
 * whatever the weights: a probe that binds its source port there reaches
 * that one member through the real port. SLOT -1 removes the range. At most
 * BATON_MAX_PINS ranges; -ENOSPC past that, -EOPNOTSUPP in cBPF mode. If
 * SLOT has no listener, the policy decides as if there were no pin. */
int baton_group_pin_source(struct baton_group *g, uint16_t lo, uint16_t hi, int slot);
/* The same, for connections that also come from FROM's address (its port is
 * ignored; an IPv4-mapped IPv6 address matches IPv4): any host can choose its
 * source port, so a probe pin open to every address lets a remote client reach
 * the pinned member. FROM NULL: any address, as baton_group_pin_source. */
int baton_group_pin_source_addr(struct baton_group *g, const struct sockaddr *from, socklen_t len, uint16_t lo,
				uint16_t hi, int slot);


/* ---- UDP flows --------------------------------------------------------
 *
 * For UDP every datagram is steered, so a switch would send the next
 * datagram of a flow to a member that knows nothing of it. With flows on,
 * the steering program keeps an LRU table from the 4-tuple to the slot the
 * flow's first datagram went to; later datagrams follow it while the flow
 * is not idle (flow_idle_ms) and the slot holds the same member (a member
 * that is fenced, removed or replaced ends its flows). A datagram that
 * finds no entry is a new flow and the policy picks for it. When the table
 * is full the LRU evicts its least recently used flow, whose next datagram
 * is then a new flow; an insert that fails steers that datagram by the
 * policy. Nothing is dropped either way, and both are counted.
 *
 * QUIC (BATON_FLOWS_QUIC): a packet whose destination connection ID was
 * chosen by the server (short header; long-header Handshake) and whose
 * first DCID byte is a marker set with baton_group_set_marker goes to that
 * marker's slot, whatever its address: a connection survives migration and
 * NAT rebinding. Other packets are steered as flows. */

/* Flow options of a listener spec: flows=on|off|quic, flow_table=N,
 * flow_idle=DUR. Fixed layout (see "extensible structs"). */
struct baton_spec_flows {
	enum baton_flows mode;  /* udp:// default ON; tcp:// OFF */
	uint32_t table;         /* default BATON_FLOW_TABLE_DEFAULT */
	uint64_t idle_ms;       /* default BATON_FLOW_IDLE_DEFAULT_MS */
};

/* Parses the flow options of listener spec TEXT into FL (the rest of the
 * spec as baton_spec_parse does, with the same errors). Returns 0 or
 * -EINVAL with a message in ERR naming the bad part. */
int baton_spec_flows(const char *text, struct baton_spec_flows *fl, char *err, size_t errlen);

/* QUIC: packets whose DCID starts with MARKER (0..255) go to SLOT while it
 * holds the member it holds now. MARKER -1 removes SLOT's marker. A marker
 * given to another slot moves. -EOPNOTSUPP unless the group was made with
 * BATON_FLOWS_QUIC in eBPF mode. */
int baton_group_set_marker(struct baton_group *g, int slot, int marker);

struct baton_flow_stats {
	uint32_t table;          /* entries the table holds at most */
	uint32_t entries;        /* entries in it now, live or idle */
	uint32_t live;           /* flows neither idle nor on a member that left */
	uint32_t per_slot[BATON_MAX_SLOTS]; /* live flows by slot */
	uint64_t followed;       /* datagrams steered by the table */
	uint64_t by_cid;         /* datagrams steered by a QUIC marker */
	uint64_t created;        /* flows put in the table */
	uint64_t expired;        /* flows that came back idle, or to a member that left */
	uint64_t evicted;        /* flows the full table evicted (created - entries) */
	uint64_t insert_failed;  /* datagrams steered by the policy because no entry could be made */
};

/* Reads the flow table (one pass over it: call it at most a few times a
 * second on a big table) and the program's counters into ST, a struct of
 * LEN bytes (as baton_group_stats_info). -EOPNOTSUPP: no flow table. */
int baton_group_flows(const struct baton_group *g, struct baton_flow_stats *st, size_t len);

/* ---- health watch ----------------------------------------------------- */

/* Why a member is unhealthy. */
enum baton_health {
	BATON_HEALTH_OK = 0,
	BATON_HEALTH_STOPPED,  /* every owner is stopped (SIGSTOP) or traced */
	BATON_HEALTH_ZOMBIE,   /* every owner is a zombie (or stopped/gone) */
	BATON_HEALTH_GONE,     /* every owner has exited */
	BATON_HEALTH_HUNG,     /* queue non-empty without progress past the threshold */
};

const char *baton_health_name(enum baton_health h);

enum baton_watch_event_type {
	BATON_WATCH_DOWN,      /* found unhealthy: new connections steered away */
	BATON_WATCH_FENCED,    /* its listener shut down; its queue moved */
	BATON_WATCH_UP,        /* recovered: unfenced and back in the policy */
	BATON_WATCH_REMOVED,   /* every owner gone: the member left the group */
};

struct baton_watch_event {
	enum baton_watch_event_type type;
	int slot;
	enum baton_health why;
	uint32_t queue;        /* accept queue when it happened */
	uint64_t at_ms;        /* the NOW_MS of the tick */
	int err;               /* 0, or -errno if the action failed */
};

typedef void (*baton_watch_fn)(void *ctx, const struct baton_watch_event *ev);

struct baton_watch_opts {
	size_t sz;                 /* sizeof(struct baton_watch_opts) */
	uint32_t hang_ms;          /* no progress this long: hung (0: 100); stretched to 4x the longest stall the member got over by itself, up to 10 s */
	bool no_fence;             /* only steer away; leave the listener open */
	bool keep_gone;            /* leave members whose owners exit (zombie or gone)
	                            * to the caller: no steering, fencing or removal */
	bool owned_only;           /* watch only members given owners */
	baton_watch_fn on_event;
	void *ctx;
	baton_log_fn log;
	void *log_ctx;
};

struct baton_watch;

/* Watches G's members (G must outlive the watch). Poll-driven: nothing
 * happens between calls to baton_watch_tick. */
struct baton_watch *baton_watch_new(struct baton_group *g, const struct baton_watch_opts *opts);
void baton_watch_free(struct baton_watch *w);

/* Adds PID as an owner of SLOT (a process that accepts from it). A member
 * with owners is unhealthy when ALL of them are stopped, zombies or gone;
 * a member without owners is judged by its queue alone. */
int baton_watch_set_owner(struct baton_watch *w, int slot, pid_t pid);
int baton_watch_clear_owners(struct baton_watch *w, int slot);

/* Checks every member once (one /proc/PID/stat read per owner, one
 * getsockopt per member) and acts: steers away, fences, takes back, removes.
 * NOW_MS is a monotonic clock in ms. Returns the number of events or -errno. */
int baton_watch_tick(struct baton_watch *w, uint64_t now_ms);

/* Event-driven detection of stopped owners: loads a small eBPF program on
 * the signal_deliver tracepoint that reports every process taking a stop
 * signal through a ring buffer. Returns a file descriptor that becomes
 * readable (poll/epoll) when a report waits: call baton_watch_tick then,
 * and a stopped owner is steered away from at once instead of at the next
 * poll. Polling stays for hangs and as the fallback. -errno (-EPERM without
 * CAP_BPF and CAP_PERFMON, or root) leaves the watch as it was. The fd
 * belongs to the watch. */
int baton_watch_events(struct baton_watch *w);

struct baton_member_health {
	enum baton_health health;  /* OK, or why it is (still) unhealthy */
	bool down;                 /* steered away */
	bool fenced;
	uint32_t queue;            /* last accept queue read */
	uint32_t stalled_ms;       /* queue non-empty without progress so far */
	int nowners, owners_running;
	uint64_t since_ms;         /* when it went down (0 if it is up) */
};

/* SLOT's state. Returns 0, -EINVAL (NULL, slot out of range) or -ENOENT
 * (no member in SLOT). Fills the 0.1 layout (health to since_ms) and never
 * more. */
int baton_watch_health(const struct baton_watch *w, int slot, struct baton_member_health *h);

/* baton_watch_health for a struct of LEN bytes (sizeof(*H) as the caller
 * knows it, at least the 0.1 size): zeroes LEN bytes, fills what this
 * library knows, and returns the number of bytes filled, or -errno. */
int baton_watch_health_info(const struct baton_watch *w, int slot, struct baton_member_health *h, size_t len);

/* ---- adopting sockets from other processes ---------------------------- */

/* A close-on-exec copy of file descriptor FD of process PID (pidfd_open +
 * pidfd_getfd, Linux 5.6; needs ptrace access to PID, e.g. the same uid
 * without Yama restrictions, or CAP_SYS_PTRACE). Returns the copy or
 * -errno: -ESRCH the process is gone, -EBADF it has no such fd, -EPERM. */
int baton_fd_adopt(pid_t pid, int fd);

/* ---- systemd protocols: sd_notify and LISTEN_FDS, both ways ----------- */

/* Opens a datagram socket bound at PATH (unlinked first if stale) that
 * receives sd_notify messages with the sender's credentials. O_CLOEXEC and
 * non-blocking. Returns the fd or -errno. */
int baton_notify_open(const char *path);

struct baton_notify_msg {
	pid_t pid;            /* sender, from SCM_CREDENTIALS (0 if none came) */
	uid_t uid;
	bool ready;           /* READY=1 */
	bool stopping;        /* STOPPING=1 */
	bool reloading;       /* RELOADING=1 */
	pid_t mainpid;        /* MAINPID=, 0 if absent */
	int errnum;           /* ERRNO=, 0 if absent */
	char status[128];     /* STATUS=, "" if absent */
	bool listening;       /* BATON_LISTENING=1: libbaton-preload saw the server listen */
};

/* Receives one message. Any file descriptors sent along are closed (baton
 * keeps no fd store). Returns 0, -EAGAIN when none waits, -EBADMSG for a
 * message that is not KEY=VALUE lines, or another -errno. */
int baton_notify_recv(int fd, struct baton_notify_msg *msg);

/* For servers: sends STATE (e.g. "READY=1") to $NOTIFY_SOCKET, as
 * sd_notify(3) does. Returns 1 if sent, 0 if NOTIFY_SOCKET is not set. */
int baton_notify_send(const char *state);

/* For servers: the number of sockets passed with LISTEN_FDS (starting at
 * fd 3) when LISTEN_PID is this process, else 0; marks them O_CLOEXEC and,
 * with UNSET_ENV, removes the variables, as sd_listen_fds(3) does.
 * -EINVAL for a LISTEN_FDS that is no count; -errno (e.g. -EBADF for an fd
 * that is not open) when one cannot be marked; UNSET_ENV applies either way. */
int baton_listen_fds(bool unset_env);

/* ---- handover between processes --------------------------------------- */

/* A server that re-executes itself (the tableflip model) passes its
 * listening sockets, with their names, to its successor over a unix stream
 * socket. The protocol is in <baton_handover_wire.h>: versioned, at most
 * BATON_HANDOVER_MAX_FDS (253) fds, peers checked to run as the same uid or
 * root. The listening sockets never close, so no connection is lost. */

struct baton_handover_opts {
	size_t sz;               /* sizeof(struct baton_handover_opts) */
	baton_log_fn log;        /* why a handover failed, in words */
	void *log_ctx;
	mode_t mode;             /* offer at a path: the socket file's mode (0: 0600) */
	int hello_timeout_ms;    /* offer: a taker must ask this soon after it connects (0: 1000) */
	int ack_timeout_ms;      /* offer: ...and acknowledge this soon after it got the fds (0: 30000) */
	unsigned max_fds;        /* take: the most fds accepted (0: 253) */
	bool defer_ack;          /* take: acknowledge only at baton_handover_ack */
};

struct baton_handover;

/* Offers the N sockets FDS, named NAMES[i] (LISTEN_FDNAMES rules; NAMES or
 * NAMES[i] NULL: "unknown"), at PATH: a filesystem path (a stale socket
 * file there is replaced; a live one is -EADDRINUSE) or "@name" in the
 * abstract namespace, which any user can bind first: prefer a path in a
 * 0700 directory, or end the name in XXXXXX (6 or more) for a random one
 * (getrandom), read back with baton_handover_path. Keeps its own copies of the fds. Nothing is answered
 * until baton_handover_serve. Returns NULL with errno on failure. */
struct baton_handover *baton_handover_offer(const char *path, const int *fds, const char *const *names, size_t n,
					    const struct baton_handover_opts *opts);

/* Where the offer is: PATH as given, or with the trailing XXXXXX of an
 * "@name-XXXXXX" replaced by random letters (tell the successor this). */
const char *baton_handover_path(const struct baton_handover *h);

/* One fd that polls readable when baton_handover_serve has work: a taker
 * connected, sent something, or ran out of time. Stable for the object's life. */
int baton_handover_fd(const struct baton_handover *h);

/* Answers takers for up to TIMEOUT_MS (0: only what is pending; -1: until
 * one finishes): accepts, checks credentials, sends the fds on HELLO and
 * waits for the ACK without blocking the caller's loop beyond TIMEOUT_MS.
 * Returns the pid of the taker that acknowledged (> 0), 0 if none finished
 * yet, or -errno for a taker that failed (refused, hung up, sent ERROR, too
 * slow); the offer stays open for the next one either way. */
int baton_handover_serve(struct baton_handover *h, int timeout_ms);

/* Closes the offer (and its copies of the fds) and removes its socket file
 * unless another process has replaced it since. */
void baton_handover_free(struct baton_handover *h);

/* What baton_handover_take received (a fixed layout). The fds are the
 * caller's: close them when done (baton_handover_fds_free does not). */
struct baton_handover_fds {
	size_t n;
	int *fds;                /* O_CLOEXEC */
	char **names;            /* names[i] names fds[i] */
	pid_t pid;               /* the offering process */
	uid_t uid;
	int conn;                /* defer_ack: the connection until the ack, else -1 */
};

/* Connects to PATH, checks that the offering process runs as this uid or
 * root, asks for its sockets and receives them, all within TIMEOUT_MS (-1:
 * no limit), and acknowledges (unless opts->defer_ack). Returns the number
 * of fds, or -errno with nothing left open: -ETIMEDOUT, -ECONNREFUSED or
 * -ENOENT (no offer at PATH), -EPERM (peer of another uid, or the offerer
 * refused us), -EBADMSG (not this protocol, names that do not match the
 * fds), -EPROTONOSUPPORT (another version), -E2BIG (more than max_fds),
 * -EMSGSIZE (fds cut off: MSG_CTRUNC, e.g. RLIMIT_NOFILE), -ECONNRESET (the
 * offerer hung up mid-message). OUT is cleared first. */
int baton_handover_take(const char *path, int timeout_ms, const struct baton_handover_opts *opts,
			struct baton_handover_fds *out);

/* With defer_ack: tells the offerer that this process now serves (it may
 * start draining). Returns 0 or -errno (-EPIPE: the offerer is gone). */
int baton_handover_ack(struct baton_handover_fds *f);

/* Frees the arrays and closes the connection (an unacknowledged handover
 * then fails on the offering side); leaves the fds open. */
void baton_handover_fds_free(struct baton_handover_fds *f);

/* ---- socket inspector (baton ls) -------------------------------------- */

/* Options read per socket; baton_sock.opt[] is indexed by these and
 * baton_sock.opt_known has bit (1u << BATON_OPT_x) set for each one that was
 * actually read. A field whose bit is clear is unknown, never guessed. */
enum baton_sockopt {
	BATON_OPT_REUSEADDR,     /* SO_REUSEADDR: 0, 1 (or 2: the kernel forced it) */
	BATON_OPT_REUSEPORT,     /* SO_REUSEPORT */
	BATON_OPT_V6ONLY,        /* IPV6_V6ONLY */
	BATON_OPT_KEEPALIVE,     /* SO_KEEPALIVE */
	BATON_OPT_NODELAY,       /* TCP_NODELAY */
	BATON_OPT_KEEPIDLE,      /* TCP_KEEPIDLE, seconds */
	BATON_OPT_KEEPINTVL,     /* TCP_KEEPINTVL, seconds */
	BATON_OPT_KEEPCNT,       /* TCP_KEEPCNT */
	BATON_OPT_DEFER_ACCEPT,  /* TCP_DEFER_ACCEPT, seconds (as getsockopt reports it) */
	BATON_OPT_FASTOPEN,      /* TCP_FASTOPEN queue length, 0 = off */
	BATON_OPT_USER_TIMEOUT,  /* TCP_USER_TIMEOUT, ms */
	BATON_OPT_RCVBUF,        /* SO_RCVBUF, bytes */
	BATON_OPT_SNDBUF,        /* SO_SNDBUF, bytes */
	BATON_OPT_USERLOCKS,     /* bit 1: SO_SNDBUF was set, bit 2: SO_RCVBUF was set */
	BATON_OPT_MARK,          /* SO_MARK */
	BATON_OPT_BOUND_IF,      /* SO_BINDTOIFINDEX, 0 = any */
	BATON_OPT_COUNT
};

/* What else was read (baton_sock.known). */
#define BATON_SOCK_GROUP  0x1u   /* group, group_size */
#define BATON_SOCK_PROG   0x2u   /* prog_type, prog_id */
#define BATON_SOCK_OWNERS 0x4u   /* owners[] is the complete list */
#define BATON_SOCK_STEER  0x8u   /* slot, weight, table_n */

enum baton_prog_type { BATON_PROG_NONE = 0, BATON_PROG_EBPF = 1, BATON_PROG_CBPF = 2 };

#define BATON_SOCK_MAX_OWNERS 4
#define BATON_COMM_MAX 16

struct baton_sock_owner {
	int32_t pid;
	int32_t fd;
	char comm[BATON_COMM_MAX];
};

/* One TCP listener or UDP socket, as baton_socks_collect found it. */
struct baton_sock {
	enum baton_proto proto;
	int family;                  /* AF_INET or AF_INET6 */
	uint8_t state;               /* kernel state: 10 listen; UDP 7 unconnected, 1 connected */
	uint8_t local[16], remote[16]; /* network order; IPv4 in the first 4 bytes */
	uint16_t lport, rport;       /* host order */
	uint32_t queue;              /* listener: accept queue; UDP: bytes waiting */
	uint32_t queue_max;          /* listener: backlog; UDP: bytes waiting to send */
	uint32_t uid;
	uint64_t inode;
	uint64_t cookie;             /* SO_COOKIE */
	uint32_t known;              /* BATON_SOCK_* bits */
	uint32_t opt_known;          /* 1u << BATON_OPT_* bits */
	int64_t opt[BATON_OPT_COUNT];
	uint32_t group;              /* reuseport group, numbered from 1 in this
				      * collection; 0: in none */
	uint32_t group_size;         /* members the kernel counts in the group */
	enum baton_prog_type prog_type; /* program attached to the group */
	uint32_t prog_id;            /* eBPF program id (0 for classic BPF) */
	int32_t slot;                /* baton steering slot, -1: not steered by baton */
	uint32_t weight;             /* the slot's entries in the pick table */
	uint32_t table_n;            /* entries in use in the pick table (0: kernel hash) */
	uint32_t nowners;            /* owners found; owners[] holds the first few */
	struct baton_sock_owner owners[BATON_SOCK_MAX_OWNERS];
	char why[256];               /* why fields are unknown; "" when all are known */
};

/* Which sockets to collect and how. */
struct baton_collect_opts {
	size_t sz;                   /* sizeof(struct baton_collect_opts) */
	bool udp_all;                /* also connected (non-listening) UDP sockets */
	bool no_iter;                /* do not load the BPF iterator (use the fallback) */
	baton_log_fn log;
	void *log_ctx;
	bool diag_only;              /* only what sock_diag gives (addresses, queues,
				      * cookies): cheap enough to poll */
	size_t sock_sz;              /* sizeof(struct baton_sock) as the caller
				      * knows it: the size of each element of
				      * *OUT. 0 (or an opts without this field):
				      * the 0.1 layout. Set it. */
};

/* Collects every TCP listener and UDP socket of the caller's network
 * namespace: sock_diag for addresses and queues, a BPF iterator (when
 * privileged) for options, reuseport groups and programs, /proc for owners,
 * and pidfd_getfd + getsockopt for options where the iterator cannot load.
 * *OUT (free with baton_socks_free) is sorted by protocol, port, address;
 * its elements are opts->sock_sz bytes apart, and the bytes of fields this
 * library does not know are zero. */
int baton_socks_collect(const struct baton_collect_opts *opts, struct baton_sock **out, size_t *n);

void baton_socks_free(struct baton_sock *socks);

#ifdef __cplusplus
}
#endif

#endif
