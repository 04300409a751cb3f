/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls, the part that needs no kernel: FILTER parsing and matching, the
 * text table (grouped by reuseport group) and the JSON document, and the
 * fixture format that records collected sockets so tests can render them. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lsfmt.h"
#include "util.h"

enum kind { FLAG, NUM };

struct optdef {
	const char *name;
	enum kind kind;
	const char *unit;   /* text rendering */
};

static const struct optdef optdefs[BATON_OPT_COUNT] = {
	[BATON_OPT_REUSEADDR] = { "reuseaddr", FLAG, "" },
	[BATON_OPT_REUSEPORT] = { "reuseport", FLAG, "" },
	[BATON_OPT_V6ONLY] = { "v6only", FLAG, "" },
	[BATON_OPT_KEEPALIVE] = { "keepalive", FLAG, "" },
	[BATON_OPT_NODELAY] = { "nodelay", FLAG, "" },
	[BATON_OPT_KEEPIDLE] = { "keepidle", NUM, "s" },
	[BATON_OPT_KEEPINTVL] = { "keepintvl", NUM, "s" },
	[BATON_OPT_KEEPCNT] = { "keepcnt", NUM, "" },
	[BATON_OPT_DEFER_ACCEPT] = { "defer_accept", NUM, "s" },
	[BATON_OPT_FASTOPEN] = { "fastopen", NUM, "" },
	[BATON_OPT_USER_TIMEOUT] = { "user_timeout", NUM, "ms" },
	[BATON_OPT_RCVBUF] = { "rcvbuf", NUM, "" },
	[BATON_OPT_SNDBUF] = { "sndbuf", NUM, "" },
	[BATON_OPT_USERLOCKS] = { "userlocks", NUM, "" },
	[BATON_OPT_MARK] = { "mark", NUM, "" },
	[BATON_OPT_BOUND_IF] = { "bound_if", NUM, "" },
};

#define KNOWN(s, o) (((s)->opt_known >> (o)) & 1u)
#define TCP_LISTEN 10
#define UDP_CONNECTED 1

/* ---- small string builder --------------------------------------------- */

struct sb {
	char buf[512];
	size_t len;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->len + 1 >= sizeof(b->buf))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->len, sizeof(b->buf) - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len = b->len + (size_t)n < sizeof(b->buf) ? b->len + (size_t)n : sizeof(b->buf) - 1;
}

static void sb_word(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_word(struct sb *b, const char *fmt, ...)
{
	char w[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w, sizeof(w), fmt, ap);
	va_end(ap);
	sb_add(b, "%s%s", b->len ? " " : "", w);
}

/* ---- addresses and filters --------------------------------------------- */

static void fmt_addr(char *buf, size_t len, int family, const uint8_t *a)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	size_t n;

	if (!len)
		return;
	inet_ntop(family, a, ip, sizeof(ip));
	n = strnlen(ip, sizeof(ip) - 1);
	n = n < len - 1 ? n : len - 1;
	memcpy(buf, ip, n);
	buf[n] = '\0';
}

/* "[IP]:PORT" or "IP:PORT", cut to LEN - 1 bytes. Called for every socket:
 * put together by hand, not with snprintf. */
static void fmt_endpoint(char *buf, size_t len, int family, const uint8_t *a, uint16_t port)
{
	char tmp[INET6_ADDRSTRLEN + 16], digits[8], *p = tmp;
	size_t ip, i = sizeof(digits), n;

	if (!len)
		return;
	if (family == AF_INET6)
		*p++ = '[';
	fmt_addr(p, INET6_ADDRSTRLEN, family, a);
	ip = strlen(p);
	p += ip;
	if (family == AF_INET6)
		*p++ = ']';
	*p++ = ':';
	do
		digits[--i] = (char)('0' + port % 10);
	while ((port /= 10));
	memcpy(p, digits + i, sizeof(digits) - i);
	p += sizeof(digits) - i;
	n = (size_t)(p - tmp) < len - 1 ? (size_t)(p - tmp) : len - 1;
	memcpy(buf, tmp, n);
	buf[n] = '\0';
}

