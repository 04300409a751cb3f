/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the listener spec parser: any input either parses or
 * fails with a message, never crashes; and what parses survives a round trip
 * through the canonical formatter unchanged; the flow options parse exactly
 * when the spec does, and stay in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "baton.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct baton_spec a, b;
	struct baton_spec_flows fl;
	char text[2048], again[2048], err[256];
	int ra, rf;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	ra = baton_spec_parse(text, &a, err, sizeof(err));
	rf = baton_spec_flows(text, &fl, err, sizeof(err));
	if (ra != rf)
		abort();	/* one parser: the same verdict */
	if (ra) {
		if (!err[0])
			abort();	/* every refusal says why */
		return 0;
	}
	if ((unsigned)fl.mode > BATON_FLOWS_QUIC || !fl.table || fl.table > BATON_FLOW_TABLE_MAX || !fl.idle_ms ||
	    fl.idle_ms > 86400000 || (a.proto == BATON_PROTO_TCP && fl.mode != BATON_FLOWS_OFF))
		abort();
	if (baton_spec_format(&a, again, sizeof(again)) <= 0)
		abort();
	if (baton_spec_parse(again, &b, err, sizeof(err)))
		abort();	/* the canonical form must parse */
	if (a.proto != b.proto || a.family != b.family || a.port != b.port || a.backlog != b.backlog ||
	    a.v6only != b.v6only || strcmp(a.name, b.name) || memcmp(&a.addr, &b.addr, sizeof(a.addr)))
		abort();
	return 0;
}
