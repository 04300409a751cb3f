/* SPDX-License-Identifier: BSD-2-Clause */
/* baton_unix_addr, the one parser of unix socket paths (the handover API,
 * baton_notify_*, the supervisor's NOTIFY_SOCKET): files, "@" abstract
 * names, and the two inputs the three old copies disagreed on. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "harness.h"
#include "util.h"

TEST(unix_addr_files_abstract_names_and_refusals)
{
	struct sockaddr_un sun;
	socklen_t len = 0;
	char longp[sizeof(sun.sun_path) + 1];

	ASSERT_EQ(baton_unix_addr("/run/x.sock", &sun, &len), 0);
	ASSERT_EQ(sun.sun_family, AF_UNIX);
	ASSERT_STREQ(sun.sun_path, "/run/x.sock");
	ASSERT_EQ(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock"));

	/* "@name": a leading NUL, the length counts the name without a trailing NUL */
	ASSERT_EQ(baton_unix_addr("@baton", &sun, &len), 0);
	ASSERT_EQ(sun.sun_path[0], '\0');
	ASSERT_EQ(memcmp(sun.sun_path + 1, "baton", 5), 0);
	ASSERT_EQ(len, offsetof(struct sockaddr_un, sun_path) + 6);

	/* the empty path and a lone "@" (an empty abstract name) name nothing */
	ASSERT_EQ(baton_unix_addr("", &sun, &len), -EINVAL);
	ASSERT_EQ(baton_unix_addr("@", &sun, &len), -EINVAL);

	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ASSERT_EQ(baton_unix_addr(longp, &sun, &len), -ENAMETOOLONG);
	longp[sizeof(sun.sun_path) - 1] = '\0';	/* the longest that fits with its NUL */
	ASSERT_EQ(baton_unix_addr(longp, &sun, &len), 0);
}
