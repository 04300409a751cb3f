/* SPDX-License-Identifier: BSD-2-Clause */
/* The sd_notify datagrams a supervisor reads from its generations (and from
 * anything else that reaches its notify socket): what parses, what is
 * refused, through the socket and through the pure parse fuzz/notify_fuzz.c
 * drives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

static int parse(const char *text, size_t n, struct baton_notify_msg *m)
{
	char *buf = malloc(n + 1);
	int r;

	if (!buf)
		FAIL("malloc");
	memcpy(buf, text, n);
	memset(m, 0, sizeof(*m));
	r = baton_notify_parse(buf, n, m);
	free(buf);
	return r;
}

TEST(notify_parse_keys_and_refusals)
{
	struct baton_notify_msg m;
	char big[4200];

	ASSERT_OK(parse("READY=1\nSTATUS=serving\nMAINPID=42\nERRNO=98\n", 43, &m));
	ASSERT_TRUE(m.ready && !m.stopping && !m.reloading && !m.listening);
	ASSERT_STREQ(m.status, "serving");
	ASSERT_EQ(m.mainpid, 42);
	ASSERT_EQ(m.errnum, 98);
	ASSERT_OK(parse("READY=0\nBATON_LISTENING=1\nWATCHDOG=1", 36, &m));
	ASSERT_TRUE(!m.ready && m.listening);
	ASSERT_EQ(parse("READY", 5, &m), -EBADMSG);
	ASSERT_EQ(parse("READY=1\0STATUS=x", 16, &m), -EBADMSG);
	/* a STATUS longer than the field is cut, still one terminated line */
	memset(big, 'x', sizeof(big));
	memcpy(big, "STATUS=", 7);
	ASSERT_OK(parse(big, 300, &m));
	ASSERT_EQ(strlen(m.status), sizeof(m.status) - 1);
	ASSERT_EQ(parse(big, 4097, &m), -EMSGSIZE);
}

TEST(notify_recv_goes_through_the_same_parse)
{
	struct baton_notify_msg m;
	int sv[2];

	ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv));
	ASSERT_EQ(send(sv[1], "STOPPING=1\nSTATUS=bye", 21, 0), 21);
	ASSERT_EQ(send(sv[1], "garbage", 7, 0), 7);
	ASSERT_OK(baton_notify_recv(sv[0], &m));
	ASSERT_TRUE(m.stopping && !m.ready);
	ASSERT_STREQ(m.status, "bye");
	ASSERT_EQ(baton_notify_recv(sv[0], &m), -EBADMSG);
	ASSERT_EQ(baton_notify_recv(sv[0], &m), -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}
