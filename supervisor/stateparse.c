/* SPDX-License-Identifier: BSD-2-Clause */
/* The state file's parser: text in, struct state out, nothing else touched
 * (no log, no process, no file), so that the state a root supervisor acts
 * on can be fuzzed (fuzz/state_fuzz.c); state.c decides what to do with it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stateparse.h"
#include "strv.h"

void state_quote(const char *line, size_t len, char *out, size_t outlen)
{
	static const size_t max = 80;
	size_t o = 0, i;

	if (!outlen)
		return;
	for (i = 0; i < len && i < max && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\\' || c == '"')
			o += (size_t)snprintf(out + o, outlen - o, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	out[o] = '\0';
	if (i < len)
		snprintf(out + o, outlen - o, "... (%zu bytes)", len);
}

void state_free(struct state *st)
{
	free(st->spec);
	free(st->mem);
	free(st->cnt);
	strv_free(st->base);
	strv_free(st->cmd);
	strv_free(st->env);
	strv_free(st->next_cmd);
	strv_free(st->next_env);
	free(st->shared);
	for (int i = 0; i < st->ngen; i++)
		if (st->gen[i].pidfd >= 0)
			close(st->gen[i].pidfd);
}

/* A line this version added: the command items, the counters and the
 * last reload's outcome. 1 if
 * LINE was one, 0 if not, -errno if it was one that is bad. */
static int read_added(struct state *st, const char *line)
{
	static const struct { const char *key; size_t off; } items[] = {
		{ "cmd-base ", offsetof(struct state, base) }, { "cmd ", offsetof(struct state, cmd) },
		{ "env ", offsetof(struct state, env) }, { "next-cmd ", offsetof(struct state, next_cmd) },
		{ "next-env ", offsetof(struct state, next_env) },
	};
	struct st_count c;
	unsigned long long v[6];

	if (!strncmp(line, "last-reload ", 12)) {
		const char *why;
		char *text = sup_unescape(line + 12, &why);

		if (!text)
			return -EBADMSG;
		snprintf(st->last_reload, sizeof(st->last_reload), "%s", text);
		free(text);
		return 1;
	}
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		const char *why;
		char *text;

		if (strncmp(line, items[i].key, strlen(items[i].key)))
			continue;
		text = sup_unescape(line + strlen(items[i].key), &why);
		if (!text)
			return -EBADMSG;
		return strv_push((char ***)((char *)st + items[i].off), text) ? -ENOMEM : 1;
	}
	if (sscanf(line, "gencount %d %d %llu %llu %llu %llu %llu %llu", &c.id, &c.l, &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5]) == 8) {
		struct st_count *nv = realloc(st->cnt, (st->ncnt + 1) * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		for (int k = 0; k < CNT_N; k++) {
			c.c.base[k] = v[k];
			c.c.acc[k] = v[3 + k];
		}
		st->cnt = nv;
		st->cnt[st->ncnt++] = c;
		return 1;
	}
	return 0;
}

int state_parse(FILE *f, struct state *st, state_line_fn extra, void *ctx, struct state_bad *bad)
{
	char *line = NULL;
	size_t linecap = 0;
	ssize_t n;
	int lineno = 0, r = 0;

	memset(st, 0, sizeof(*st));
	memset(bad, 0, sizeof(*bad));
	st->spec = calloc(SUP_MAX_LISTENERS, sizeof(*st->spec));
	st->shared = calloc(SUP_MAX_LISTENERS, sizeof(*st->shared));
	if (!st->spec || !st->shared)
		return -ENOMEM;
	while ((n = getline(&line, &linecap, f)) > 0) {
		char spec[900], err[256];
		int l, a;
		unsigned port;

		lineno++;
		if (line[n - 1] == '\n')
			n--;
		line[n] = '\0';
		if (strlen(line) != (size_t)n)
			goto bad;	/* a NUL byte: not a line this supervisor wrote */
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC))
				goto bad;
			continue;
		}
		if (!strcmp(line, "end")) {
			st->ended = true;
			break;
		}
		if (sscanf(line, "name %63s", st->name) == 1 || sscanf(line, "pid %d", &a) == 1 ||
		    sscanf(line, "mode %15s", st->mode) == 1 || sscanf(line, "pins %4095s", st->pins) == 1 ||
		    sscanf(line, "next_id %d", &st->next_id) == 1 ||
		    sscanf(line, "counts %d %d %d", &st->done, &st->failed, &st->restarts) == 3 ||
		    sscanf(line, "active %d", &st->active) == 1 || sscanf(line, "reload %d", &st->reload) == 1)
			continue;
		if (sscanf(line, "listener %d %u %899s", &l, &port, spec) == 3) {
			if (l != st->nl || l >= SUP_MAX_LISTENERS || port > 65535 ||
			    baton_spec_parse(spec, &st->spec[l], err, sizeof(err)))
				goto bad;
			st->spec[l].port = (uint16_t)port;
			st->nl++;
			continue;
		}
		if (!strncmp(line, "shared ", 7)) {
			unsigned long long ino;

			if (sscanf(line, "shared %d %llu", &l, &ino) != 2 || l < 0 || l >= st->nl || !ino)
				goto bad;
			st->shared[l] = ino;
			continue;
		}
		if (!strncmp(line, "gen ", 4)) {
			struct st_gen *g = &st->gen[st->ngen];

			if (st->ngen == MAX_GENS ||
			    sscanf(line, "gen %d %d %llu %15s %lld %d", &g->id, &a, &g->ticks, g->state, &g->wall_ms,
				   &g->stopped) != 6 || a <= 0)
				goto bad;
			g->pid = a;
			g->pidfd = -1;
			st->ngen++;
			continue;
		}
		if (extra && extra(ctx, line))
			continue;
		if ((a = read_added(st, line))) {
			if (a == -ENOMEM) {
				r = a;
				goto out;
			}
			if (a < 0)
				goto bad;
			continue;
		}
		if (!strncmp(line, "member ", 7)) {
			struct st_member m;

			if (sscanf(line, "member %d %d %d %llu", &m.id, &m.l, &m.slot, &m.ino) != 4 || m.l < 0 ||
			    m.l >= st->nl)
				goto bad;
			if (st->nmem == st->capmem) {
				size_t cap = st->capmem ? st->capmem * 2 : 64;
				struct st_member *v = realloc(st->mem, cap * sizeof(*v));

				if (!v) {
					r = -ENOMEM;
					goto out;
				}
				st->mem = v;
				st->capmem = cap;
			}
			st->mem[st->nmem++] = m;
			continue;
		}
		goto bad;
	}
	if (!st->ended)
		r = -EBADMSG;
	goto out;
bad:
	bad->lineno = lineno;
	state_quote(line, (size_t)n, bad->quoted, sizeof(bad->quoted));
	r = -EBADMSG;
out:
	free(line);
	return r;
}

