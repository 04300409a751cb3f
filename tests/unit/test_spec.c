/* SPDX-License-Identifier: BSD-2-Clause */
/* Listener spec parser: good specs parse to the right address and options,
 * bad ones fail with a message that names the bad part. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>

#include "baton.h"
#include "harness.h"

static void parse_ok(const char *text, struct baton_spec *s)
{
	char err[256];
	int r = baton_spec_parse(text, s, err, sizeof(err));

	if (r)
		FAIL("\"%s\" should parse, got %d: %s", text, r, err);
}

static void parse_bad(const char *text, const char *want)
{
	struct baton_spec s;
	char err[256] = "";
	int r = baton_spec_parse(text, &s, err, sizeof(err));

	if (r != -EINVAL)
		FAIL("\"%s\" should be refused, got %d", text, r);
	if (!strstr(err, want))
		FAIL("error for \"%s\" should say \"%s\", got \"%s\"", text, want, err);
}

TEST(spec_tcp_v4)
{
	struct baton_spec s;
	struct sockaddr_in *sin = (struct sockaddr_in *)&s.addr;

	parse_ok("tcp://127.0.0.1:8080", &s);
	ASSERT_EQ(s.proto, BATON_PROTO_TCP);
	ASSERT_EQ(s.family, AF_INET);
	ASSERT_EQ(s.port, 8080);
	ASSERT_EQ(ntohs(sin->sin_port), 8080);
	ASSERT_EQ(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	ASSERT_EQ(s.backlog, 4096);
	ASSERT_EQ(s.v6only, -1);
	ASSERT_STREQ(s.name, "");
}

TEST(spec_wildcards_and_options)
{
	struct baton_spec s;

	parse_ok("tcp://0.0.0.0:8080?backlog=128&name=http", &s);
	ASSERT_EQ(s.backlog, 128);
	ASSERT_STREQ(s.name, "http");
	parse_ok("tcp://*:0", &s);
	ASSERT_EQ(((struct sockaddr_in *)&s.addr)->sin_addr.s_addr, htonl(INADDR_ANY));
	ASSERT_EQ(s.port, 0);
	parse_ok("tcp://localhost:65535", &s);
	ASSERT_EQ(((struct sockaddr_in *)&s.addr)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	ASSERT_EQ(s.port, 65535);
	parse_ok("udp://127.0.0.1:53?name=dns.v4", &s);
	ASSERT_EQ(s.proto, BATON_PROTO_UDP);
	ASSERT_STREQ(s.name, "dns.v4");
}

TEST(spec_v6)
{
	struct baton_spec s;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s.addr;
	struct in6_addr lo = IN6ADDR_LOOPBACK_INIT;

	parse_ok("tcp://[::1]:443?v6only=1", &s);
	ASSERT_EQ(s.family, AF_INET6);
	ASSERT_EQ(s.port, 443);
	ASSERT_EQ(ntohs(sin6->sin6_port), 443);
	ASSERT_TRUE(memcmp(&sin6->sin6_addr, &lo, sizeof(lo)) == 0);
	ASSERT_EQ(s.v6only, 1);
	parse_ok("udp://[::]:5353?v6only=false", &s);
	ASSERT_EQ(s.v6only, 0);
}

TEST(spec_bad_inputs_name_the_part)
{
	parse_bad("tcp://x:80a", "bad port \"80a\" in \"tcp://x:80a\"");
	parse_bad("tcp://127.0.0.1:65536", "bad port \"65536\"");
	parse_bad("tcp://127.0.0.1:", "bad port \"\"");
	parse_bad("tcp://127.0.0.1", "no port in");
	parse_bad("http://127.0.0.1:80", "bad scheme \"http\"");
	parse_bad("127.0.0.1:80", "no scheme in \"127.0.0.1:80\"");
	parse_bad("tcp://example.com:80", "bad host \"example.com\"");
	parse_bad("tcp://300.1.1.1:80", "bad host \"300.1.1.1\"");
	parse_bad("tcp://::1:80", "put an IPv6 address in brackets");
	parse_bad("tcp://[::1:80", "unclosed \"[\"");
	parse_bad("tcp://[::g]:80", "bad IPv6 address \"[::g]\"");
	parse_bad("tcp://[::1]80", "no port");
	parse_bad("tcp://127.0.0.1:80?backlog=0", "bad backlog \"0\"");
	parse_bad("tcp://127.0.0.1:80?backlog=9x", "bad backlog \"9x\"");
	parse_bad("tcp://127.0.0.1:80?backlog=1&backlog=2", "option \"backlog\" given twice");
	parse_bad("udp://127.0.0.1:53?backlog=5", "applies to tcp only");
	parse_bad("tcp://127.0.0.1:80?v6only=1", "applies to IPv6 addresses only");
	parse_bad("tcp://[::1]:80?v6only=yes", "bad v6only \"yes\"");
	parse_bad("tcp://127.0.0.1:80?name=a/b", "bad name \"a/b\"");
	parse_bad("tcp://127.0.0.1:80?colour=red", "unknown option \"colour\"");
	parse_bad("tcp://127.0.0.1:80?name", "option \"name\" in \"tcp://127.0.0.1:80?name\" has no value");
	parse_bad("tcp://127.0.0.1:80?", "empty query");
	parse_bad("tcp://127.0.0.1:80?name=a&", "empty option at the end");
	parse_bad("tcp://127.0.0.1:80?name=a&&backlog=1", "empty option");
	parse_bad("", "no scheme");
}

TEST(spec_refuses_overlong_input)
{
	char big[2048];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "tcp://", 6);
	parse_bad(big, "longer than");
}

TEST(spec_format_round_trips)
{
	const char *in[] = { "tcp://127.0.0.1:8080?backlog=64&name=web", "udp://[::1]:53?v6only=1",
			     "tcp://0.0.0.0:0" };
	size_t i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct baton_spec a, b;
		char text[256];

		parse_ok(in[i], &a);
		ASSERT_GT(baton_spec_format(&a, text, sizeof(text)), 0);
		parse_ok(text, &b);
		ASSERT_EQ(a.proto, b.proto);
		ASSERT_EQ(a.port, b.port);
		ASSERT_EQ(a.backlog, b.backlog);
		ASSERT_EQ(a.v6only, b.v6only);
		ASSERT_STREQ(a.name, b.name);
		ASSERT_TRUE(memcmp(&a.addr, &b.addr, sizeof(a.addr)) == 0);
	}
}

TEST(names_follow_one_rule)
{
	ASSERT_TRUE(baton_name_valid("http"));
	ASSERT_TRUE(baton_name_valid("web-1.v2_x"));
	ASSERT_TRUE(!baton_name_valid(""));
	ASSERT_TRUE(!baton_name_valid(".hidden"));
	ASSERT_TRUE(!baton_name_valid("a/b"));
	ASSERT_TRUE(!baton_name_valid("0123456789012345678901234567890123456789012345678901234567890123"));
	ASSERT_TRUE(!baton_name_valid(NULL));
	parse_bad("tcp://127.0.0.1:80?name=.x", "bad name \".x\"");
}

TEST(spec_errors_escape_control_characters)
{
	struct baton_spec s;
	char err[256];

	ASSERT_EQ(baton_spec_parse("tcp://host\x1b[2J:80x", &s, err, sizeof(err)), -EINVAL);
	ASSERT_TRUE(strchr(err, '\x1b') == NULL);
	ASSERT_CONTAINS(err, "host\\x1b[2J");
	ASSERT_EQ(baton_spec_parse("tcp://127.0.0.1:80?name=a\nb", &s, err, sizeof(err)), -EINVAL);
	ASSERT_TRUE(strchr(err, '\n') == NULL);
	ASSERT_CONTAINS(err, "\\x0a");
}

static void flows_ok(const char *text, struct baton_spec_flows *fl)
{
	char err[256];

	if (baton_spec_flows(text, fl, err, sizeof(err)))
		FAIL("baton_spec_flows(\"%s\"): %s", text, err);
}

static void flows_bad(const char *text, const char *want)
{
	struct baton_spec_flows fl;
	struct baton_spec s;
	char err[256];

	ASSERT_EQ(baton_spec_flows(text, &fl, err, sizeof(err)), -EINVAL);
	ASSERT_CONTAINS(err, want);
	/* the plain parser refuses the same spec with the same words */
	ASSERT_EQ(baton_spec_parse(text, &s, err, sizeof(err)), -EINVAL);
	ASSERT_CONTAINS(err, want);
}

