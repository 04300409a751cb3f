/* SPDX-License-Identifier: BSD-2-Clause */
/* Parses the head of an HTTP/1.x request for --metrics-listen: the request
 * line strictly (method, origin-form target, version), the header lines
 * only for where they end. Outside input, so nothing is trusted. */
#include <stdbool.h>
#include <string.h>

#include "httpreq.h"

/* RFC 9110 tchar: what a method token may hold. */
static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The request line, LINE of LEN bytes without its line end: 200, 400,
 * 404, 405 or 505 as httpreq_parse says. */
static int request_line(const char *line, size_t len)
{
	size_t m = 0, t, tlen, p;
	const char *target, *v;

	while (m < len && tchar((unsigned char)line[m]))
		m++;
	if (m == 0 || m >= len || line[m] != ' ')
		return 400;
	target = line + m + 1;
	for (t = m + 1; t < len && line[t] > ' ' && line[t] < 0x7f; t++)
		;
	tlen = (size_t)(line + t - target);
	if (tlen == 0 || t >= len || line[t] != ' ')
		return 400;
	v = line + t + 1;
	if ((size_t)(line + len - v) != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return 505;
	/* the path, up to a query string */
	for (p = 0; p < tlen && target[p] != '?'; p++)
		;
	if (p != 8 || memcmp(target, "/metrics", 8))
		return 404;
	if (m != 3 || memcmp(line, "GET", 3))
		return 405;
	return 200;
}

int httpreq_parse(const char *buf, size_t len)
{
	const char *end = buf + len, *line = buf, *nl;
	int status = 0;

	while (line < end && (nl = memchr(line, '\n', (size_t)(end - line)))) {
		size_t n = (size_t)(nl - line);

		/* only what is read up to the verdict counts: one given on fewer
		 * bytes holds whatever follows */
		if (memchr(line, '\0', n))
			return 400;
		if (n && line[n - 1] == '\r')
			n--;
		if (line == buf) {
			status = request_line(line, n);
			if (status == 400 || status == 505)
				return status;	/* no need to read on */
		} else if (n == 0) {
			return status;	/* the blank line: the head is complete */
		}
		line = nl + 1;
	}
	if (memchr(line, '\0', (size_t)(end - line)))
		return 400;
	return len >= HTTPREQ_MAX ? 431 : 0;
}
