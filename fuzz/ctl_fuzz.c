/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the control socket's request line
 * (supervisor/ctlparse.c): any line a client sends splits or is refused,
 * never crashes; what splits starts with the protocol and keeps its words
 * inside the line; a reload-with count is within its bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sup.h"
#include "ctlparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *p, const char *buf, size_t size)
{
	if (p && (p < buf || p > buf + size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[SUP_REQUEST_MAX + 1], copy[SUP_REQUEST_MAX + 1], *arg, *extra;
	struct ctl_req req;
	long n;

	if (size > SUP_REQUEST_MAX || memchr(data, '\0', size))
		return 0;	/* control.c refuses these before parsing */
	memcpy(buf, data, size);
	buf[size] = '\0';
	memcpy(copy, buf, size + 1);
	if (!ctl_items_count(copy, &n) && (n < 0 || n > SUP_ITEMS_MAX))
		abort();
	if (ctl_split(buf, &req))
		return 0;
	if (strcmp(req.proto, SUP_PROTO) || !req.rest)
		abort();
	inside(req.cmd, buf, size);
	inside(req.rest, buf, size);
	if (req.cmd && (strchr(req.cmd, ' ') || strchr(req.cmd, '\n') || strchr(req.cmd, '\r')))
		abort();
	if (!ctl_args(req.rest, &arg, &extra) && extra)
		abort();
	inside(arg, buf, size);
	inside(extra, buf, size);
	return 0;
}
