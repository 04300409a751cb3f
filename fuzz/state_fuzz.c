/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer target for the state file parser (supervisor/stateparse.c): a
 * root supervisor acts on what it reads, so any input either parses or is
 * refused, never crashes or leaks; a refusal quotes its line as printable
 * text only, within its bound. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stateparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool take_stage(void *ctx, const char *line)
{
	(void)ctx;
	return !strncmp(line, "stage ", 6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state_bad bad;
	struct state st;
	FILE *f;
	int r;

	if (!size)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	r = state_parse(f, &st, take_stage, NULL, &bad);
	fclose(f);
	if (r && r != -EBADMSG && r != -ENOMEM)
		abort();
	if (!r && (!st.ended || st.nl < 0 || st.nl > SUP_MAX_LISTENERS || st.ngen > MAX_GENS))
		abort();
	for (int i = 0; i < st.ngen; i++)
		if (st.gen[i].pid <= 0)
			abort();	/* never a pid that signals a group or everyone */
	for (size_t i = 0; i < st.nmem; i++)
		if (st.mem[i].l < 0 || st.mem[i].l >= st.nl)
			abort();
	if (r == -EBADMSG && bad.lineno) {
		size_t n = strlen(bad.quoted);

		if (n >= sizeof(bad.quoted))
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)bad.quoted[i] < 0x20 || (unsigned char)bad.quoted[i] >= 0x7f)
				abort();	/* the log stays text */
	}
	state_free(&st);
	return 0;
}
