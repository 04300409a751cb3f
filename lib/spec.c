/* SPDX-License-Identifier: BSD-2-Clause */
/* The one parser for listener specs (tcp://HOST:PORT?opt=val&...) and its
 * canonical formatter. Errors name the part of the text that is wrong and
 * say what would be right. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "baton.h"

#define SPEC_MAX 1024

/* handoff took a padding byte: a caller built against 0.1 allocates the same struct */
struct baton_spec_0_1 {
	enum baton_proto proto;
	int family;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint16_t port;
	int backlog;
	int v6only;
	char name[BATON_NAME_MAX + 1];
};
_Static_assert(sizeof(struct baton_spec) == sizeof(struct baton_spec_0_1) &&
	       offsetof(struct baton_spec, backlog) == offsetof(struct baton_spec_0_1, backlog) &&
	       offsetof(struct baton_spec, name) == offsetof(struct baton_spec_0_1, name),
	       "struct baton_spec changed size or layout");
#define DEFAULT_BACKLOG 4096

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The message quotes the caller's text: control characters in it are
 * written as \xNN, so an error can neither hide nor fake terminal output. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	char raw[1024];
	size_t i, o = 0;
	va_list ap;

	if (!err || !errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	for (i = 0; raw[i] && o + 1 < errlen; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c >= 0x20 && c != 0x7f) {
			err[o++] = (char)c;
		} else if (o + 5 < errlen) {
			snprintf(err + o, errlen - o, "\\x%02x", c);
			o += 4;
		} else {
			break;
		}
	}
	err[o] = '\0';
	return -EINVAL;
}

/* Parses a decimal number in [lo, hi] from exactly LEN bytes of S. */
static bool parse_uint(const char *s, size_t len, long lo, long hi, long *out)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Names become file names (control sockets) and LISTEN_FDNAMES entries:
 * a conservative alphabet, no leading dot. */
static bool valid_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > BATON_NAME_MAX || s[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

bool baton_name_valid(const char *name)
{
	return name && valid_name(name, strlen(name));
}

/* "250ms", "2s", "1.5s", "1m", "1h" or bare seconds, from exactly LEN
 * bytes of S, in milliseconds within [1 ms, 1 day]. */
static bool parse_dur(const char *s, size_t len, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0, fdiv = 1, mult = 1000;
	size_t i = 0, digits = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9' && digits < 9; i++, digits++)
		whole = whole * 10 + (uint64_t)(s[i] - '0');
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9' && fdiv < 1000000; i++, digits++) {
			frac = frac * 10 + (uint64_t)(s[i] - '0');
			fdiv *= 10;
		}
	if (!digits)
		return false;
	if (len - i == 2 && !memcmp(s + i, "ms", 2))
		mult = 1;
	else if (len - i == 1 && s[i] == 's')
		mult = 1000;
	else if (len - i == 1 && s[i] == 'm')
		mult = 60000;
	else if (len - i == 1 && s[i] == 'h')
		mult = 3600000;
	else if (i != len)
		return false;
	*ms = whole * mult + frac * mult / fdiv;
	return *ms >= 1 && *ms <= 86400000;
}

/* KEY: the option's key is K; ONCE: refuses an option given twice (with
 * the bit of SEEN that stands for it). Both expect parse_option's names. */
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(opt, k, klen) == 0)
#define ONCE(bit)                                                                              \
	do {                                                                                   \
		if (*seen & (bit))                                                             \
			return fail(err, errlen, "option \"%.*s\" given twice in \"%s\"",      \
				    (int)klen, opt, text);                                     \
		*seen |= (bit);                                                                \
	} while (0)

/* The udp options flows, flow_table and flow_idle (key KLEN bytes at OPT,
 * value VLEN at VAL) into FL; as parse_option. */
