/* SPDX-License-Identifier: BSD-2-Clause */
/* Between handoff.c and handoff_gen.c: the feature's own state (the
 * channels, the connections in flight, the counters) and the helpers both
 * files use. Nothing else includes it; the rest of the supervisor uses
 * handoff.h. */
#ifndef BATON_SUP_HANDOFF_CHAN_H
#define BATON_SUP_HANDOFF_CHAN_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "handoff_wire.h"

struct pending {
	uint32_t token;       /* 0: free */
	int wake;             /* our connection to the serving generation */
	int from, to;         /* generation slots; the connection waits in TO's channel */
	int listener;
	int wakes;            /* wake connections made for it */
	long long deadline, rewake_at;
};

struct chan {
	int sup;              /* our end, -1: none */
	int gen;              /* a copy of the generation's end: what it did not take is taken back */
	int id;               /* the generation it was made for */
	int mslot;            /* its index in the map (draining, answered, chan): fixed at its start */
	bool draining;        /* told to stop while another serves: its GIVEs are taken */
	bool adopt;           /* a generation a previous supervisor started: take its channel back */
	bool paused;          /* over its pace: not read until the window ends */
	bool rescan;          /* taken back: what waits in it is forwarded anew */
	int used;             /* messages read in this window */
	long long window_end;
};

struct handoff {
	char map_path[4096];
	struct handoff_map *map;
	struct chan ch[MAX_GENS];
	struct pending p[HANDOFF_WAKES];
	int npending;
	uint32_t next_token;
	int spawn_gi;         /* the slot handoff_gen_start made a channel for, -1: none */
	int spawn_prev;       /* the serving generation's slot, whose end the new one keeps too; -1 */
	bool orphans_done;    /* channels of generations that ended while no supervisor ran: read */
	unsigned long long moving;  /* inode of the give being moved (see moving_ino), 0: none */
	unsigned long long netns;   /* inode of our network namespace: the listeners' */
	/* since this supervisor started */
	unsigned long long offered, handed_off, no_target, limit, expired, wake_failed, refused, throttled;
	unsigned long long in[MAX_GENS], out[MAX_GENS];
	unsigned long long answered_before;   /* of slots since reused */
	bool said_no_shim;
};

/* handoff.c */
ssize_t ho_recv_msg_flags(int ch, struct handoff_msg *m, int *fd, int *nfd, int *trunc, int flags);
void ho_forward(struct sup *s, int conn, int l, int from, long long deadline);
void ho_ch_close(struct sup *s, int gi);
int ho_ch_watch(struct sup *s, int gi);
bool ho_needs_adopt(const struct sup *s, int gi);
bool ho_conn_of(const struct handoff *h, const struct sup *s, int conn, int l);
void ho_consume(int ch);
bool ho_moved_before(struct handoff *h, int conn);
void ho_begin_move(struct handoff *h, int conn);
void ho_end_move(struct handoff *h);
/* handoff_gen.c */
void ho_adopt(struct sup *s, int gi);
bool ho_any_adopt(const struct sup *s);
void ho_orphans(struct sup *s);

#endif
