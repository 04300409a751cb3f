/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the request head parser of --metrics-listen: any
 * bytes give one of the documented answers, never a crash or a read past
 * the input; a verdict once given holds for every longer input (the server
 * answers on the first one), and 200 needs exactly GET /metrics. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;
	int st, prev = 0;

	if (size > 2 * HTTPREQ_MAX)
		return 0;
	/* a copy of exactly SIZE bytes: ASan sees any read past it */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* as the server reads it: growing, one chunk at a time */
	for (size_t n = size < 64 ? 0 : size - 64; n <= size; n++) {
		st = httpreq_parse(buf, n);
		if (st != 0 && st != 200 && st != 400 && st != 404 && st != 405 && st != 431 && st != 505)
			abort();
		if (prev && st != prev && n < HTTPREQ_MAX)
			abort();	/* a verdict given on fewer bytes cannot change */
		if (st == 200 && (n < 14 || memcmp(buf, "GET /metrics", 12) || (buf[12] != ' ' && buf[12] != '?')))
			abort();
		if (st == 431 && n < HTTPREQ_MAX)
			abort();
		prev = st;
	}
	free(buf);
	return 0;
}
