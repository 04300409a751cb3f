/* SPDX-License-Identifier: BSD-2-Clause */
/* What `baton reload --env K=V -- CMD` rests on, without processes: the
 * percent-escaped items of the control protocol and the state file, the
 * merge of environment changes, and a reload's command coming into force
 * only once its generation serves (a fake spawn records what it ran). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "harness.h"
#include "../../supervisor/cmd.h"
#include "../../supervisor/envbuild.h"
#include "../../supervisor/strv.h"
#include "../../supervisor/gen.h"
#include "fakesup.h"

static char *escaped(const char *text)
{
	static char buf[512];
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);

	ASSERT_TRUE(f != NULL);
	sup_escape(f, text);
	fclose(f);
	snprintf(buf, sizeof(buf), "%s", mem);
	free(mem);
	return buf;
}

TEST(reload_items_escape_round_trip_and_refusals)
{
	const char *texts[] = { "plain", "", "a b", "100%", "x\ty\nz", "caf\xc3\xa9", "--tag=\"q\"" };
	const char *why;
	char *back;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		const char *e = escaped(texts[i]);

		/* one token on one line, whatever the text */
		ASSERT_TRUE(strpbrk(e, " \t\n\r") == NULL);
		back = sup_unescape(e, &why);
		ASSERT_TRUE(back != NULL);
		ASSERT_STREQ(back, texts[i]);
		free(back);
	}
	ASSERT_STREQ(escaped("a b%\n"), "a%20b%25%0A");
	ASSERT_TRUE(sup_unescape("a b", &why) == NULL);
	ASSERT_CONTAINS(why, "raw space or control character");
	ASSERT_TRUE(sup_unescape("a%2", &why) == NULL);
	ASSERT_CONTAINS(why, "a % not followed by two hex digits");
	ASSERT_TRUE(sup_unescape("%zz", &why) == NULL);
	ASSERT_TRUE(sup_unescape("a%00b", &why) == NULL);
	ASSERT_CONTAINS(why, "a NUL byte (%00)");
	ASSERT_TRUE(sup_unescape("a%1Bb", &why) == NULL);
	ASSERT_CONTAINS(why, "the control character 0x1b at byte 1");
	ASSERT_TRUE(sup_item_check("tab\tand\nnewline") == NULL);
	ASSERT_TRUE(sup_item_check("del\x7f") != NULL);
}

TEST(reload_items_env_changes_keep_one_entry_per_key)
{
	char *cur[] = { "A=1", "B=2", NULL };
	char *changes[] = { "A=3", "B", "C=", "A=4", NULL };
	char **env = env_merge(cur, changes);

	ASSERT_TRUE(env != NULL);
	ASSERT_EQ(strv_len(env), 3);
	ASSERT_STREQ(env[0], "B");	/* "B": unset in the generation */
	ASSERT_STREQ(env[1], "C=");
	ASSERT_STREQ(env[2], "A=4");
	{
		char *inherited[] = { "B=inherited", "D=kept", NULL };
		struct envb e;

		ASSERT_EQ(envb_init(&e, inherited), 0);
		ASSERT_EQ(env_apply(&e, env), 0);
		ASSERT_TRUE(envb_get(&e, "B") == NULL);
		ASSERT_STREQ(envb_get(&e, "C"), "");
		ASSERT_STREQ(envb_get(&e, "A"), "4");
		ASSERT_STREQ(envb_get(&e, "D"), "kept");
		ASSERT_EQ((int)e.n, 3);
		envb_free(&e);
	}
	strv_free(env);
}

static char spawned[64];

static pid_t fake_spawn(struct sup *s, int id, const int *fds, int *err)
{
	static pid_t next_pid = 4100000;	/* above any pid_max: never a real process */

	(void)id, (void)fds, (void)err;
	snprintf(spawned, sizeof(spawned), "%s", cmd_argv(s)[0]);
	return next_pid++;
}

static int fake_kill(pid_t pid, int sig)
{
	(void)pid, (void)sig;
	return 0;
}

static const struct sup_ops fake_ops = { .spawn = fake_spawn, .kill = fake_kill };

static char **strv(const char *a)
{
	char **v = NULL;

	ASSERT_EQ(strv_push(&v, strdup(a)), 0);
	return v;
}

/* A reload with command A: its generation started with A. */
static int reload_with(struct sup *s, const char *cmd)
{
	s->next_cmd = strv(cmd);
	s->spawn_next = true;
	ASSERT_EQ(start_reload(s, -1, RELOAD_CONTROL), 0);
	s->spawn_next = false;
	ASSERT_STREQ(spawned, cmd);
	return s->reload;
}

TEST(reload_items_command_is_in_force_once_its_generation_serves)
{
	char *argv[] = { "old-server", NULL };
	struct sup_config cfg;
	struct baton_spec spec;
	struct sup s;
	int gi;

	bt_fake_sup(&s, &cfg, &spec, &fake_ops, argv);
	gi = bt_fake_first_gen(&s);
	gen_ready(&s, gi, false);
	ASSERT_STREQ(spawned, "old-server");

	/* rolled back: the old command stays */
	gi = reload_with(&s, "bad-server");
	gen_exited(&s, gi, W_EXITCODE(1, 0));
	ASSERT_EQ(s.reloads_failed, 1);
	ASSERT_TRUE(s.cmd == NULL && s.next_cmd == NULL);
	ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), 0);
	ASSERT_STREQ(spawned, "old-server");
	gen_ready(&s, s.reload, false);

	/* served: the new one runs every later generation */
	gi = reload_with(&s, "new-server");
	ASSERT_STREQ(cmd_argv(&s)[0], "old-server");	/* not before it serves */
	gen_ready(&s, gi, false);
	ASSERT_EQ(s.reloads_done, 2);
	ASSERT_STREQ(cmd_argv(&s)[0], "new-server");
	ASSERT_EQ(start_reload(&s, -1, RELOAD_CONTROL), 0);
	ASSERT_STREQ(spawned, "new-server");
	sup_fini(&s);
}
