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
	char dir[] = "/tmp/baton-test-XXXXXX";

	/* an empty runtime directory: a good URL gets as far as "no supervisor" */
	if (!mkdtemp(dir))
		FAIL("mkdtemp: %s", strerror(errno));
	setenv("BATON_RUNTIME_DIR", dir, 1);

	ASSERT_EQ(reload_check("http://evil\r\nX-Injected: 1/healthz"), 2);
	ASSERT_CONTAINS(err, "bad --check \"http://evil\\x0d\\x0aX-Injected: 1/healthz\": its HOST holds the "
			     "character 0x0d at byte 11");
	ASSERT_TRUE(strchr(err, '\r') == NULL);
	ASSERT_EQ(reload_check("http://a b/"), 2);
	ASSERT_CONTAINS(err, "its HOST holds a space 0x20 at byte 8");
	ASSERT_EQ(reload_check("http://host\t/"), 2);
	ASSERT_CONTAINS(err, "its HOST holds the character 0x09 at byte 11");
	ASSERT_EQ(reload_check("http:///health check"), 2);
	ASSERT_CONTAINS(err, "its PATH holds a space 0x20 at byte 14; escape it as %20");
	ASSERT_EQ(reload_check("http:///x\ny"), 2);
	ASSERT_CONTAINS(err, "its PATH holds the control character 0x0a at byte 9");
	ASSERT_EQ(reload_check("ftp://x/"), 2);
	ASSERT_CONTAINS(err, "want http://PATH");
	ASSERT_EQ(reload_check("http://nohost"), 2);
	ASSERT_CONTAINS(err, "want http://PATH");

	/* what a Host header may hold goes on to the supervisor (none here) */
	static const char *const good[] = { "http:///healthz", "http://example.com/healthz",
					    "http://127.0.0.1:8080/", "http://[::1]:80/ready?x=1", "http://my_host-1/" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ASSERT_EQ(reload_check(good[i]), 1);
		ASSERT_CONTAINS(err, "no supervisor named \"nosuch\"");
	}
	rmdir(dir);
}
