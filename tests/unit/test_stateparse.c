/* SPDX-License-Identifier: BSD-2-Clause */
/* The state file parser and the control request line, on buffers, without
 * a supervisor: a bad line is quoted as printable text (issue 20 item 10),
 * a good state parses whole, and request lines split as control.c expects. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../../supervisor/stateparse.h"
#include "../../supervisor/ctlparse.h"

static int parse(const char *buf, size_t len, struct state *st, struct state_bad *bad)
{
	FILE *f = fmemopen((void *)buf, len, "r");
	int r;

	ASSERT_TRUE(f != NULL);
	r = state_parse(f, st, NULL, NULL, bad);
	fclose(f);
	return r;
}

TEST(stateparse_a_good_state_parses_whole)
{
	static const char text[] = "baton-state 1\nname web\npid 1\nmode ebpf\npins -\nnext_id 3\ncounts 1 0 0\n"
				   "active 2\nreload 0\nlistener 0 8080 tcp://127.0.0.1:8080\n"
				   "gen 2 1234 5678 active 17 0\nmember 2 0 0 12345\ncmd-base /bin/sh\n"
				   "cmd-base exec%20sleep\nlast-reload ok%20after%203%20ms:%20gen%202\nend\n";
	struct state_bad bad;
	struct state st;

	ASSERT_EQ(parse(text, sizeof(text) - 1, &st, &bad), 0);
	ASSERT_STREQ(st.name, "web");
	ASSERT_EQ(st.nl, 1);
	ASSERT_EQ(st.ngen, 1);
	ASSERT_EQ(st.gen[0].pid, 1234);
	ASSERT_EQ(st.nmem, 1);
	ASSERT_STREQ(st.base[1], "exec sleep");
	ASSERT_STREQ(st.last_reload, "ok after 3 ms: gen 2");
	state_free(&st);
	/* a bad escape in it is a bad line, named */
	ASSERT_EQ(parse("baton-state 1\nname w\nlast-reload a%zz\nend\n", 42, &st, &bad), -EBADMSG);
	ASSERT_EQ(bad.lineno, 3);
	state_free(&st);
}

/* Random bytes in a state file reach the log as \xNN, bounded: the log
 * stays text (it was echoed raw). */
TEST(stateparse_a_bad_line_is_quoted_escaped_and_bounded)
{
	char text[400];
	struct state_bad bad;
	struct state st;
	size_t n = 0;

	n += (size_t)snprintf(text, sizeof(text), "baton-state 1\nname web\n");
	memcpy(text + n, "\x1b[31mred\x01\xff\"q\\", 13);
	n += 13;
	memset(text + n, 'A', 200);
	n += 200;
	text[n++] = '\n';
	ASSERT_EQ(parse(text, n, &st, &bad), -EBADMSG);
	ASSERT_EQ(bad.lineno, 3);
	bt_log("quoted: %s", bad.quoted);
	ASSERT_TRUE(!strncmp(bad.quoted, "\\x1b[31mred\\x01\\xff\\\"q\\\\AAA", 27));
	ASSERT_CONTAINS(bad.quoted, "... (213 bytes)");
	for (const char *p = bad.quoted; *p; p++)
		ASSERT_TRUE(*p >= 0x20 && *p < 0x7f);
	ASSERT_TRUE(strlen(bad.quoted) < 80 * 4 + 32);
	state_free(&st);
	/* a NUL inside a line is not one baton wrote, and is quoted too */
	ASSERT_EQ(parse("baton-state 1\nname w\0b\nend\n", 27, &st, &bad), -EBADMSG);
	ASSERT_EQ(bad.lineno, 2);
	ASSERT_STREQ(bad.quoted, "name w\\x00b");
	state_free(&st);
	/* no end line: incomplete, no line to quote */
	ASSERT_EQ(parse("baton-state 1\nname w\n", 21, &st, &bad), -EBADMSG);
	ASSERT_EQ(bad.lineno, 0);
	state_free(&st);
}

TEST(ctlparse_request_lines_split_as_the_supervisor_acts_on_them)
{
	char line[64];
	struct ctl_req req;
	char *arg, *extra;
	long n;

	snprintf(line, sizeof(line), "baton/1 status json\r\n");
	ASSERT_EQ(ctl_split(line, &req), 0);
	ASSERT_STREQ(req.cmd, "status");
	ASSERT_EQ(ctl_args(req.rest, &arg, &extra), 0);
	ASSERT_STREQ(arg, "json");
	snprintf(line, sizeof(line), "baton/1 stop now please\n");
	ASSERT_EQ(ctl_split(line, &req), 0);
	ASSERT_EQ(ctl_args(req.rest, &arg, &extra), -E2BIG);
	ASSERT_STREQ(extra, "please");
	snprintf(line, sizeof(line), "baton/2 stop\n");
	ASSERT_EQ(ctl_split(line, &req), -EPROTO);
	ASSERT_STREQ(req.proto, "baton/2");
	ASSERT_EQ(ctl_items_count("baton/1 reload-with 12 canary=5\n", &n), 0);
	ASSERT_EQ(n, 12);
	ASSERT_EQ(ctl_items_count("baton/1 reload-with -1\n", &n), -EINVAL);
	ASSERT_EQ(ctl_items_count("baton/1 reload-with 99999999999999999999\n", &n), -EINVAL);
	ASSERT_EQ(ctl_items_count("baton/1 reload-with 4097\n", &n), -EINVAL);
}
