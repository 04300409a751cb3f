/* SPDX-License-Identifier: BSD-2-Clause */
/* Reload items as the control protocol and the state file carry them: one
 * percent-escaped token a line, and the check that refuses control
 * characters. Depends on nothing else of the supervisor (the CLI and the
 * fuzz target use it alone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sup.h"

const char *sup_item_check(const char *text)
{
	static char why[96];

	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f) {
			snprintf(why, sizeof(why), "the control character 0x%02x at byte %zu", *p,
				 (size_t)(p - (const unsigned char *)text));
			return why;
		}
	return NULL;
}

void sup_escape(FILE *f, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if (*p <= ' ' || *p == '%' || *p == 0x7f)
			fprintf(f, "%%%02X", *p);
		else
			fputc(*p, f);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *sup_unescape(const char *text, const char **why)
{
	char *out = malloc(strlen(text) + 1), *o = out;
	const unsigned char *p;

	if (!out) {
		*why = "out of memory";
		return NULL;
	}
	for (p = (const unsigned char *)text; *p; p++) {
		int hi, lo;

		if (*p <= ' ' || *p == 0x7f) {
			*why = "a raw space or control character (escape it as %XX)";
			goto bad;
		}
		if (*p != '%') {
			*o++ = (char)*p;
			continue;
		}
		hi = hexval(p[1]);
		lo = hi < 0 ? -1 : hexval(p[2]);
		if (lo < 0) {
			*why = "a % not followed by two hex digits";
			goto bad;
		}
		if (!hi && !lo) {
			*why = "a NUL byte (%00)";
			goto bad;
		}
		*o++ = (char)(hi * 16 + lo);
		p += 2;
	}
	*o = '\0';
	if ((*why = sup_item_check(out)))
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}
