/* SPDX-License-Identifier: BSD-2-Clause */
/* baton reload --check http://HOST/PATH: HOST becomes the probe's Host:
 * header, so a CR LF in it would add headers of the caller's making (issue
 * 19.14). baton reload refuses it, and a space or any other byte that no
 * host name or address holds, naming the input (escaped) and the byte,
 * before it reaches a supervisor; good forms pass to the supervisor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[8192], err[8192];

static int reload_check(const char *url)
{
	char *argv[] = { (char *)bt_baton_bin(), "reload", "nosuch", "--canary", "10%", "--check", (char *)url, NULL };

	return bt_run(argv, out, sizeof(out), err, sizeof(err), 30);
}

TEST(check_url_refuses_crlf_and_spaces_naming_the_input)
{
	char dir[64];

	/* an empty runtime directory: a good URL gets as far as "no supervisor" */
	bt_runtime_tmpdir(dir, sizeof(dir), "test");

	ASSERT_EQ(reload_check("http://evil\r\nX-Injected: 1/healthz"), 2);
	ASSERT_CONTAINS(err, "bad --check \"http://evil\\x0d\\x0aX-Injected: 1/healthz\": its HOST holds the "
			     "character 0x0d at byte 11");
	ASSERT_TRUE(strchr(err, '\r') == NULL);
	static const struct { const char *url, *says; } bad[] = {
		{ "http://a b/", "its HOST holds a space 0x20 at byte 8" },
		{ "http://host\t/", "its HOST holds the character 0x09 at byte 11" },
		{ "http:///health check", "its PATH holds a space 0x20 at byte 14; escape it as %20" },
		{ "http:///x\ny", "its PATH holds the control character 0x0a at byte 9" },
		{ "ftp://x/", "want http://PATH" },
		{ "http://nohost", "want http://PATH" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(reload_check(bad[i].url), 2);
		ASSERT_CONTAINS(err, bad[i].says);
	}

	/* what a Host header may hold goes on to the supervisor (none here) */
	static const char *const good[] = { "http:///healthz", "http://example.com/healthz",
					    "http://127.0.0.1:8080/", "http://[::1]:80/ready?x=1", "http://my_host-1/" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ASSERT_EQ(reload_check(good[i]), 1);
		ASSERT_CONTAINS(err, "no supervisor named \"nosuch\"");
	}
	rmdir(dir);
}
