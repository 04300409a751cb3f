/* SPDX-License-Identifier: BSD-2-Clause */
/* Idle-connection handoff: what the supervisor (supervisor/handoff.c) and the
 * preload shim (preload/handoff.c) share. A file mapped by both (who drains,
 * the wake connections in flight, counters) and the datagrams over the
 * supervisor's handoff socket. Both sides come from one build. */
#ifndef BATON_HANDOFF_WIRE_H
#define BATON_HANDOFF_WIRE_H

#include <stdint.h>

#define HANDOFF_MAGIC 0x62686f31u     /* "bho1" */
#define HANDOFF_GENS 16               /* = MAX_GENS: indexed by the generation's slot */
#define HANDOFF_WAKES 256             /* handed-off connections in flight, at most */
/* The shim waits this long for the supervisor's answer to a TAKE (a few
 * microseconds, unless the machine is overloaded: the server's accept()
 * waits meanwhile) and the supervisor keeps a connection that long before
 * it gives up on the wake (longer: a late TAKE still finds it). */
#define HANDOFF_TAKE_MS 1500
#define HANDOFF_TTL_MS 3000

/* One connection in flight: the supervisor's wake connection to the serving
 * generation, known by its source address, and the token to ask for the
 * handed-off connection with. token 0: free. The supervisor writes addr and
 * port first and token last (release); the shim reads token first
 * (acquire) and again after comparing. */
struct handoff_wake {
	uint32_t token;
	uint16_t family;
	uint16_t port;                /* network order, as accept() reports it */
	uint8_t addr[16];
};

/* The shared file, $BATON_RUNTIME_DIR/NAME.handoff-map. Counters are
 * cumulative over the supervisor's life (a `baton upgrade` keeps them). */
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
};

/* Datagrams to the supervisor's socket (SOCK_DGRAM, SO_PASSCRED: it knows
 * the sender's pid). GIVE carries the connection (SCM_RIGHTS) and needs no
 * answer; TAKE is answered with TAKE and the connection, or without one. */
enum { HANDOFF_GIVE = 1, HANDOFF_TAKE = 2 };

struct handoff_msg {
	uint32_t op;
	uint32_t listener;            /* index of the --listen, = its entry in BATON_PRELOAD */
	uint32_t gen;                 /* the sender's BATON_GENERATION */
	uint32_t token;               /* TAKE: the wake's */
};

#endif
