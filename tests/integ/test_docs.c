/* SPDX-License-Identifier: BSD-2-Clause */
/* What a user reads and types: the manuals as rendered (FILES, EXAMPLES,
 * the systemd pages in SEE ALSO, placeholders that stay visible, no groff
 * warning), --help that offers nothing meant for the tests, and the bash
 * completion (subcommands, options, names of running supervisors). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[262144], err[16384];

static const char *srcdir(void)
{
	const char *src = getenv("BATON_SRCDIR");

	if (!src || !*src)
		SKIP("BATON_SRCDIR does not name the source tree (run through make check)");
	return src;
}

static void need_prog(const char *path, const char *package)
{
	if (access(path, X_OK))
		SKIP("%s is not installed (Debian package %s)", path, package);
}

/* The page rendered as plain text at 80 columns; groff's warnings in err. */
static void render(const char *page)
{
	char cmd[1024];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	need_prog("/usr/bin/groff", "groff");
	snprintf(cmd, sizeof(cmd),
		 "groff -man -Tutf8 -ww -z '%s/man/%s' && LC_ALL=C.UTF-8 groff -man -Tutf8 -rLL=80n -P-cbou '%s/man/%s'",
		 srcdir(), page, srcdir(), page);
	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 60), 0);
	if (err[0])
		FAIL("groff -ww warns about man/%s: %s", page, err);
	/* justification pads with spaces: one is enough to compare words */
	for (char *r = out, *w = out;; r++) {
		if (*r == ' ' && w > out && w[-1] == ' ')
			continue;
		if (!(*w++ = *r))
			break;
	}
}

TEST_TIMEOUT(docs_baton_1_has_files_examples_and_the_systemd_pages, 60)
{
	render("baton.1");
	ASSERT_CONTAINS(out, "\nFILES\n");
	ASSERT_CONTAINS(out, "RUNDIR/NAME.state");
	ASSERT_CONTAINS(out, "/sys/fs/bpf/baton/run-NAME/lN/");
	ASSERT_CONTAINS(out, "libbaton-preload.so");
	ASSERT_CONTAINS(out, "\nEXAMPLES\n");
	ASSERT_CONTAINS(out, "baton run --listen 'tcp://0.0.0.0:8080?name=http' -- build/refserver");
	ASSERT_CONTAINS(out, "systemd.socket(5)");
	ASSERT_CONTAINS(out, "systemd.service(5)");
	ASSERT_CONTAINS(out, "sd_notify(3)");
	ASSERT_CONTAINS(out, "baton promote | baton rollback [name] [--timeout dur]");
	/* the placeholders stay visible without bold and underline */
	ASSERT_CONTAINS(out, "FDNAME=baton-l<listener>-<inode>");
	ASSERT_TRUE(strstr(out, "--record") == NULL || strstr(out, "baton ls --record is for baton's own test"));
}

TEST_TIMEOUT(docs_baton_3_has_files_and_the_systemd_pages, 60)
{
	render("baton.3");
	ASSERT_CONTAINS(out, "\nFILES\n");
	ASSERT_CONTAINS(out, "sd_notify(3)");
	ASSERT_CONTAINS(out, "systemd.socket(5)");
}

TEST(docs_ls_help_does_not_offer_the_tests_record_option)
{
	char *help[] = { (char *)bt_baton_bin(), "ls", "--help", NULL };
	char *rec[] = { (char *)bt_baton_bin(), "ls", "--record", NULL };

	ASSERT_EQ(bt_run(help, out, sizeof(out), err, sizeof(err), 10), 0);
	ASSERT_CONTAINS(out, "usage: baton ls");
	ASSERT_TRUE(strstr(out, "record") == NULL);
	ASSERT_EQ(bt_run(rec, out, sizeof(out), err, sizeof(err), 30), 0);	/* still there for the tests */
}

/* What `source completion/baton.bash` then TAB gives for COMP_WORDS WORDS
 * (a bash array's text) at COMP_CWORD CWORD. */
static const char *complete(const char *words, int cword)
{
	char script[1024];
	char *argv[] = { "/bin/bash", "--norc", "-c", script, NULL };

	need_prog("/bin/bash", "bash");
	snprintf(script, sizeof(script),
		 "source '%s/completion/baton.bash' && COMP_WORDS=(%s) && COMP_CWORD=%d && _baton && "
		 "echo \"${COMPREPLY[*]}\"",
		 srcdir(), words, cword);
	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 30), 0);
	bt_log("%s -> %s", words, out);
	return out;
}

TEST_TIMEOUT(docs_bash_completion_offers_commands_options_and_running_names, 60)
{
	char words[512], dir[64] = "/tmp/baton-compl-XXXXXX", sock[96];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	ASSERT_STREQ(complete("baton re", 1), "reload\n");
	ASSERT_STREQ(complete("baton st", 1), "status stop steer\n");
	snprintf(words, sizeof(words), "'%s' run --log", bt_baton_bin());
	ASSERT_STREQ(complete(words, 2), "--log-format\n");
	snprintf(words, sizeof(words), "'%s' run --log-format ''", bt_baton_bin());
	ASSERT_STREQ(complete(words, 3), "plain level journal\n");
	snprintf(words, sizeof(words), "'%s' ls --re", bt_baton_bin());
	ASSERT_STREQ(complete(words, 2), "\n");	/* --record is the tests', not offered */
	/* the names of running supervisors: their control sockets */
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/web.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("BATON_RUNTIME_DIR", dir, 1);
	complete("baton reload w", 2);
	unlink(sock);
	rmdir(dir);
	close(fd);
	ASSERT_STREQ(out, "web\n");
}
