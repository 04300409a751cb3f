/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the idle handoff's inputs (common/handoff_wire.h):
 * the messages a generation's channel carries (checked by the supervisor
 * and the shim with handoff_msg_check) and the shim's BATON_HANDOFF
 * environment. The first byte picks which; nothing crashes, what a check
 * accepts is well formed, and an environment that parses prints back to
 * one that parses the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handoff_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void env_case(const uint8_t *data, size_t size)
{
	static struct handoff_env a, b;
	static char text[8192], again[16384];
	size_t off;
	long nlisten;

	if (size < 2 || size - 2 >= sizeof(text))
		return;
	nlisten = data[0] * 17 + 1;     /* 1..4336: under and over the bitmap */
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (handoff_env_parse(text, nlisten, &a))
		return;
	if (a.slot < 0 || a.slot >= HANDOFF_GENS || a.fd < 0 || a.fd > 65535 || a.keep < -1 || a.keep > 65535 ||
	    a.prev < -1 || a.prev > 65535 || a.map[0] != '/' || !memchr(a.map, '\0', sizeof(a.map)))
		abort();
	off = (size_t)snprintf(again, sizeof(again), "v2;%d;", a.slot);
	for (long l = 0, n = 0; l < HANDOFF_MAX_LISTENERS; l++) {
		if (!handoff_env_opted(&a, l))
			continue;
		if (l >= nlisten)
			abort();	/* only listeners that exist */
		off += (size_t)snprintf(again + off, sizeof(again) - off, "%s%ld", n++ ? "," : "", l);
	}
	snprintf(again + off, sizeof(again) - off, ";%d;%d;%d;%s", a.fd, a.keep, a.prev, a.map);
	if (handoff_env_parse(again, nlisten, &b) || memcmp(&a, &b, sizeof(a)))
		abort();
}

static void msg_case(const uint8_t *data, size_t size)
{
	struct handoff_msg m = { 0 };
	unsigned want;
	int nfd, trunc;
	long n;

	if (size < 3)
		return;
	want = data[0];
	nfd = data[1] & 7;
	trunc = data[1] >> 7;
	data += 2;
	size -= 2;
	n = (long)size;
	memcpy(&m, data, size < sizeof(m) ? size : sizeof(m));
	want = (want & 1 ? 1u << HANDOFF_GIVE : 0) | (want & 2 ? 1u << HANDOFF_TOOK : 0) |
	       (want & 4 ? 1u << HANDOFF_BACK : 0) | (want & 8 ? 1u << HANDOFF_CONN : 0) | (want & 0xf0u) << 20;
	if (handoff_msg_check(&m, n, nfd, trunc, want))
		return;
	if (n != (long)sizeof(m) || trunc || m.op > 31 || !(want & (1u << m.op)))
		abort();
	if (m.op == HANDOFF_TOOK ? (nfd != 0 || !m.token) : nfd != 1)
		abort();
	if ((m.op == HANDOFF_CONN || m.op == HANDOFF_BACK) && !m.token)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		env_case(data + 1, size - 1);
	else
		msg_case(data + 1, size - 1);
	return 0;
}