TEST(spec_udp_flow_options)
{
	struct baton_spec_flows fl;
	struct baton_spec s;

	flows_ok("udp://127.0.0.1:53", &fl);
	ASSERT_EQ(fl.mode, BATON_FLOWS_ON);
	ASSERT_EQ(fl.table, BATON_FLOW_TABLE_DEFAULT);
	ASSERT_EQ(fl.idle_ms, BATON_FLOW_IDLE_DEFAULT_MS);
	flows_ok("tcp://127.0.0.1:80", &fl);
	ASSERT_EQ(fl.mode, BATON_FLOWS_OFF);
	flows_ok("udp://127.0.0.1:53?flows=off", &fl);
	ASSERT_EQ(fl.mode, BATON_FLOWS_OFF);
	flows_ok("udp://[::1]:443?flows=quic&flow_table=100000&flow_idle=1.5s&name=h3", &fl);
	ASSERT_EQ(fl.mode, BATON_FLOWS_QUIC);
	ASSERT_EQ(fl.table, 100000);
	ASSERT_EQ(fl.idle_ms, 1500);
	flows_ok("udp://127.0.0.1:53?flow_idle=250ms", &fl);
	ASSERT_EQ(fl.idle_ms, 250);
	flows_ok("udp://127.0.0.1:53?flow_idle=2m", &fl);
	ASSERT_EQ(fl.idle_ms, 120000);
	flows_ok("udp://127.0.0.1:53?flow_idle=45", &fl);
	ASSERT_EQ(fl.idle_ms, 45000);
	/* the plain parser takes the same spec */
	parse_ok("udp://[::1]:443?flows=quic&flow_table=100000&flow_idle=1.5s&name=h3", &s);
	ASSERT_STREQ(s.name, "h3");
}