static int parse_port(const char *p, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (!*p || *p < '0' || *p > '9')
		return -EINVAL;
	v = strtoul(p, &end, 10);
	if (*end || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int ls_filter_parse(const char *text, struct ls_filter *f, char *err, size_t errlen)
{
	struct baton_spec spec;
	char buf[128], *colon;

	memset(f, 0, sizeof(*f));
	if (strstr(text, "://")) {
		if (baton_spec_parse(text, &spec, err, errlen))
			return -EINVAL;
		f->proto = spec.proto;
		f->family = spec.family;
		f->port = spec.port;
		if (spec.family == AF_INET)
			memcpy(f->addr, &((struct sockaddr_in *)&spec.addr)->sin_addr, 4);
		else
			memcpy(f->addr, &((struct sockaddr_in6 *)&spec.addr)->sin6_addr, 16);
		return 0;
	}
	if (!parse_port(text, &f->port))
		return 0;
	if (strlen(text) >= sizeof(buf))
		goto bad;
	strcpy(buf, text);
	colon = strrchr(buf, ':');
	if (!colon || parse_port(colon + 1, &f->port))
		goto bad;
	*colon = '\0';
	if (buf[0] == '[' && colon > buf + 1 && colon[-1] == ']') {
		colon[-1] = '\0';
		if (inet_pton(AF_INET6, buf + 1, f->addr) != 1)
			goto bad;
		f->family = AF_INET6;
	} else if (inet_pton(AF_INET, buf, f->addr) == 1) {
		f->family = AF_INET;
	} else {
		goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "bad filter \"%s\": want PORT, ADDRESS:PORT, [IPV6]:PORT or a listener spec "
			      "such as tcp://0.0.0.0:8080", text);
	return -EINVAL;
}

bool ls_filter_match(const struct ls_filter *f, const struct baton_sock *s)
{
	if (f->proto && (int)s->proto != f->proto)
		return false;
	if (s->lport != f->port)
		return false;
	if (f->family && (s->family != f->family || memcmp(s->local, f->addr, f->family == AF_INET ? 4 : 16)))
		return false;
	return true;
}

/* ---- text ---------------------------------------------------------------- */

static const char *proto_name(const struct baton_sock *s)
{
	return s->proto == BATON_PROTO_TCP ? "tcp" : "udp";
}

static void text_steer(struct sb *b, const struct baton_sock *s)
{
	if (!(s->known & BATON_SOCK_STEER) || s->slot < 0)
		return;
	if (!s->table_n)
		sb_word(b, "slot=%d (kernel hash)", s->slot);
	else if (!s->weight)
		sb_word(b, "slot=%d drained", s->slot);
	else
		sb_word(b, "slot=%d share=%u%%", s->slot, (unsigned)((s->weight * 100 + s->table_n / 2) / s->table_n));
}

static void text_options(struct sb *b, const struct baton_sock *s)
{
	static const int core[] = { BATON_OPT_REUSEADDR, BATON_OPT_REUSEPORT, BATON_OPT_KEEPALIVE, BATON_OPT_NODELAY };
	unsigned ncore = s->proto == BATON_PROTO_TCP ? 4 : 3, i, unknown = 0;
	int o;

	text_steer(b, s);
	for (i = 0; i < ncore; i++)
		unknown += !KNOWN(s, core[i]);
	if (unknown == ncore)
		sb_word(b, "options=?");
	for (o = 0; o < BATON_OPT_COUNT; o++) {
		const struct optdef *d = &optdefs[o];
		int64_t v = s->opt[o];

		if (!KNOWN(s, o)) {
			for (i = 0; i < ncore && unknown < ncore; i++)
				if (core[i] == o)
					sb_word(b, "%s=?", d->name);
			continue;
		}
		if (!v)
			continue;
		switch (o) {
		case BATON_OPT_KEEPIDLE: case BATON_OPT_KEEPINTVL: case BATON_OPT_KEEPCNT:
		case BATON_OPT_USERLOCKS:
			continue;	/* shown with keepalive and the buffers */
		case BATON_OPT_KEEPALIVE:
			if (KNOWN(s, BATON_OPT_KEEPIDLE) && KNOWN(s, BATON_OPT_KEEPINTVL) && KNOWN(s, BATON_OPT_KEEPCNT))
				sb_word(b, "keepalive=%llds/%llds/%lld", (long long)s->opt[BATON_OPT_KEEPIDLE],
					(long long)s->opt[BATON_OPT_KEEPINTVL], (long long)s->opt[BATON_OPT_KEEPCNT]);
			else
				sb_word(b, "keepalive");
			continue;
		case BATON_OPT_RCVBUF: case BATON_OPT_SNDBUF:
			/* every socket has buffers; show them only where the owner set them */
			if (!KNOWN(s, BATON_OPT_USERLOCKS) ||
			    !(s->opt[BATON_OPT_USERLOCKS] & (o == BATON_OPT_RCVBUF ? 2 : 1)))
				continue;
			break;
		default:
			break;
		}
		if (d->kind == FLAG)
			sb_word(b, "%s", d->name);
		else
			sb_word(b, "%s=%lld%s", d->name, (long long)v, d->unit);
	}
	if ((s->opt[BATON_OPT_REUSEPORT] || !KNOWN(s, BATON_OPT_REUSEPORT)) && !(s->known & BATON_SOCK_GROUP))
		sb_word(b, "group=?");
	if (!b->len)
		sb_add(b, "-");
}

static void text_owners(struct sb *b, const struct baton_sock *s)
{
	uint32_t i, shown = s->nowners < BATON_SOCK_MAX_OWNERS ? s->nowners : BATON_SOCK_MAX_OWNERS;

	/* process names are their owners' to choose: escaped, so that none
	 * reaches the terminal of whoever runs baton ls (root) as a sequence */
	for (i = 0; i < shown; i++) {
		char comm[4 * BATON_COMM_MAX + 1];

		sb_add(b, "%s%s[%d] fd %d", i ? ", " : "", baton_text_escape(comm, sizeof(comm), s->owners[i].comm, 0),
		       s->owners[i].pid, s->owners[i].fd);
	}
	if (s->nowners > shown)
		sb_add(b, " +%u more", s->nowners - shown);
	if (!(s->known & BATON_SOCK_OWNERS))
		sb_add(b, "%s?", shown ? ", " : "");
	if (!b->len)
		sb_add(b, "-");
}

static void text_queue(struct sb *b, const struct baton_sock *s)
{
	if (s->proto == BATON_PROTO_TCP)
		sb_add(b, "%u/%u", s->queue, s->queue_max);
	else
		sb_add(b, "%u", s->queue);
}

enum { C_PROTO, C_LOCAL, C_PEER, C_QUEUE, C_OPTS, C_OWNERS, NCOLS };
static const char *const heads[NCOLS] = { "PROTO", "LOCAL", "PEER", "QUEUE", "OPTIONS", "OWNERS" };

static void row(const struct baton_sock *s, struct sb c[NCOLS])
{
	char ep[64];

	memset(c, 0, sizeof(struct sb) * NCOLS);
	sb_add(&c[C_PROTO], "%s%s", s->group ? "  " : "", proto_name(s));
	fmt_endpoint(ep, sizeof(ep), s->family, s->local, s->lport);
	sb_add(&c[C_LOCAL], "%s", ep);
	if (s->proto == BATON_PROTO_UDP && s->state == UDP_CONNECTED) {
		fmt_endpoint(ep, sizeof(ep), s->family, s->remote, s->rport);
		sb_add(&c[C_PEER], "%s", ep);
	} else {
		sb_add(&c[C_PEER], "*");
	}
	text_queue(&c[C_QUEUE], s);
	text_options(&c[C_OPTS], s);
	text_owners(&c[C_OWNERS], s);
}

static void group_heading(FILE *out, const struct baton_sock *v, size_t n, size_t first)
{
	const struct baton_sock *s = &v[first];
	size_t k, shown = 0;
	bool steered = false;
	char ep[64];

	for (k = first; k < n && v[k].group == s->group; k++) {
		shown++;
		steered |= (v[k].known & BATON_SOCK_STEER) != 0;
	}
	fmt_endpoint(ep, sizeof(ep), s->family, s->local, s->lport);
	fprintf(out, "reuseport group %u: %s %s, %u member%s", s->group, proto_name(s), ep, s->group_size,
		s->group_size == 1 ? "" : "s");
	if (shown != s->group_size)
		fprintf(out, " (%zu shown)", shown);
	if (s->prog_type == BATON_PROG_NONE)
		fprintf(out, ", no program (kernel hash)");
	else if (s->prog_type == BATON_PROG_CBPF)
		fprintf(out, ", classic BPF program");
	else
		fprintf(out, ", eBPF program %u", s->prog_id);
	if (steered) {
		if (s->table_n)
			fprintf(out, ", steered by baton (%u-entry pick table)", s->table_n);
		else
			fprintf(out, ", steered by baton (no slot has weight: kernel hash)");
	}
	fprintf(out, "\n");
}

static bool have_peer(const struct baton_sock *v, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (v[k].proto == BATON_PROTO_UDP && v[k].state == UDP_CONNECTED)
			return true;
	return false;
}

#define MAX_REASONS 8

void ls_render_text(FILE *out, const struct baton_sock *v, size_t n)
{
	size_t w[NCOLS] = { 0 }, k, i, nreasons = 0, more = 0;
	const char *reasons[MAX_REASONS];
	bool peer = have_peer(v, n);
	struct sb c[NCOLS];

	if (!n) {
		fprintf(out, "no listening sockets\n");
		return;
	}
	for (i = 0; i < NCOLS; i++)
		w[i] = strlen(heads[i]);
	for (k = 0; k < n; k++) {
		row(&v[k], c);
		for (i = 0; i < NCOLS; i++)
			if (c[i].len > w[i])
				w[i] = c[i].len;
	}
	for (i = 0; i < NCOLS; i++) {
		if (i == C_PEER && !peer)
			continue;
		if (i == NCOLS - 1)
			fprintf(out, "%s\n", heads[i]);
		else
			fprintf(out, "%-*s  ", (int)w[i], heads[i]);
	}
	for (k = 0; k < n; k++) {
		const struct baton_sock *s = &v[k];

		if (s->group && (k == 0 || v[k - 1].group != s->group))
			group_heading(out, v, n, k);
		row(s, c);
		for (i = 0; i < NCOLS; i++) {
			if (i == C_PEER && !peer)
				continue;
			if (i == NCOLS - 1)
				fprintf(out, "%s\n", c[i].buf);
			else
				fprintf(out, "%-*s  ", (int)w[i], c[i].buf);
		}
		if (!s->why[0])
			continue;
		for (i = 0; i < nreasons && strcmp(reasons[i], s->why); i++)
			;
		if (i < nreasons)
			continue;
		if (nreasons < MAX_REASONS)
			reasons[nreasons++] = s->why;
		else
			more++;
	}
	if (nreasons)
		fprintf(out, "\n? unknown:\n");
	for (i = 0; i < nreasons; i++) {
		fprintf(out, "  ");
		baton_text_fputs(out, reasons[i], 0);
		fprintf(out, "\n");
	}
	if (more)
		fprintf(out, "  (and %zu more reasons; --json shows each socket's)\n", more);
}

/* ---- JSON ---------------------------------------------------------------- */

static const char *state_name(const struct baton_sock *s)
{
	if (s->proto == BATON_PROTO_TCP)
		return s->state == TCP_LISTEN ? "listen" : "other";
	return s->state == UDP_CONNECTED ? "connected" : "unconnected";
}

static const char *prog_name(enum baton_prog_type t)
{
	return t == BATON_PROG_EBPF ? "ebpf" : t == BATON_PROG_CBPF ? "cbpf" : "none";
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
	fmt_endpoint(ep, sizeof(ep), s->family, s->local, s->lport);
	fmt_addr(ip, sizeof(ip), s->family, s->local);
	JB_LIT(&b, "{\"proto\": \"");
	jb_str(&b, proto_name(s));
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
	if (s->proto == BATON_PROTO_UDP && s->state == UDP_CONNECTED) {
		fmt_endpoint(ep, sizeof(ep), s->family, s->remote, s->rport);
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
		jb_str(&b, prog_name(s->prog_type));
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
		jb_str(&b, optdefs[o].name);
		JB_LIT(&b, "\": ");
		if (!KNOWN(s, o))
			JB_LIT(&b, "null");
		else if (optdefs[o].kind == FLAG)
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

/* ---- stale pins ---------------------------------------------------------- */

void ls_stale_parse(struct ls_stale *st, const char *root, const char *path)
{
	size_t rl = strlen(root);
	const char *rel = path, *dash;
	char addr[64], ip[INET6_ADDRSTRLEN];
	uint16_t port;

	memset(st, 0, sizeof(*st));
	snprintf(st->path, sizeof(st->path), "%s", path);
	if (!strncmp(path, root, rl) && path[rl] == '/')
		rel = path + rl + 1;
	if (!strncmp(rel, "run-", 4)) {
		snprintf(st->supervisor, sizeof(st->supervisor), "%.*s", (int)strcspn(rel + 4, "/"), rel + 4);
		return;
	}
	/* steer-ADDR-PORT, with the dots (v4) or colons (v6) of ADDR as _ */
	if (strncmp(rel, "steer-", 6) || strchr(rel, '/') || !(dash = strrchr(rel + 6, '-')) ||
	    (size_t)(dash - rel - 6) >= sizeof(addr) || parse_port(dash + 1, &port))
		return;
	snprintf(addr, sizeof(addr), "%.*s", (int)(dash - rel - 6), rel + 6);
	for (char *c = addr; *c; c++)
		if (*c == '_')
			*c = '.';
	if (inet_pton(AF_INET, addr, st->addr) == 1) {
		st->family = AF_INET;
	} else {
		for (char *c = addr; *c; c++)
			if (*c == '.')
				*c = ':';
		if (inet_pton(AF_INET6, addr, st->addr) != 1)
			return;
		st->family = AF_INET6;
	}
	st->port = port;
	fmt_addr(ip, sizeof(ip), st->family, st->addr);
	snprintf(st->spec, sizeof(st->spec), st->family == AF_INET6 ? "tcp://[%s]:%u" : "tcp://%s:%u", ip, port);
}

bool ls_stale_match(const struct ls_filter *f, const struct ls_stale *st)
{
	struct baton_sock s = { .proto = BATON_PROTO_TCP, .family = st->family, .lport = st->port };

	if (!st->spec[0])
		return false;	/* a FILTER names an address; this names none */
	memcpy(s.local, st->addr, sizeof(s.local));
	return ls_filter_match(f, &s);
}

/* Why ST is stale, and how to remove it. */
static void stale_words(const struct ls_stale *st, char *why, size_t wlen, char *how, size_t hlen)
{
	if (st->spec[0]) {
		if (st->listening)
			snprintf(why, wlen, "its sockets are gone; what listens on %s now is not in it", st->spec + 6);
		else
			snprintf(why, wlen, "no listener on %s", st->spec + 6);
		snprintf(how, hlen, "baton steer --release %s", st->spec);
	} else if (st->supervisor[0]) {
		snprintf(why, wlen, "no socket of supervisor %s is left", st->supervisor);
		/* the run-NAME directory of PATH, under whichever bpffs it is */
		const char *run = strstr(st->path, "/run-");
		int len = run ? (int)(run - st->path) + 1 + (int)strcspn(run + 1, "/") : (int)strlen(st->path);

		snprintf(how, hlen, "baton stop %s, or rm -r %.*s if it no longer runs", st->supervisor, len,
			 st->path);
	} else {
		snprintf(why, wlen, "no socket of its group is left");
		snprintf(how, hlen, "rm -r %s", st->path);
	}
}

void ls_render_stale_text(FILE *out, const struct ls_stale *st, size_t n)
{
	char why[160], how[400];

	for (size_t k = 0; k < n; k++) {
		stale_words(&st[k], why, sizeof(why), how, sizeof(how));
		/* pin names are directory names under bpffs: escaped like owners */
		fprintf(out, "%sstale baton pins: ", k ? "" : "\n");
		baton_text_fputs(out, st[k].path, 0);
		fprintf(out, " (");
		baton_text_fputs(out, why, 0);
		fprintf(out, "); remove with ");
		baton_text_fputs(out, how, 0);
		fprintf(out, "\n");
	}
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
		stale_words(&st[k], why, sizeof(why), how, sizeof(how));
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

/* ---- fixtures ------------------------------------------------------------ */

/* Words are separated by spaces, so free text is percent-encoded. */
static void put_enc(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= ' ' || ch == '%' || ch == ',' || ch >= 0x7f)
			fprintf(out, "%%%02X", ch);
		else
			fputc(ch, out);
	}
}

static void decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		unsigned v;

		if (*s == '%' && sscanf(s + 1, "%2X", &v) == 1 && s[1] && s[2]) {
			*w++ = (char)v;
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

void ls_record(FILE *out, const struct baton_sock *v, size_t n)
{
	size_t k;
	uint32_t i;
	int o;

	fprintf(out, "# baton ls fixture: one socket per line; a field that was not read has no word\n");
	for (k = 0; k < n; k++) {
		const struct baton_sock *s = &v[k];
		char a[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];

		fmt_addr(a, sizeof(a), s->family, s->local);
		fmt_addr(r, sizeof(r), s->family, s->remote);
		fprintf(out, "proto=%s family=%d state=%u local=%s lport=%u remote=%s rport=%u queue=%u queue_max=%u "
			     "uid=%u inode=%llu cookie=%llu",
			proto_name(s), s->family == AF_INET6 ? 6 : 4, s->state, a, s->lport, r, s->rport, s->queue,
			s->queue_max, s->uid, (unsigned long long)s->inode, (unsigned long long)s->cookie);
		for (o = 0; o < BATON_OPT_COUNT; o++)
			if (KNOWN(s, o))
				fprintf(out, " %s=%lld", optdefs[o].name, (long long)s->opt[o]);
		if (s->known & BATON_SOCK_GROUP)
			fprintf(out, " group=%u group_size=%u", s->group, s->group_size);
		if (s->known & BATON_SOCK_PROG)
			fprintf(out, " program=%s program_id=%u", prog_name(s->prog_type), s->prog_id);
		if (s->known & BATON_SOCK_STEER)
			fprintf(out, " slot=%d weight=%u table=%u", s->slot, s->weight, s->table_n);
		if (s->known & BATON_SOCK_OWNERS)
			fprintf(out, " owners_complete=1");
		fprintf(out, " owners_total=%u", s->nowners);
		for (i = 0; i < s->nowners && i < BATON_SOCK_MAX_OWNERS; i++) {
			fprintf(out, " owner=%d,%d,", s->owners[i].pid, s->owners[i].fd);
			put_enc(out, s->owners[i].comm);
		}
		if (s->why[0]) {
			fprintf(out, " why=");
			put_enc(out, s->why);
		}
		fprintf(out, "\n");
	}
}

static int load_word(struct baton_sock *s, char *key, char *val)
{
	unsigned long long u = strtoull(val, NULL, 10);
	int o;

	if (!strcmp(key, "proto"))
		s->proto = !strcmp(val, "tcp") ? BATON_PROTO_TCP : !strcmp(val, "udp") ? BATON_PROTO_UDP : 0;
	else if (!strcmp(key, "family"))
		s->family = u == 6 ? AF_INET6 : AF_INET;
	else if (!strcmp(key, "state"))
		s->state = (uint8_t)u;
	else if (!strcmp(key, "local"))
		return inet_pton(s->family, val, s->local) == 1 ? 0 : -EINVAL;
	else if (!strcmp(key, "remote"))
		return inet_pton(s->family, val, s->remote) == 1 ? 0 : -EINVAL;
	else if (!strcmp(key, "lport"))
		s->lport = (uint16_t)u;
	else if (!strcmp(key, "rport"))
		s->rport = (uint16_t)u;
	else if (!strcmp(key, "queue"))
		s->queue = (uint32_t)u;
	else if (!strcmp(key, "queue_max"))
		s->queue_max = (uint32_t)u;
	else if (!strcmp(key, "uid"))
		s->uid = (uint32_t)u;
	else if (!strcmp(key, "inode"))
		s->inode = u;
	else if (!strcmp(key, "cookie"))
		s->cookie = u;
	else if (!strcmp(key, "group"))
		s->group = (uint32_t)u, s->known |= BATON_SOCK_GROUP;
	else if (!strcmp(key, "group_size"))
		s->group_size = (uint32_t)u;
	else if (!strcmp(key, "program")) {
		s->known |= BATON_SOCK_PROG;
		s->prog_type = !strcmp(val, "ebpf") ? BATON_PROG_EBPF : !strcmp(val, "cbpf") ? BATON_PROG_CBPF
											: BATON_PROG_NONE;
	} else if (!strcmp(key, "program_id"))
		s->prog_id = (uint32_t)u;
	else if (!strcmp(key, "slot"))
		s->slot = atoi(val), s->known |= BATON_SOCK_STEER;
	else if (!strcmp(key, "weight"))
		s->weight = (uint32_t)u;
	else if (!strcmp(key, "table"))
		s->table_n = (uint32_t)u;
	else if (!strcmp(key, "owners_complete"))
		s->known |= u ? BATON_SOCK_OWNERS : 0;
	else if (!strcmp(key, "owners_total"))
		s->nowners = (uint32_t)u;
	else if (!strcmp(key, "owner")) {
		struct baton_sock_owner *ow;
		char *comm;
		int i;

		for (i = 0; i < BATON_SOCK_MAX_OWNERS && s->owners[i].pid; i++)
			;
		if (i == BATON_SOCK_MAX_OWNERS)
			return -E2BIG;
		ow = &s->owners[i];
		comm = strchr(val, ',') ? strchr(strchr(val, ',') + 1, ',') : NULL;
		if (sscanf(val, "%d,%d,", &ow->pid, &ow->fd) != 2 || !comm)
			return -EINVAL;
		decode(comm + 1);
		snprintf(ow->comm, sizeof(ow->comm), "%s", comm + 1);
	} else if (!strcmp(key, "why")) {
		decode(val);
		snprintf(s->why, sizeof(s->why), "%s", val);
	} else {
		for (o = 0; o < BATON_OPT_COUNT; o++)
			if (!strcmp(key, optdefs[o].name)) {
				s->opt[o] = strtoll(val, NULL, 10);
				s->opt_known |= 1u << o;
				return 0;
			}
		return -ENOENT;
	}
	return 0;
}

int ls_load(FILE *in, struct baton_sock **out, size_t *n, char *err, size_t errlen)
{
	struct baton_sock *v = NULL;
	size_t cap = 0, line_no = 0;
	char line[4096];

	*out = NULL;
	*n = 0;
	while (fgets(line, sizeof(line), in)) {
		char *save = NULL, *word;
		struct baton_sock *s;

		line_no++;
		line[strcspn(line, "\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (*n == cap) {
			struct baton_sock *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*nv));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		s = &v[(*n)++];
		memset(s, 0, sizeof(*s));
		s->slot = -1;
		for (word = strtok_r(line, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(word, '=');
			int r;

			if (!eq) {
				snprintf(err, errlen, "line %zu: \"%s\" is not KEY=VALUE", line_no, word);
				free(v);
				return -EINVAL;
			}
			*eq = '\0';
			r = load_word(s, word, eq + 1);
			if (r) {
				snprintf(err, errlen, "line %zu: bad word \"%s=%s\": %s", line_no, word, eq + 1,
					 r == -ENOENT ? "unknown key" : strerror(-r));
				free(v);
				return r;
			}
		}
	}
	*out = v;
	return 0;
}
