/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls writes IPv4 addresses by hand (inet_ntop's sprintf was a sixth of
 * its time at 10,000 listeners): every value of each byte, in the table and
 * the JSON, must read exactly as inet_ntop writes it. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lsfmt.h"

/* The JSON of one listener on A:8080 holds "A:8080" and "A" as inet_ntop
 * writes them. */
static void check_addr(const uint8_t a[4])
{
	struct baton_sock s;
	char want[INET_ADDRSTRLEN], ep[INET_ADDRSTRLEN + 16], *json = NULL, *text = NULL;
	size_t jlen = 0, tlen = 0;
	FILE *f;

	memset(&s, 0, sizeof(s));
	s.proto = BATON_PROTO_TCP;
	s.family = AF_INET;
	s.state = 10;
	s.lport = 8080;
	s.slot = -1;
	memcpy(s.local, a, 4);
	ASSERT_TRUE(inet_ntop(AF_INET, a, want, sizeof(want)) != NULL);
	snprintf(ep, sizeof(ep), "\"%s:8080\"", want);
	f = open_memstream(&json, &jlen);
	ASSERT_TRUE(f != NULL);
	ls_render_json(f, &s, 1);
	fclose(f);
	ASSERT_CONTAINS(json, ep);
	snprintf(ep, sizeof(ep), "\"%s\"", want);
	ASSERT_CONTAINS(json, ep);
	f = open_memstream(&text, &tlen);
	ASSERT_TRUE(f != NULL);
	ls_render_text(f, &s, 1);
	fclose(f);
	snprintf(ep, sizeof(ep), " %s:8080", want);
	ASSERT_CONTAINS(text, ep);
	free(json);
	free(text);
}

TEST(ls_ipv4_addresses_read_as_inet_ntop_writes_them)
{
	for (unsigned v = 0; v < 256; v++) {
		/* the byte in each place, beside its neighbours' extremes */
		const uint8_t a[][4] = {
			{ (uint8_t)v, 0, 0, 0 }, { 0, (uint8_t)v, 255, 0 },
			{ 255, 0, (uint8_t)v, 9 }, { 10, 100, 1, (uint8_t)v },
		};

		for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
			check_addr(a[i]);
	}
}
