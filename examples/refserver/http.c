/* SPDX-License-Identifier: BSD-2-Clause */
/* refserver's HTTP/1.1: one request parsed at the front of a connection's
 * buffer (strictly: a bad one is answered with its status and the
 * connection closed), and the small response built for it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refserver.h"

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Builds the response now, not when the request arrived: a stop that comes
 * while it was delayed must still turn it into "Connection: close". */
void build_response(struct server *s, struct conn *c)
{
	char body[512];
	int bl, n;

	if (s->stopping)
		c->close_after = true;
	if (c->status == 200)
		bl = snprintf(body, sizeof(body), "refserver pid=%d tag=%s\n", (int)s->pid, s->o.tag);
	else
		bl = snprintf(body, sizeof(body), "%d %s\n", c->status, reason(c->status));
	n = snprintf(c->out, sizeof(c->out),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %d\r\n"
		     "%s"
		     "%s"
		     "\r\n"
		     "%s",
		     c->status, reason(c->status), bl,
		     c->status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     c->close_after ? "Connection: close\r\n" : c->http10 ? "Connection: keep-alive\r\n" : "",
		     c->head ? "" : body);
	c->outlen = (size_t)n;
	c->outoff = 0;
	c->state = C_WRITING;
	if (c->status == 200)
		s->served++;
}

static bool token_char(char ch)
{
	return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* Does the comma-separated header value V (length VL) hold token T? */
static bool has_token(const char *v, size_t vl, const char *t)
{
	size_t tl = strlen(t), i = 0;

	while (i < vl) {
		size_t j;

		while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		for (j = i; j < vl && v[j] != ','; j++)
			;
		{
			size_t e = j;

			while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
				e--;
			if (e - i == tl && !strncasecmp(v + i, t, tl))
				return true;
		}
		i = j;
	}
	return false;
}

/* Parses one request at the front of c->in. Returns its length (headers
 * included; the body is skipped through c->discard), 0 if incomplete, or -1
 * with c->status set to the error to answer before closing. */
long parse_request(struct conn *c)
{
	const char *p = c->in, *end, *eol, *sp1, *sp2, *line;
	bool keep_alive = false, close_tok = false;
	unsigned long long clen = 0;
	size_t len;

	end = memmem(p, c->inlen, "\r\n\r\n", 4);
	eol = memchr(p, '\n', c->inlen);
	c->status = 400;
	c->head = false;
	/* a request line can be judged as soon as it is complete */
	if (!eol) {
		if (c->inlen >= REQ_MAX)
			return -1;
		return 0;
	}
	if (eol == p || eol[-1] != '\r')
		return -1;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1)
		return -1;
	for (line = p; line < sp1; line++)
		if (!token_char(*line))
			return -1;
	if (eol - 1 - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7)) {
		if (eol - 1 - (sp2 + 1) >= 5 && !memcmp(sp2 + 1, "HTTP/", 5))
			c->status = 505;
		return -1;
	}
	if (sp2[8] != '0' && sp2[8] != '1')
		return -1;
	c->http10 = sp2[8] == '0';
	if (!end) {
		if (c->inlen >= REQ_MAX) {
			c->status = 431;
			return -1;
		}
		return 0;
	}
	len = (size_t)(end - p) + 4;
	for (line = eol + 1; line < end + 2;) {
		const char *le = memchr(line, '\n', (size_t)(end + 2 - line)), *colon, *v;
		size_t vl;

		if (!le || le[-1] != '\r')
			return -1;
		colon = memchr(line, ':', (size_t)(le - line));
		if (!colon || colon == line)
			return -1;
		for (v = line; v < colon; v++)
			if (!token_char(*v))
				return -1;
		for (v = colon + 1; v < le - 1 && (*v == ' ' || *v == '\t'); v++)
			;
		vl = (size_t)(le - 1 - v);
		if ((size_t)(colon - line) == 10 && !strncasecmp(line, "Connection", 10)) {
			keep_alive |= has_token(v, vl, "keep-alive");
			close_tok |= has_token(v, vl, "close");
		} else if ((size_t)(colon - line) == 14 && !strncasecmp(line, "Content-Length", 14)) {
			char num[24];
			char *ep;

			if (!vl || vl >= sizeof(num))
				return -1;
			memcpy(num, v, vl);
			num[vl] = '\0';
			errno = 0;
			clen = strtoull(num, &ep, 10);
			if (errno || *ep || num[0] == '-' || num[0] == '+')
				return -1;
		} else if ((size_t)(colon - line) == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
			c->status = 501;	/* no chunked bodies here: nothing to GET needs one */
			return -1;
		}
		line = le + 1;
	}
	if (clen > (1ULL << 30)) {
		c->status = 413;
		return -1;
	}
	c->discard = (size_t)clen;
	c->close_after = c->http10 ? !keep_alive : close_tok;
	if (sp1 - p == 3 && !memcmp(p, "GET", 3))
		c->status = 200;
	else if (sp1 - p == 4 && !memcmp(p, "HEAD", 4))
		c->status = 200, c->head = true;
	else
		c->status = 405;
	if (c->status == 200 && !(sp2 - sp1 - 1 == 1 && sp1[1] == '/'))
		c->status = 404;
	return (long)len;
}
