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

/* Fixture format: one line per socket of KEY=VALUE words; a field that was
 * not read has no word. ls_load reads it back (free with free()). */
void ls_record(FILE *out, const struct baton_sock *s, size_t n);
int ls_load(FILE *in, struct baton_sock **out, size_t *n, char *err, size_t errlen);

#endif
