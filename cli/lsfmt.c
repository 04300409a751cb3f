/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls, the part that needs no kernel: FILTER parsing and matching, the
 * text table (grouped by reuseport group), and the fixture format that
 * records collected sockets so tests can render them. The JSON document is
 * lsjson.c's. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lsfmt.h"
#include "lsparts.h"
#include "util.h"

const struct ls_optdef ls_optdefs[BATON_OPT_COUNT] = {
	[BATON_OPT_REUSEADDR] = { "reuseaddr", LS_FLAG, "" },
	[BATON_OPT_REUSEPORT] = { "reuseport", LS_FLAG, "" },
	[BATON_OPT_V6ONLY] = { "v6only", LS_FLAG, "" },
	[BATON_OPT_KEEPALIVE] = { "keepalive", LS_FLAG, "" },
	[BATON_OPT_NODELAY] = { "nodelay", LS_FLAG, "" },
	[BATON_OPT_KEEPIDLE] = { "keepidle", LS_NUM, "s" },
	[BATON_OPT_KEEPINTVL] = { "keepintvl", LS_NUM, "s" },
	[BATON_OPT_KEEPCNT] = { "keepcnt", LS_NUM, "" },
	[BATON_OPT_DEFER_ACCEPT] = { "defer_accept", LS_NUM, "s" },
	[BATON_OPT_FASTOPEN] = { "fastopen", LS_NUM, "" },
	[BATON_OPT_USER_TIMEOUT] = { "user_timeout", LS_NUM, "ms" },
	[BATON_OPT_RCVBUF] = { "rcvbuf", LS_NUM, "" },
	[BATON_OPT_SNDBUF] = { "sndbuf", LS_NUM, "" },
	[BATON_OPT_USERLOCKS] = { "userlocks", LS_NUM, "" },
	[BATON_OPT_MARK] = { "mark", LS_NUM, "" },
	[BATON_OPT_BOUND_IF] = { "bound_if", LS_NUM, "" },
};

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

/* Dotted quad by hand: inet_ntop formats IPv4 with sprintf, which was a
 * sixth of baton ls at 10,000 listeners (three addresses per socket). */
static size_t fmt_ipv4(char *ip, const uint8_t *a)
{
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		if (i)
			ip[n++] = '.';
		if (a[i] >= 100)
			ip[n++] = (char)('0' + a[i] / 100);
		if (a[i] >= 10)
			ip[n++] = (char)('0' + a[i] / 10 % 10);
		ip[n++] = (char)('0' + a[i] % 10);
	}
	ip[n] = '\0';
	return n;
}

void ls_fmt_addr(char *buf, size_t len, int family, const uint8_t *a)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	size_t n;

	if (!len)
		return;
	if (family == AF_INET)
		fmt_ipv4(ip, a);
	else
		inet_ntop(family, a, ip, sizeof(ip));
	n = strnlen(ip, sizeof(ip) - 1);
	n = n < len - 1 ? n : len - 1;
	memcpy(buf, ip, n);
	buf[n] = '\0';
}

/* "[IP]:PORT" or "IP:PORT", cut to LEN - 1 bytes. Called for every socket:
 * put together by hand, not with snprintf. */
