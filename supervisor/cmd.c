/* SPDX-License-Identifier: BSD-2-Clause */
/* The command and environment that generations run, as `baton reload
 * --env K=V -- CMD` changes them: percent-escaped items on the control
 * socket and in the state file, the merge of environment changes, and the
 * switch to a reload's command once its generation serves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "envbuild.h"
#include "strv.h"
#include "control.h"
#include "core.h"
#include "gen.h"
#include "state.h"

/* ---- the command in force -------------------------------------------------- */

static size_t key_len(const char *entry)
{
	return strcspn(entry, "=");
}

/* CUR with CHANGES applied: "K=V" replaces any K, "K" (unset) too; the
 * result keeps one entry per key, the latest. NULL on ENOMEM. */
char **env_merge(char *const *cur, char *const *changes)
{
	char **out = strv_dup(cur);

	for (size_t i = 0; out && changes && changes[i]; i++) {
		size_t kl = key_len(changes[i]), j, k;
		char *d;

		for (j = k = 0; out[j]; j++) {
			if (key_len(out[j]) == kl && !strncmp(out[j], changes[i], kl))
				free(out[j]);
			else
				out[k++] = out[j];
		}
		out[k] = NULL;
		d = strdup(changes[i]);
		if (!d || strv_push(&out, d)) {
			strv_free(out);
			return NULL;
		}
	}
	return out;
}

/* Into a generation's environment, before its spawn: what reloads set or
 * unset. 0 or -ENOMEM. */
int env_apply(struct envb *e, char *const *env)
{
	for (size_t i = 0; env && env[i]; i++) {
		size_t kl = key_len(env[i]);
		char key[256];

		if (kl >= sizeof(key))
			continue;
		memcpy(key, env[i], kl);
		key[kl] = '\0';
		if (env[i][kl] != '=')
			envb_unset(e, key);
		else if (envb_set(e, key, env[i] + kl + 1))
			return -ENOMEM;
	}
	return 0;
}

char *const *cmd_argv(const struct sup *s)
{
	if (s->spawn_next && s->next_cmd)
		return s->next_cmd;
	return s->cmd ? s->cmd : s->cfg->argv;
}

char *const *cmd_env(const struct sup *s)
{
	if (s->spawn_next && s->next_env)
		return s->next_env;
	return s->env;
}

void cmd_commit(struct sup *s)
{
	if (!s->next_cmd && !s->next_env)
		return;
	if (s->next_cmd) {
		strv_free(s->cmd);
		s->cmd = s->next_cmd;
		s->next_cmd = NULL;
	}
	if (s->next_env) {
		strv_free(s->env);
		s->env = s->next_env;
		s->next_env = NULL;
	}
	say(s, "the reload's command and environment are now in force for every later generation");
	state_save(s);
}

void cmd_drop(struct sup *s)
{
	if (!s->next_cmd && !s->next_env)
		return;
	strv_free(s->next_cmd);
	strv_free(s->next_env);
	s->next_cmd = s->next_env = NULL;
	say_warn(s, "the reload's command and environment are dropped: later generations run the previous one");
	state_save(s);
}

void cmd_free(struct sup *s)
{
	strv_free(s->cmd);
	strv_free(s->env);
	strv_free(s->next_cmd);
	strv_free(s->next_env);
	s->cmd = s->env = s->next_cmd = s->next_env = NULL;
}

/* One line for the log and the client: the command, then env changes. */
static void describe(char *const *cmd, char *const *changes, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; cmd && cmd[i] && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? " " : "command: ", cmd[i]);
	for (size_t i = 0; changes && changes[i] && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s%s", off ? "; " : "",
					strchr(changes[i], '=') ? "env " : "unset ", changes[i]);
}

/* `baton/1 reload-with N` and its N item lines (in C->big): "arg X", "env
 * K=V" or "unset K", X percent-escaped. A reload with them; the reply is
 * the reload's. Returns 0 (the client waits), or -errno after an error
 * was sent (-EPROTO) or what start_reload returned. */
int cmd_reload_request(struct sup *s, int ci, char *items, int n)
{
	struct client *c = &s->cl[ci];
	char **cmd = NULL, **changes = NULL, **env = NULL, *line, *save = NULL, text[600];
	int i, r = -EPROTO;

	line = strtok_r(items, "\n", &save);
	for (i = 0; i < n; i++, line = strtok_r(NULL, "\n", &save)) {
		const char *why = NULL, *what = "item";
		char *sp = line ? strchr(line, ' ') : NULL, *val;

		if (!sp) {
			client_send(c, "error malformed reload-with item %d: want \"arg X\", \"env K=V\" or \"unset K\"",
				    i + 1);
			goto out;
		}
		*sp = '\0';
		val = sup_unescape(sp + 1, &why);
		if (!val) {
			client_send(c, "error reload-with item %d (%s) holds %s", i + 1, line, why);
			goto out;
		}
		if (!strcmp(line, "arg")) {
			what = "argument";
			r = strv_push(&cmd, val);
		} else if (!strcmp(line, "env") || !strcmp(line, "unset")) {
			bool set = line[0] == 'e';
			size_t kl = key_len(val);

			what = set ? "--env" : "--unset-env";
			if (!kl || (set ? !val[kl] : !!val[kl]) || kl >= 256) {
				client_send(c, "error bad %s \"%.200s\": want %s", what, val,
					    set ? "KEY=VALUE with a KEY of 1 to 255 bytes"
						: "a KEY of 1 to 255 bytes, without =");
				free(val);
				r = -EPROTO;
				goto out;
			}
			r = strv_push(&changes, val);
		} else {
			client_send(c, "error unknown reload-with item \"%.40s\" (known: arg, env, unset)", line);
			free(val);
			r = -EPROTO;
			goto out;
		}
		if (r) {
			client_send(c, "error out of memory for %s %d", what, i + 1);
			r = -EPROTO;
			goto out;
		}
	}
	r = -EPROTO;
	if (line) {
		client_send(c, "error more lines than the %d items announced", n);
		goto out;
	}
	if (cmd && !cmd[0][0]) {
		client_send(c, "error the command's name (its first argument) is empty");
		goto out;
	}
	if (changes && !(env = env_merge(cmd_env(s), changes))) {
		client_send(c, "error out of memory");
		goto out;
	}
	if (s->stopping || s->reload >= 0 || s->active < 0) {
		r = start_reload(s, ci, RELOAD_CONTROL);	/* only says why not */
		goto out;
	}
	describe(cmd, changes, text, sizeof(text));
	s->next_cmd = cmd;
	s->next_env = env;
	cmd = env = NULL;
	s->spawn_next = true;
	r = start_reload_said(s, ci, RELOAD_CONTROL, text[0] ? text : NULL);
	s->spawn_next = false;
out:
	strv_free(cmd);
	strv_free(changes);
	strv_free(env);
	return r;
}
