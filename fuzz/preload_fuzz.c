/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for BATON_PRELOAD, the map the preload shim parses in
 * every server it is loaded into (common/preload_map.c): any input is read
 * or refused, never overruns; what is read has a family, type, port and
 * fd in range, and is never more entries than the count said. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "preload_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct preload_entry *e, one;
	char *text, bad[256];
	int n, got;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	n = preload_map_count(text);
	if (n < 0) {
		if (strncmp(text, "v1;", 3) == 0)
			abort();	/* a v1 map always has a count */
		free(text);
		return 0;
	}
	e = calloc((size_t)n + 1, sizeof(*e));
	if (!e) {
		free(text);
		return 0;
	}
	got = preload_map_parse(text, e, n, bad, sizeof(bad));
	if (got > n || (got < 0 && got != -EINVAL && got != -E2BIG) || strlen(bad) >= sizeof(bad))
		abort();
	for (int i = 0; i < got; i++)
		if ((e[i].family != AF_INET && e[i].family != AF_INET6) ||
		    (e[i].type != SOCK_STREAM && e[i].type != SOCK_DGRAM) || e[i].port < 1 || e[i].fd < 3 ||
		    e[i].fd > 65535)
			abort();
	/* one entry on its own, cut apart in place */
	memcpy(text, data, size);
	text[size] = '\0';
	if (!preload_entry_parse(text, &one) && (one.port < 1 || one.fd < 3 || one.fd > 65535))
		abort();
	free(e);
	free(text);
	return 0;
}
