/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for baton_text_escape and baton_json_str, which every
 * text and JSON output runs other users' bytes through: whatever the input,
 * the text holds no control byte (bar newline and tab in BATON_ESC_LINES
 * mode), is valid UTF-8, never overruns and never ends in half an escape;
 * the JSON string is valid UTF-8 with no raw control byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid UTF-8 with no C0 control (but those ALLOWED) and no DEL. */
static void check_utf8(const unsigned char *s, size_t n, const char *allowed)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], k, len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
					       c >= 0xf0 && c <= 0xf4 ? 4 : 0;

		if (!len || i + len > n)
			abort();
		if (len == 1 && (c < 0x20 || c == 0x7f) && !strchr(allowed, (int)c))
			abort();
		for (k = 1; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				abort();
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *json = NULL, out[4 * 64 + 1];
	size_t cut = size ? data[0] % sizeof(out) : 0, len = 0, n;
	FILE *m;

	if (size > 4096)
		return 0;
	in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	for (unsigned flags = 0; flags <= BATON_ESC_LINES; flags++) {
		/* a buffer cut anywhere: terminated inside it, whole escapes only */
		memset(out, 'Z', sizeof(out));
		baton_text_escape(out, cut + 1, in, flags);
		n = strlen(out);
		if (n > cut)
			abort();
		/* in plain mode every backslash starts a whole \\ or \xHH */
		for (size_t i = 0; !flags && i < n; i++)
			if (out[i] == '\\') {
				if (i + 1 < n && out[i + 1] == '\\')
					i++;
				else if (i + 3 < n && out[i + 1] == 'x' && strchr("0123456789abcdef", out[i + 2]) &&
					 strchr("0123456789abcdef", out[i + 3]))
					i += 3;
				else
					abort();
			}
		check_utf8((unsigned char *)out, n, flags ? "\n\t" : "");
		m = open_memstream(&json, &len);
		if (!m)
			abort();
		baton_text_fputs(m, in, flags);
		fclose(m);
		check_utf8((unsigned char *)json, len, flags ? "\n\t" : "");
		if (strncmp(json, out, n))
			abort();	/* the cut text is a prefix of the whole */
		free(json);
		json = NULL;
	}
	m = open_memstream(&json, &len);
	if (!m)
		abort();
	baton_json_str(m, in);
	fclose(m);
	check_utf8((unsigned char *)json, len, "");
	if (len < 2 || json[0] != '"' || json[len - 1] != '"')
		abort();
	free(json);
	free(in);
	return 0;
}
