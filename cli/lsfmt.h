/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls without collecting: filters, the text and JSON renderings, and
 * the fixture format (record and load) the renderer is tested against. Each
 * function takes the collected array, so tests run it on recorded data. */
#ifndef BATON_CLI_LSFMT_H
#define BATON_CLI_LSFMT_H

#include <stdbool.h>
#include <stdio.h>

#include "baton.h"

/* FILTER of baton ls: a port, ADDRESS:PORT ([V6]:PORT) or a listener spec. */
struct ls_filter {
	int proto;          /* 0: any, else enum baton_proto */
	int family;         /* 0: any address */
	uint8_t addr[16];
	uint16_t port;
};

int ls_filter_parse(const char *text, struct ls_filter *f, char *err, size_t errlen);
bool ls_filter_match(const struct ls_filter *f, const struct baton_sock *s);

/* One line per socket, members of a reuseport group under its heading. */
void ls_render_text(FILE *out, const struct baton_sock *s, size_t n);
/* One JSON document (fields: man baton(1), JSON OUTPUT). */
void ls_render_json(FILE *out, const struct baton_sock *s, size_t n);

/* A pin directory of baton's whose group is gone (no socket is left in its
 * pinned socket map), with what its name says about whose it was. */
struct ls_stale {
	char path[256];
	char supervisor[64];   /* run-NAME/...: NAME; else "" */
	char spec[96];         /* steer-ADDR-PORT: tcp://ADDR:PORT; else "" */
	int family;            /* with spec: the address */
	uint8_t addr[16];
	uint16_t port;
	bool listening;        /* something else listens on spec now */
};

/* Fills ST from PATH, a directory under ROOT (/sys/fs/bpf/baton). */
void ls_stale_parse(struct ls_stale *st, const char *root, const char *path);
bool ls_stale_match(const struct ls_filter *f, const struct ls_stale *st);
/* "stale baton pins: ..." lines, each with the way to remove them. */
void ls_render_stale_text(FILE *out, const struct ls_stale *st, size_t n);
/* ls_render_json with the field stale_pins: NSTALE < 0 prints null (the
 * pins could not be read). */
void ls_render_json_stale(FILE *out, const struct baton_sock *s, size_t n, const struct ls_stale *st,
			  long nstale);

/* Fixture format: one line per socket of KEY=VALUE words; a field that was
 * not read has no word. ls_load reads it back (free with free()). */
void ls_record(FILE *out, const struct baton_sock *s, size_t n);
int ls_load(FILE *in, struct baton_sock **out, size_t *n, char *err, size_t errlen);

#endif
