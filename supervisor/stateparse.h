/* SPDX-License-Identifier: BSD-2-Clause */
/* The state file's contents as read back (stateparse.c), apart from what
 * state.c does with them, so that the parser runs on any buffer without
 * side effects (fuzz/state_fuzz.c). */
#ifndef BATON_SUP_STATEPARSE_H
#define BATON_SUP_STATEPARSE_H

#include <stdbool.h>
#include <stdio.h>

#include "core.h"

#define STATE_MAGIC "baton-state 1"

struct st_gen {
	int id;
	pid_t pid;
	unsigned long long ticks;
	char state[16];
	long long wall_ms;
	int stopped;
	int pidfd;
	bool alive;
};

struct st_member {
	int id, l, slot;
	unsigned long long ino;
};

struct st_count {
	int id, l;
	struct gen_count c;
};

struct state {
	char **base, **cmd, **env, **next_cmd, **next_env;
	struct st_count *cnt;
	size_t ncnt;
	char name[BATON_NAME_MAX + 1];
	char mode[16];
	char pins[4096];
	int next_id, done, failed, restarts, active, reload;
	char last_reload[320];	/* the last reload's outcome, as status says it; "" none */
	int nl;
	struct baton_spec *spec;
	struct st_gen gen[MAX_GENS];
	int ngen;
	struct st_member *mem;
	size_t nmem, capmem;
	unsigned long long *shared;     /* per listener: inode of its shared socket, 0 none */
	bool ended;
};

/* Where a state file went wrong: LINENO 0 if it only lacks its end line. */
struct state_bad {
	int lineno;
	char quoted[400];       /* the line, escaped (state_quote) */
};

/* A line another part owns (the stage, canary.c): true if it took it. */
typedef bool (*state_line_fn)(void *ctx, const char *line);

/* Parses F into ST (zeroed first; state_free it whatever the result).
 * 0, -EBADMSG with BAD filled, or -ENOMEM. */
int state_parse(FILE *f, struct state *st, state_line_fn extra, void *ctx, struct state_bad *bad);
void state_free(struct state *st);
/* LINE (LEN bytes, any of them) as printable text for a log: \xNN for
 * every byte outside printable ASCII, \\ and \", at most 80 bytes of it
 * and then how long it was. */
void state_quote(const char *line, size_t len, char *out, size_t outlen);

#endif
