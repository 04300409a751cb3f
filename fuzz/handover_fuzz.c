/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the taking side's message parser (the handover wire
 * format): any header is accepted or refused with a reason, never crashes;
 * what is accepted yields exactly COUNT valid names covering the payload. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "baton_handover_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[BATON_HANDOVER_MAX_FDS];
	struct baton_handover_hdr h;
	char err[256];
	unsigned max_fds;
	size_t len, total, i;
	char *payload;
	int r;

	/* byte 0: the taker's max_fds; then the header; then the payload */
	if (size < 1 + sizeof(h))
		return 0;
	max_fds = data[0] ? data[0] : BATON_HANDOVER_MAX_FDS;
	memcpy(&h, data + 1, sizeof(h));
	err[0] = '\0';
	r = baton_handover_hdr_check(&h, BATON_HANDOVER_FDS, max_fds, err, sizeof(err));
	if (r) {
		if (r > 0 || !err[0])
			abort();	/* every refusal is a -errno with a reason */
		return 0;
	}
	if (h.type == BATON_HANDOVER_ERROR) {
		if (h.len > BATON_HANDOVER_ERRTEXT_MAX || !h.count)
			abort();
		return 0;
	}
	if (h.type != BATON_HANDOVER_FDS || !h.count || h.count > max_fds || h.count > BATON_HANDOVER_MAX_FDS ||
	    h.len > BATON_HANDOVER_PAYLOAD_MAX)
		abort();	/* the check let through what the receiver cannot hold */
	/* the receiver reads exactly len bytes; a shorter input is a hang-up */
	len = size - 1 - sizeof(h);
	if (len < h.len)
		return 0;
	payload = malloc(h.len ? h.len : 1);	/* exact size: ASan sees any overread */
	if (!payload)
		return 0;
	memcpy(payload, data + 1 + sizeof(h), h.len);
	err[0] = '\0';
	r = baton_handover_names_parse(payload, h.len, h.count, names, err, sizeof(err));
	if (r) {
		if (r != -EBADMSG || !err[0])
			abort();
		free(payload);
		return 0;
	}
	for (i = 0, total = 0; i < h.count; i++) {
		size_t nl = strlen(names[i]);

		if (names[i] < payload || names[i] + nl >= payload + h.len || !baton_handover_name_ok(names[i], nl))
			abort();
		total += nl + 1;
	}
	if (total != h.len)
		abort();	/* the names cover the payload exactly */
	free(payload);
	return 0;
}