TEST(spec_udp_flow_options_bad_inputs_name_the_part)
{
	flows_bad("tcp://127.0.0.1:80?flows=on", "option \"flows\" in \"tcp://127.0.0.1:80?flows=on\" applies to udp only");
	flows_bad("udp://127.0.0.1:53?flows=sticky", "bad flows \"sticky\"");
	flows_bad("udp://127.0.0.1:53?flow_table=0", "bad flow_table \"0\"");
	flows_bad("udp://127.0.0.1:53?flow_table=99999999", "bad flow_table \"99999999\"");
	flows_bad("udp://127.0.0.1:53?flow_idle=5x", "bad flow_idle \"5x\"");
	flows_bad("udp://127.0.0.1:53?flow_idle=0", "bad flow_idle \"0\"");
	flows_bad("udp://127.0.0.1:53?flow_idle=25h", "bad flow_idle \"25h\"");
	flows_bad("udp://127.0.0.1:53?flows=on&flows=off", "option \"flows\" given twice");
	flows_bad("udp://127.0.0.1:53?flowz=on", "unknown option \"flowz\"");
	ASSERT_EQ(baton_spec_flows("udp://127.0.0.1:53", NULL, NULL, 0), -EINVAL);
}

TEST(spec_handoff_idle_is_tcp_only_and_round_trips)
{
	struct baton_spec s, back;
	char text[256];

	parse_ok("tcp://127.0.0.1:8080", &s);
	ASSERT_EQ(s.handoff, BATON_HANDOFF_NONE);
	parse_ok("tcp://127.0.0.1:8080?handoff=idle&backlog=64", &s);
	ASSERT_EQ(s.handoff, BATON_HANDOFF_IDLE);
	ASSERT_EQ(s.backlog, 64);
	ASSERT_GT(baton_spec_format(&s, text, sizeof(text)), 0);
	ASSERT_CONTAINS(text, "handoff=idle");
	parse_ok(text, &back);
	ASSERT_EQ(back.handoff, BATON_HANDOFF_IDLE);
	parse_ok("tcp://127.0.0.1:8080?handoff=none", &s);
	ASSERT_EQ(s.handoff, BATON_HANDOFF_NONE);
	parse_bad("udp://127.0.0.1:53?handoff=idle", "applies to tcp only");
	parse_bad("tcp://127.0.0.1:80?handoff=all", "bad handoff \"all\"");
	parse_bad("tcp://127.0.0.1:80?handoff=idle&handoff=idle", "given twice");
	/* the field took padding: a 0.1 caller's struct is the same size
	 * (lib/spec.c asserts the layout at build time) */
	ASSERT_EQ(offsetof(struct baton_spec, handoff), offsetof(struct baton_spec, port) + 2);
}
