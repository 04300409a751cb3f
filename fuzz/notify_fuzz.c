/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the sd_notify datagrams the supervisor reads from its
 * generations (and from anything else that reaches the notify socket): any
 * bytes parse or are refused, never crash or overrun; what parses keeps
 * STATUS= in bounds and on one line, and READY only for a READY=1 line. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct baton_notify_msg m;
	char *buf;
	int r;

	/* exactly the datagram and its NUL: ASan sees a read past either */
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(&m, 0, sizeof(m));
	r = baton_notify_parse(buf, size, &m);
	if (r != 0 && r != -EBADMSG && r != -EMSGSIZE)
		abort();
	if (memchr(m.status, '\0', sizeof(m.status)) == NULL || strchr(m.status, '\n'))
		abort();	/* STATUS= is one bounded line */
	if (m.pid || m.uid)
		abort();	/* credentials come from the kernel, never the text */
	if (r == 0 && m.ready && !(size >= 7 && ((memcmp(data, "READY=1", 7) == 0) ||
				 memmem(data, size, "\nREADY=1", 8))))
		abort();	/* ready only when a line says READY=1 */
	free(buf);
	return 0;
}
