/* SPDX-License-Identifier: BSD-2-Clause */
/* A draining generation that is only slow to accept is not fenced under
 * it: a fence makes its accept() fail with EINVAL, which some servers take
 * as fatal (Go's Serve returns it, and the server exits, resetting what it
 * had accepted and not yet read: 1 to 3 connections lost in 20 reloads of
 * a Go server on a busy machine). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

#define QUEUED 5

/* Generation 1 accepts nothing while it serves (its queue fills), and on
 * SIGTERM takes 150 ms to get back to accept() while it still holds the
 * listener, then answers what waits and exits 0, or exits 1 at an accept()
 * that fails, as Go's Serve does. Later generations accept at once. */
static const char server_py[] =
	"import os, signal, socket, sys, time\n"
	"ls = socket.socket(fileno=3)\n"
	"gen = os.environ.get('BATON_GENERATION', '?')\n"
	"stop = False\n"
	"def term(*_):\n"
	"    global stop\n"
	"    stop = True\n"
	"signal.signal(signal.SIGTERM, term)\n"
	"def answer(c):\n"
	"    c.setblocking(True)\n"
	"    c.settimeout(5)\n"
	"    data = b''\n"
	"    while b'\\r\\n\\r\\n' not in data:\n"
	"        d = c.recv(4096)\n"
	"        if not d:\n"
	"            break\n"
	"        data += d\n"
	"    body = ('gen' + gen + '\\n').encode()\n"
	"    c.sendall(b'HTTP/1.1 200 OK\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)\n"
	"    c.close()\n"
	"if gen == '1':\n"
	"    while not stop:\n"
	"        time.sleep(0.01)\n"
	"    time.sleep(0.15)\n"
	"    ls.setblocking(False)\n"
	"    while True:\n"
	"        try:\n"
	"            c, _ = ls.accept()\n"
	"        except BlockingIOError:\n"
	"            sys.exit(0)\n"
	"        except OSError as e:\n"
	"            print('gen 1: accept:', e, file=sys.stderr)\n"
	"            sys.exit(1)\n"
	"        answer(c)\n"
	"ls.settimeout(0.05)\n"
	"while not stop:\n"
	"    try:\n"
	"        c, _ = ls.accept()\n"
	"    except OSError:\n"
	"        continue\n"
	"    answer(c)\n";

TEST_TIMEOUT(drain_a_generation_slow_to_accept_is_not_fenced_under_it, 60)
{
	const char *py = bt_need_server("python3", "python3");
	struct bt_sv s;
	char script[128];
	int fds[QUEUED];
	const char *gen1;

	bt_need_netns();
	bt_need_ebpf();
	bt_need_private_bpffs();
	bt_sv_init(&s);
	bt_write_file(s.dir, "server.py", server_py);
	snprintf(script, sizeof(script), "%s/server.py", s.dir);
	snprintf(s.cmd, sizeof(s.cmd), "exec %s %s", py, script);
	/* --no-watch: generation 1's queue does not move while it serves, and
	 * the health watch is not under test */
	bt_sv_start(&s, "tcp://127.0.0.1:8080", "10s",
		    (const char *[]){ "--ready", "delay:100ms", "--no-watch", NULL }, NULL, out, sizeof(out));
	bt_connect_send(8080, fds, QUEUED, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	for (int i = 0; i < QUEUED; i++) {
		char buf[256] = "";
		size_t got = 0;
		ssize_t n;
		struct pollfd p = { .fd = fds[i], .events = POLLIN };

		while (got < sizeof(buf) - 1 && poll(&p, 1, 5000) == 1 &&
		       (n = read(fds[i], buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)n;
		buf[got] = '\0';
		if (!strstr(buf, "200 OK")) {
			bt_quote_file(s.log);
			FAIL("queued connection %d: no answer (%s)", i, got ? buf : strerror(errno));
		}
		close(fds[i]);
	}
	/* generation 1 accepted its queue itself, then exited 0 */
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(bt_baton("status", "web", "--json"), 0);
		gen1 = bt_gen_json(out, 1);
		if (strstr(gen1, "\"state\":\"exited\""))
			break;
		usleep(50000);
	}
	if (!strstr(gen1, "\"exit\":\"exited with status 0\"")) {
		bt_quote_file(s.log);
		FAIL("generation 1 was fenced while it still held its listener: %.300s", gen1);
	}
	bt_supervisor_stop(&s.pid, 10);
}
