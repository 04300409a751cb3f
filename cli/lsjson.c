/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls --json: the collected sockets (and stale pins) as one JSON
 * document, one socket a line. Fields: man baton(1), JSON OUTPUT; the
 * tests render recorded fixtures through it (tests/unit/test_ls_render.c). */
#include <arpa/inet.h>
#include <string.h>

#include "lsfmt.h"
#include "lsparts.h"
#include "util.h"

#define TCP_LISTEN 10

static const char *state_name(const struct baton_sock *s)
{
	if (s->proto == BATON_PROTO_TCP)
		return s->state == TCP_LISTEN ? "listen" : "other";
	return s->state == LS_UDP_CONNECTED ? "connected" : "unconnected";
}

/* json_sock builds each line in a buffer with these and writes it once: with
 * ten thousand sockets a fprintf per field was most of baton ls's own time. */
struct jb {
	char buf[1536];
	size_t len;
};

static void jb_put(struct jb *b, const char *str, size_t n)
{
	if (n > sizeof(b->buf) - b->len)
		n = sizeof(b->buf) - b->len;	/* cannot happen: a line is well under */
	memcpy(b->buf + b->len, str, n);
	b->len += n;
}

#define JB_LIT(b, lit) jb_put((b), "" lit, sizeof(lit) - 1)

static void jb_str(struct jb *b, const char *str)
{
	jb_put(b, str, strlen(str));
}

static void jb_u64(struct jb *b, unsigned long long v)
{
	char d[24];
	size_t i = sizeof(d);

	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10));
	jb_put(b, d + i, sizeof(d) - i);
}

static void jb_i64(struct jb *b, long long v)
{
	if (v < 0) {
		JB_LIT(b, "-");
		jb_u64(b, 0ULL - (unsigned long long)v);
	} else {
		jb_u64(b, (unsigned long long)v);
	}
}