void ls_fmt_endpoint(char *buf, size_t len, int family, const uint8_t *a, uint16_t port)
{
	char tmp[INET6_ADDRSTRLEN + 16], digits[8], *p = tmp;
	size_t ip, i = sizeof(digits), n;

	if (!len)
		return;
	if (family == AF_INET6)
		*p++ = '[';
	ls_fmt_addr(p, INET6_ADDRSTRLEN, family, a);
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

const char *ls_proto_name(const struct baton_sock *s)
{
	return s->proto == BATON_PROTO_TCP ? "tcp" : "udp";
}

const char *ls_prog_name(enum baton_prog_type t)
{
	return t == BATON_PROG_EBPF ? "ebpf" : t == BATON_PROG_CBPF ? "cbpf" : "none";
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
		unknown += !LS_KNOWN(s, core[i]);
	if (unknown == ncore)
		sb_word(b, "options=?");
	for (o = 0; o < BATON_OPT_COUNT; o++) {
		const struct ls_optdef *d = &ls_optdefs[o];
		int64_t v = s->opt[o];

		if (!LS_KNOWN(s, o)) {
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
			if (LS_KNOWN(s, BATON_OPT_KEEPIDLE) && LS_KNOWN(s, BATON_OPT_KEEPINTVL) && LS_KNOWN(s, BATON_OPT_KEEPCNT))
				sb_word(b, "keepalive=%llds/%llds/%lld", (long long)s->opt[BATON_OPT_KEEPIDLE],
					(long long)s->opt[BATON_OPT_KEEPINTVL], (long long)s->opt[BATON_OPT_KEEPCNT]);
			else
				sb_word(b, "keepalive");
			continue;
		case BATON_OPT_RCVBUF: case BATON_OPT_SNDBUF:
			/* every socket has buffers; show them only where the owner set them */
			if (!LS_KNOWN(s, BATON_OPT_USERLOCKS) ||
			    !(s->opt[BATON_OPT_USERLOCKS] & (o == BATON_OPT_RCVBUF ? 2 : 1)))
				continue;
			break;
		default:
			break;
		}
		if (d->kind == LS_FLAG)
			sb_word(b, "%s", d->name);
		else
			sb_word(b, "%s=%lld%s", d->name, (long long)v, d->unit);
	}
	if ((s->opt[BATON_OPT_REUSEPORT] || !LS_KNOWN(s, BATON_OPT_REUSEPORT)) && !(s->known & BATON_SOCK_GROUP))
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
	sb_add(&c[C_PROTO], "%s%s", s->group ? "  " : "", ls_proto_name(s));
	ls_fmt_endpoint(ep, sizeof(ep), s->family, s->local, s->lport);
	sb_add(&c[C_LOCAL], "%s", ep);
	if (s->proto == BATON_PROTO_UDP && s->state == LS_UDP_CONNECTED) {
		ls_fmt_endpoint(ep, sizeof(ep), s->family, s->remote, s->rport);
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
	ls_fmt_endpoint(ep, sizeof(ep), s->family, s->local, s->lport);
	fprintf(out, "reuseport group %u: %s %s, %u member%s", s->group, ls_proto_name(s), ep, s->group_size,
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
		if (v[k].proto == BATON_PROTO_UDP && v[k].state == LS_UDP_CONNECTED)
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
	ls_fmt_addr(ip, sizeof(ip), st->family, st->addr);
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
void ls_stale_words(const struct ls_stale *st, char *why, size_t wlen, char *how, size_t hlen)
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
		ls_stale_words(&st[k], why, sizeof(why), how, sizeof(how));
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

		ls_fmt_addr(a, sizeof(a), s->family, s->local);
		ls_fmt_addr(r, sizeof(r), s->family, s->remote);
		fprintf(out, "proto=%s family=%d state=%u local=%s lport=%u remote=%s rport=%u queue=%u queue_max=%u "
			     "uid=%u inode=%llu cookie=%llu",
			ls_proto_name(s), s->family == AF_INET6 ? 6 : 4, s->state, a, s->lport, r, s->rport, s->queue,
			s->queue_max, s->uid, (unsigned long long)s->inode, (unsigned long long)s->cookie);
		for (o = 0; o < BATON_OPT_COUNT; o++)
			if (LS_KNOWN(s, o))
				fprintf(out, " %s=%lld", ls_optdefs[o].name, (long long)s->opt[o]);
		if (s->known & BATON_SOCK_GROUP)
			fprintf(out, " group=%u group_size=%u", s->group, s->group_size);
		if (s->known & BATON_SOCK_PROG)
			fprintf(out, " program=%s program_id=%u", ls_prog_name(s->prog_type), s->prog_id);
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
			if (!strcmp(key, ls_optdefs[o].name)) {
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