static int parse_flow_option(const char *text, const char *opt, size_t klen, const char *val, size_t vlen,
			     const struct baton_spec *spec, struct baton_spec_flows *fl, unsigned *seen, char *err,
			     size_t errlen)
{
	long v;
	uint64_t ms;

	if (spec->proto != BATON_PROTO_UDP)
		return fail(err, errlen, "option \"%.*s\" in \"%s\" applies to udp only", (int)klen, opt, text);
	if (KEY("flows")) {
		ONCE(8);
		if ((vlen == 2 && !memcmp(val, "on", 2)) || (vlen == 1 && val[0] == '1'))
			fl->mode = BATON_FLOWS_ON;
		else if ((vlen == 3 && !memcmp(val, "off", 3)) || (vlen == 1 && val[0] == '0'))
			fl->mode = BATON_FLOWS_OFF;
		else if (vlen == 4 && !memcmp(val, "quic", 4))
			fl->mode = BATON_FLOWS_QUIC;
		else
			return fail(err, errlen, "bad flows \"%.*s\" in \"%s\" (want on, off or quic)",
				    (int)vlen, val, text);
	} else if (KEY("flow_table")) {
		ONCE(16);
		if (!parse_uint(val, vlen, 1, BATON_FLOW_TABLE_MAX, &v))
			return fail(err, errlen, "bad flow_table \"%.*s\" in \"%s\" (want 1 to %u entries)",
				    (int)vlen, val, text, BATON_FLOW_TABLE_MAX);
		fl->table = (uint32_t)v;
	} else {
		ONCE(32);
		if (!parse_dur(val, vlen, &ms))
			return fail(err, errlen,
				    "bad flow_idle \"%.*s\" in \"%s\" (want a duration from 1ms to 24h, e.g. 30s or 500ms)",
				    (int)vlen, val, text);
		fl->idle_ms = ms;
	}
	return 0;
}

static int parse_option(const char *text, const char *opt, size_t len, struct baton_spec *spec,
			struct baton_spec_flows *fl, unsigned *seen, char *err, size_t errlen)
{
	const char *eq = memchr(opt, '=', len);
	size_t klen, vlen;
	const char *val;
	long v;

	if (!eq)
		return fail(err, errlen, "option \"%.*s\" in \"%s\" has no value (write KEY=VALUE)",
			    (int)len, opt, text);
	klen = (size_t)(eq - opt);
	val = eq + 1;
	vlen = len - klen - 1;

	if (KEY("backlog")) {
		ONCE(1);
		if (spec->proto != BATON_PROTO_TCP)
			return fail(err, errlen, "option \"backlog\" in \"%s\" applies to tcp only", text);
		if (!parse_uint(val, vlen, 1, 65535, &v))
			return fail(err, errlen, "bad backlog \"%.*s\" in \"%s\" (want 1 to 65535)",
				    (int)vlen, val, text);
		spec->backlog = (int)v;
	} else if (KEY("name")) {
		ONCE(2);
		if (!valid_name(val, vlen))
			return fail(err, errlen,
				    "bad name \"%.*s\" in \"%s\" (want 1 to %d of A-Z a-z 0-9 - _ ., not starting with .)",
				    (int)vlen, val, text, BATON_NAME_MAX);
		memcpy(spec->name, val, vlen);
		spec->name[vlen] = '\0';
	} else if (KEY("v6only")) {
		ONCE(4);
		if (vlen == 1 && (val[0] == '0' || val[0] == '1'))
			spec->v6only = val[0] - '0';
		else if (vlen == 4 && memcmp(val, "true", 4) == 0)
			spec->v6only = 1;
		else if (vlen == 5 && memcmp(val, "false", 5) == 0)
			spec->v6only = 0;
		else
			return fail(err, errlen, "bad v6only \"%.*s\" in \"%s\" (want 0 or 1)",
				    (int)vlen, val, text);
		if (spec->family != AF_INET6)
			return fail(err, errlen,
				    "option \"v6only\" in \"%s\" applies to IPv6 addresses only", text);
	} else if (KEY("flows") || KEY("flow_table") || KEY("flow_idle")) {
		return parse_flow_option(text, opt, klen, val, vlen, spec, fl, seen, err, errlen);
	} else if (KEY("handoff")) {
		ONCE(64);
		if (spec->proto != BATON_PROTO_TCP)
			return fail(err, errlen, "option \"handoff\" in \"%s\" applies to tcp only", text);
		if (vlen == 4 && memcmp(val, "idle", 4) == 0)
			spec->handoff = BATON_HANDOFF_IDLE;
		else if (vlen == 4 && memcmp(val, "none", 4) == 0)
			spec->handoff = BATON_HANDOFF_NONE;
		else
			return fail(err, errlen, "bad handoff \"%.*s\" in \"%s\" (want idle or none)",
				    (int)vlen, val, text);
	} else {
		return fail(err, errlen,
			    "unknown option \"%.*s\" in \"%s\" (known: backlog, name, v6only, handoff; udp: flows, "
			    "flow_table, flow_idle)", (int)klen, opt, text);
	}
	return 0;
}
#undef KEY
#undef ONCE

