/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the reload items of the control protocol: any input
 * either decodes or is refused with a reason, never crashes; what decodes
 * holds no control character but tab and newline, and survives a round
 * trip through the escaper unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[4096], *back, *again, *mem = NULL;
	const char *why = NULL;
	size_t len = 0;
	FILE *f;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	back = sup_unescape(text, &why);
	if (!back) {
		if (!why || !*why)
			abort();	/* every refusal says why */
		return 0;
	}
	if (sup_item_check(back))
		abort();
	f = open_memstream(&mem, &len);
	if (!f)
		abort();
	sup_escape(f, back);
	fclose(f);
	if (strpbrk(mem, " \t\n\r"))
		abort();	/* one token on one line */
	again = sup_unescape(mem, &why);
	if (!again || strcmp(again, back))
		abort();
	free(again);
	free(mem);
	free(back);
	return 0;
}