static void json_sock(FILE *out, const struct baton_sock *s)
{
	char ep[64], ip[INET6_ADDRSTRLEN];
	uint32_t i, shown = s->nowners < BATON_SOCK_MAX_OWNERS ? s->nowners : BATON_SOCK_MAX_OWNERS;
	struct jb b;
	int o;

	b.len = 0;
	ls_fmt_endpoint(ep, sizeof(ep), s->family, s->local, s->lport);
	ls_fmt_addr(ip, sizeof(ip), s->family, s->local);
	JB_LIT(&b, "{\"proto\": \"");
	jb_str(&b, ls_proto_name(s));
	JB_LIT(&b, "\", \"family\": \"");
	jb_str(&b, s->family == AF_INET6 ? "ipv6" : "ipv4");
	JB_LIT(&b, "\", \"state\": \"");
	jb_str(&b, state_name(s));
	JB_LIT(&b, "\", \"local\": \"");
	jb_str(&b, ep);
	JB_LIT(&b, "\", \"address\": \"");
	jb_str(&b, ip);
	JB_LIT(&b, "\", \"port\": ");
	jb_u64(&b, s->lport);
	JB_LIT(&b, ", ");
	if (s->proto == BATON_PROTO_UDP && s->state == LS_UDP_CONNECTED) {
		ls_fmt_endpoint(ep, sizeof(ep), s->family, s->remote, s->rport);
		JB_LIT(&b, "\"peer\": \"");
		jb_str(&b, ep);
		JB_LIT(&b, "\", ");
	} else {
		JB_LIT(&b, "\"peer\": null, ");
	}
	JB_LIT(&b, "\"queue\": ");
	jb_u64(&b, s->queue);
	JB_LIT(&b, ", \"queue_max\": ");
	jb_u64(&b, s->queue_max);
	JB_LIT(&b, ", \"uid\": ");
	jb_u64(&b, s->uid);
	JB_LIT(&b, ", \"inode\": ");
	jb_u64(&b, (unsigned long long)s->inode);
	JB_LIT(&b, ", \"cookie\": ");
	jb_u64(&b, (unsigned long long)s->cookie);
	JB_LIT(&b, ", ");
	if (s->known & BATON_SOCK_GROUP) {
		JB_LIT(&b, "\"group\": ");
		jb_u64(&b, s->group);
		JB_LIT(&b, ", \"group_size\": ");
		jb_u64(&b, s->group ? s->group_size : 0);
		JB_LIT(&b, ", ");
	} else {
		JB_LIT(&b, "\"group\": null, \"group_size\": null, ");
	}
	if (s->known & BATON_SOCK_PROG) {
		JB_LIT(&b, "\"program\": \"");
		jb_str(&b, ls_prog_name(s->prog_type));
		JB_LIT(&b, "\", \"program_id\": ");
		jb_u64(&b, s->prog_id);
		JB_LIT(&b, ", ");
	} else {
		JB_LIT(&b, "\"program\": null, \"program_id\": null, ");
	}
	if (s->known & BATON_SOCK_STEER) {
		JB_LIT(&b, "\"slot\": ");
		jb_i64(&b, s->slot);
		JB_LIT(&b, ", \"weight\": ");
		jb_u64(&b, s->slot >= 0 ? s->weight : 0);
		JB_LIT(&b, ", \"table\": ");
		jb_u64(&b, s->table_n);
		JB_LIT(&b, ", ");
	} else {
		JB_LIT(&b, "\"slot\": null, \"weight\": null, \"table\": null, ");
	}
	JB_LIT(&b, "\"options\": {");
	for (o = 0; o < BATON_OPT_COUNT; o++) {
		if (o)
			JB_LIT(&b, ", ");
		JB_LIT(&b, "\"");
		jb_str(&b, ls_optdefs[o].name);
		JB_LIT(&b, "\": ");
		if (!LS_KNOWN(s, o))
			JB_LIT(&b, "null");
		else if (ls_optdefs[o].kind == LS_FLAG)
			jb_str(&b, s->opt[o] ? "true" : "false");
		else
			jb_i64(&b, (long long)s->opt[o]);
	}
	JB_LIT(&b, "}, \"owners\": [");
	for (i = 0; i < shown; i++) {
		if (i)
			JB_LIT(&b, ", ");
		JB_LIT(&b, "{\"pid\": ");
		jb_i64(&b, s->owners[i].pid);
		JB_LIT(&b, ", \"fd\": ");
		jb_i64(&b, s->owners[i].fd);
		JB_LIT(&b, ", \"comm\": ");
		/* another user's text: the shared escaper writes it */
		fwrite(b.buf, 1, b.len, out);
		b.len = 0;
		baton_json_str(out, s->owners[i].comm);
		JB_LIT(&b, "}");
	}
	JB_LIT(&b, "], \"owners_total\": ");
	jb_u64(&b, s->nowners);
	JB_LIT(&b, ", \"owners_complete\": ");
	jb_str(&b, s->known & BATON_SOCK_OWNERS ? "true" : "false");
	JB_LIT(&b, ", \"unknown\": ");
	if (s->why[0]) {
		fwrite(b.buf, 1, b.len, out);
		b.len = 0;
		baton_json_str(out, s->why);
	} else {
		JB_LIT(&b, "null");
	}
	JB_LIT(&b, "}");
	fwrite(b.buf, 1, b.len, out);
}

static void json_sockets(FILE *out, const struct baton_sock *v, size_t n)
{
	size_t k;

	/* one socket per line: the document stays greppable */
	fprintf(out, "{\"sockets\": [");
	for (k = 0; k < n; k++) {
		fputs(k ? ",\n  " : "\n  ", out);
		json_sock(out, &v[k]);
	}
	fprintf(out, "%s]", n ? "\n" : "");
}

void ls_render_json(FILE *out, const struct baton_sock *v, size_t n)
{
	json_sockets(out, v, n);
	fprintf(out, "}\n");
}

void ls_render_json_stale(FILE *out, const struct baton_sock *v, size_t n, const struct ls_stale *st,
			  long nstale)
{
	char why[160], how[400];

	json_sockets(out, v, n);
	fprintf(out, ",\n \"stale_pins\": ");
	if (nstale < 0) {
		fprintf(out, "null}\n");
		return;
	}
	fprintf(out, "[");
	for (long k = 0; k < nstale; k++) {
		ls_stale_words(&st[k], why, sizeof(why), how, sizeof(how));
		fprintf(out, "%s\n  {\"path\": ", k ? "," : "");
		baton_json_str(out, st[k].path);
		fprintf(out, ", \"listener\": ");
		if (st[k].spec[0])
			baton_json_str(out, st[k].spec);
		else
			fprintf(out, "null");
		fprintf(out, ", \"supervisor\": ");
		if (st[k].supervisor[0])
			baton_json_str(out, st[k].supervisor);
		else
			fprintf(out, "null");
		fprintf(out, ", \"why\": ");
		baton_json_str(out, why);
		fprintf(out, ", \"remove\": ");
		baton_json_str(out, how);
		fprintf(out, "}");
	}
	fprintf(out, "%s]}\n", nstale ? "\n " : "");
}

