/* SPDX-License-Identifier: BSD-2-Clause */
/* Text `baton status` shows what others choose (the words of a reload's
 * command, its environment, a generation's exit and health reasons): each
 * is escaped, so the terminal of whoever asks gets no control sequence.
 * Driven on a supervisor without processes, as in test_genstate.c. */
#include <stdlib.h>

#include "harness.h"
#include "../../supervisor/gen.h"
#include "../../supervisor/status.h"
#include "fakesup.h"

static pid_t next_pid = 4100000;	/* above any pid_max: never a real process */

static pid_t fake_spawn(struct sup *s, int id, const int *fds, int *err)
{
	(void)s, (void)id, (void)fds, (void)err;
	return next_pid++;
}

static int fake_kill(pid_t pid, int sig)
{
	(void)pid, (void)sig;
	return 0;
}

static const struct sup_ops fake_ops = { .spawn = fake_spawn, .kill = fake_kill };

TEST(status_text_escapes_commands_and_reasons)
{
	char *argv[] = { "/bin/server", "--title=\033]0;owned\007", "caf\xc3\xa9", NULL };
	char *env[] = { "BANNER=\033[2J\xc2\x9b" "1m", NULL };
	struct baton_spec spec;
	struct sup_config cfg;
	struct sup s;
	char *out = NULL;
	size_t n = 0, i;
	int gi;
	FILE *m;

	bt_fake_sup(&s, &cfg, &spec, &fake_ops, argv);
	gi = bt_fake_first_gen(&s);
	gen_ready(&s, gi, false);
	s.cmd = argv;		/* as set by a reload */
	s.env = env;
	snprintf(s.gen[gi].health, sizeof(s.gen[gi].health), "check said \033[31mok\033[0m");
	snprintf(s.degraded, sizeof(s.degraded), "server said \033]52;c;cm0gLXJmIC8K\007");
	snprintf(s.last_reload, sizeof(s.last_reload), "gen 2: \x1b[1Afake line\r");

	m = open_memstream(&out, &n);
	ASSERT_TRUE(m != NULL);
	write_status(&s, m, false);
	fclose(m);
	s.cmd = NULL;
	s.env = NULL;
	for (i = 0; i < n; i++)
		if (((unsigned char)out[i] < 0x20 && out[i] != '\n') || out[i] == 0x7f)
			FAIL("control byte 0x%02x at %zu of the status text:\n%s", (unsigned char)out[i], i, out);
	ASSERT_CONTAINS(out, "command set by a reload: /bin/server --title=\\x1b]0;owned\\x07 caf\xc3\xa9");
	ASSERT_CONTAINS(out, "; environment: BANNER=\\x1b[2J\\xc2\\x9b1m\n");
	ASSERT_CONTAINS(out, "[check said \\x1b[31mok\\x1b[0m]");
	ASSERT_CONTAINS(out, "degraded: server said \\x1b]52;c;cm0gLXJmIC8K\\x07\n");
	ASSERT_CONTAINS(out, "last reload: gen 2: \\x1b[1Afake line\\x0d\n");
	free(out);
	sup_fini(&s);
}