static int parse_host(const char *text, const char *host, size_t hlen, struct baton_spec *spec,
		      char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct sockaddr_in *sin = (struct sockaddr_in *)&spec->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&spec->addr;

	if (hlen >= 2 && host[0] == '[') {
		if (host[hlen - 1] != ']' || hlen - 2 >= sizeof(buf))
			goto bad6;
		memcpy(buf, host + 1, hlen - 2);
		buf[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
			goto bad6;
		spec->family = AF_INET6;
		sin6->sin6_family = AF_INET6;
		spec->addrlen = sizeof(*sin6);
		return 0;
	}
	spec->family = AF_INET;
	sin->sin_family = AF_INET;
	spec->addrlen = sizeof(*sin);
	if ((hlen == 1 && host[0] == '*') || hlen == 0) {
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	if (hlen == 9 && memcmp(host, "localhost", 9) == 0) {
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return 0;
	}
	if (hlen < sizeof(buf)) {
		memcpy(buf, host, hlen);
		buf[hlen] = '\0';
		if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1)
			return 0;
	}
	if (memchr(host, ':', hlen))
		return fail(err, errlen, "bad host \"%.*s\" in \"%s\" (put an IPv6 address in brackets: tcp://[::1]:PORT)",
			    (int)hlen, host, text);
	return fail(err, errlen,
		    "bad host \"%.*s\" in \"%s\" (want a numeric IPv4 address, [IPv6], localhost or *)",
		    (int)hlen, host, text);
bad6:
	return fail(err, errlen, "bad IPv6 address \"%.*s\" in \"%s\"", (int)hlen, host, text);
}

static int parse_spec(const char *text, struct baton_spec *spec, struct baton_spec_flows *fl, char *err,
		      size_t errlen)
{
	const char *p, *hostport, *query, *colon, *end;
	unsigned seen = 0;
	long port;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (!text || !spec)
		return fail(err, errlen, "no listener spec given");
	if (strlen(text) > SPEC_MAX)
		return fail(err, errlen, "listener spec is longer than %d characters", SPEC_MAX);
	memset(spec, 0, sizeof(*spec));
	memset(fl, 0, sizeof(*fl));
	fl->table = BATON_FLOW_TABLE_DEFAULT;
	fl->idle_ms = BATON_FLOW_IDLE_DEFAULT_MS;
	spec->backlog = DEFAULT_BACKLOG;
	spec->v6only = -1;

	if (strncmp(text, "tcp://", 6) == 0) {
		spec->proto = BATON_PROTO_TCP;
	} else if (strncmp(text, "udp://", 6) == 0) {
		spec->proto = BATON_PROTO_UDP;
	} else {
		p = strstr(text, "://");
		if (p)
			return fail(err, errlen, "bad scheme \"%.*s\" in \"%s\" (want tcp:// or udp://)",
				    (int)(p - text), text, text);
		return fail(err, errlen, "no scheme in \"%s\" (write tcp://HOST:PORT or udp://HOST:PORT)", text);
	}
	hostport = text + 6;
	query = strchr(hostport, '?');
	end = query ? query : hostport + strlen(hostport);

	/* The port follows the last colon; for [v6] it must follow the ']'. */
	colon = NULL;
	for (p = hostport; p < end; p++)
		if (*p == ':')
			colon = p;
	if (hostport < end && hostport[0] == '[') {
		const char *rb = memchr(hostport, ']', (size_t)(end - hostport));

		if (!rb)
			return fail(err, errlen, "unclosed \"[\" in \"%s\"", text);
		if (rb + 1 == end || rb[1] != ':')
			return fail(err, errlen, "no port in \"%s\" (write [ADDR]:PORT)", text);
		colon = rb + 1;
	}
	if (!colon)
		return fail(err, errlen, "no port in \"%s\" (write HOST:PORT)", text);
	if (!parse_uint(colon + 1, (size_t)(end - colon - 1), 0, 65535, &port))
		return fail(err, errlen, "bad port \"%.*s\" in \"%s\" (want 0 to 65535)",
			    (int)(end - colon - 1), colon + 1, text);
	r = parse_host(text, hostport, (size_t)(colon - hostport), spec, err, errlen);
	if (r)
		return r;
	spec->port = (uint16_t)port;
	fl->mode = spec->proto == BATON_PROTO_UDP ? BATON_FLOWS_ON : BATON_FLOWS_OFF;
	if (spec->family == AF_INET)
		((struct sockaddr_in *)&spec->addr)->sin_port = htons(spec->port);
	else
		((struct sockaddr_in6 *)&spec->addr)->sin6_port = htons(spec->port);

	if (query) {
		const char *opt = query + 1;

		if (*opt == '\0')
			return fail(err, errlen, "empty query after \"?\" in \"%s\"", text);
		while (*opt) {
			const char *amp = strchr(opt, '&');
			size_t len = amp ? (size_t)(amp - opt) : strlen(opt);

			if (len == 0)
				return fail(err, errlen, "empty option in \"%s\"", text);
			r = parse_option(text, opt, len, spec, fl, &seen, err, errlen);
			if (r)
				return r;
			opt += len;
			if (*opt == '&' && *++opt == '\0')
				return fail(err, errlen, "empty option at the end of \"%s\"", text);
		}
	}
	return 0;
}

int baton_spec_parse(const char *text, struct baton_spec *spec, char *err, size_t errlen)
{
	struct baton_spec_flows fl;

	return parse_spec(text, spec, &fl, err, errlen);
}

/* The flow options do not fit struct baton_spec (a fixed layout): they
 * come from the same parser, through their own call. */
int baton_spec_flows(const char *text, struct baton_spec_flows *fl, char *err, size_t errlen)
{
	struct baton_spec spec;

	if (!fl)
		return fail(err, errlen, "no place for the flow options given");
	return parse_spec(text, &spec, fl, err, errlen);
}

int baton_spec_format(const struct baton_spec *spec, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	const void *a;
	int n;

	if (!spec || (!buf && len))
		return -EINVAL;
	if (spec->family == AF_INET6)
		a = &((const struct sockaddr_in6 *)&spec->addr)->sin6_addr;
	else if (spec->family == AF_INET)
		a = &((const struct sockaddr_in *)&spec->addr)->sin_addr;
	else
		return -EAFNOSUPPORT;
	if (!inet_ntop(spec->family, a, host, sizeof(host)))
		return -errno;
	char backlog[24] = "";

	if (spec->proto == BATON_PROTO_TCP)
		snprintf(backlog, sizeof(backlog), "&backlog=%d", spec->backlog);
	/* options start with '&'; the first one's becomes the '?' */
	char opts[128];

	snprintf(opts, sizeof(opts), "%s%s%s%s%s%s", backlog, spec->name[0] ? "&name=" : "", spec->name,
		 spec->v6only < 0 ? "" : "&v6only=", spec->v6only < 0 ? "" : spec->v6only ? "1" : "0",
		 spec->handoff == BATON_HANDOFF_IDLE ? "&handoff=idle" : "");
	if (opts[0])
		opts[0] = '?';
	n = snprintf(buf, len, "%s://%s%s%s:%u%s", spec->proto == BATON_PROTO_UDP ? "udp" : "tcp",
		     spec->family == AF_INET6 ? "[" : "", host, spec->family == AF_INET6 ? "]" : "",
		     spec->port, opts);
	return n < 0 ? -EINVAL : n;
}
