/* SPDX-License-Identifier: BSD-2-Clause */
/* baton_text_escape, the one escaper of text other users control before it
 * reaches a terminal (baton ls, baton status, baton steer): what is escaped,
 * what is kept, and that a short buffer never ends in half an escape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util.h"

TEST(text_escape_controls_and_bad_utf8)
{
	char out[256];

	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "nginx: worker", 0), "nginx: worker");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "\033[31mred\033[0m", 0), "\\x1b[31mred\\x1b[0m");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "a\nb\tc\rd\x7f", 0), "a\\x0ab\\x09c\\x0dd\\x7f");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "back\\slash", 0), "back\\\\slash");
	/* valid UTF-8 kept; C1 CSI, bidi override, overlong, surrogate, cut and stray bytes escaped */
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d", 0),
		     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "\xc2\x9b" "2J", 0), "\\xc2\\x9b2J");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "a\xe2\x80\xae" "b", 0), "a\\xe2\\x80\\xaeb");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "\xc0\xaf", 0), "\\xc0\\xaf");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "\xed\xa0\x80", 0), "\\xed\\xa0\\x80");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "x\xe2\x82", 0), "x\\xe2\\x82");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "\xff\xfe", 0), "\\xff\\xfe");
	/* several relayed lines: newline and tab pass, a backslash is not doubled */
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "gen 1\tok\n\\x1b \033", BATON_ESC_LINES),
		     "gen 1\tok\n\\x1b \\x1b");
}

TEST(text_escape_never_cuts_an_escape)
{
	char out[8];

	/* "ab" fits, "\x1b" (4 bytes) would need 7 with the NUL: left out whole */
	ASSERT_STREQ(baton_text_escape(out, 6, "ab\033cd", 0), "ab");
	ASSERT_STREQ(baton_text_escape(out, 7, "ab\033cd", 0), "ab\\x1b");
	ASSERT_STREQ(baton_text_escape(out, 1, "abc", 0), "");
	ASSERT_STREQ(baton_text_escape(out, sizeof(out), "caf\xc3\xa9xyz", 0), "caf\xc3\xa9xy");
	ASSERT_STREQ(baton_text_escape(out, 5, "caf\xc3\xa9", 0), "caf");
}

TEST(text_escape_fputs_matches)
{
	const char *in = "w\033]0;t\007\xc3\xa9\xff\\";
	char want[64], *got = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&got, &len);

	ASSERT_TRUE(m != NULL);
	baton_text_fputs(m, in, 0);
	fclose(m);
	ASSERT_STREQ(got, baton_text_escape(want, sizeof(want), in, 0));
	ASSERT_STREQ(got, "w\\x1b]0;t\\x07\xc3\xa9\\xff\\\\");
	free(got);
}

/* JSON stays valid UTF-8 and terminal-safe: controls and the characters a
 * terminal acts on as \uXXXX, a byte that is not UTF-8 as U+FFFD, the rest
 * (valid UTF-8 included) as it is. */
TEST(json_str_is_valid_utf8_and_terminal_safe)
{
	char *got = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&got, &len);

	ASSERT_TRUE(m != NULL);
	baton_json_str(m, "a\"\\\033[2J caf\xc3\xa9 \xc2\x9b\xe2\x80\xae \xff\xc0\xaf end");
	fclose(m);
	ASSERT_STREQ(got, "\"a\\\"\\\\\\u001b[2J caf\xc3\xa9 \\u009b\\u202e \\ufffd\\ufffd\\ufffd end\"");
	free(got);
}
