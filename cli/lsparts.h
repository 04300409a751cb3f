/* SPDX-License-Identifier: BSD-2-Clause */
/* What the two halves of baton ls's rendering share: lsfmt.c (filters,
 * text, fixtures) and lsjson.c (JSON) name socket options, addresses and
 * stale pins the same way. Not for the collector (ls.c). */
#ifndef BATON_CLI_LSPARTS_H
#define BATON_CLI_LSPARTS_H

#include <stddef.h>
#include <stdint.h>

#include "lsfmt.h"

enum ls_opt_kind { LS_FLAG, LS_NUM };

struct ls_optdef {
	const char *name;	/* in JSON, fixtures and text */
	enum ls_opt_kind kind;
	const char *unit;	/* text rendering */
};

extern const struct ls_optdef ls_optdefs[BATON_OPT_COUNT];

/* whether option O of socket S was read */
#define LS_KNOWN(s, o) (((s)->opt_known >> (o)) & 1u)
/* a UDP socket's state once connect()ed (the kernel's TCP_ESTABLISHED) */
#define LS_UDP_CONNECTED 1

void ls_fmt_addr(char *buf, size_t len, int family, const uint8_t *a);
/* "[IP]:PORT" or "IP:PORT", cut to LEN - 1 bytes */
void ls_fmt_endpoint(char *buf, size_t len, int family, const uint8_t *a, uint16_t port);
const char *ls_proto_name(const struct baton_sock *s);
const char *ls_prog_name(enum baton_prog_type t);
/* Why ST is stale, and how to remove it. */
void ls_stale_words(const struct ls_stale *st, char *why, size_t wlen, char *how, size_t hlen);

#endif
