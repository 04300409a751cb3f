/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton`: looks the subcommand up in a table and runs it. Every command
 * answers --help; unknown commands and options are named in the error. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "log.h"

static const struct command commands[] = {
	{ "run", "run a command as generation 1 on sockets baton holds, and supervise it", cmd_run, usage_run },
	{ "reload", "start the next generation and switch to it once it is ready", cmd_reload, usage_reload },
	{ "promote", "complete a canary or probation: the new generation takes everything", cmd_promote,
	  usage_promote },
	{ "rollback", "undo a canary or probation: every new connection back to the old generation",
	  cmd_rollback, usage_rollback },
	{ "status", "show a supervisor's generations, queues and reloads", cmd_status, usage_status },
	{ "stop", "stop a supervisor and its generations gracefully", cmd_stop, usage_stop },
	{ "upgrade", "re-execute a supervisor's binary in place, as the same pid", cmd_upgrade, usage_upgrade },
	{ "demo", "show the frozen-member problem and baton's answer, with nothing to set up",
	  cmd_demo, usage_demo },
	{ "ls", "list listening sockets: options, owners, reuseport groups, programs",
	  cmd_ls, usage_ls },
	{ "steer", "take control of a reuseport group baton did not start; fail over",
	  cmd_steer, usage_steer },
};

char **cli_self_argv;

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void cli_log(void *ctx, enum baton_log_level level, const char *msg)
{
	int verbose = ctx ? *(int *)ctx : 0;
	enum blog_level bl = level == BATON_LOG_ERROR ? BLOG_ERR : level == BATON_LOG_WARN ? BLOG_WARN
			   : level == BATON_LOG_INFO ? BLOG_INFO : BLOG_DEBUG;

	if (level <= BATON_LOG_WARN || (verbose && level <= BATON_LOG_INFO) || verbose > 1)
		blog(bl, "baton", "%s", msg);
}

/* libbpf prints its own diagnostics; keep them for BATON_DEBUG=1, since the
 * library already reports what failed and what it falls back to. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static int debug = -1;

	if (debug < 0)
		debug = getenv("BATON_DEBUG") && strcmp(getenv("BATON_DEBUG"), "0");
	(void)level;
	return debug ? vfprintf(stderr, fmt, ap) : 0;
}

/* Levenshtein distance, bounded: names are short, 32 is plenty. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[33], i, j;

	if (la > 32 || lb > 32)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* An unknown WORD: an option before any command, or a command, with the
 * nearest command name when one is close (a typo, not another word). */
static int unknown(const char *word)
{
	const char *best = NULL;
	size_t i, d, bestd = 99;

	if (word[0] == '-') {
		blog(BLOG_ERR, "baton", "unknown option \"%s\": before a command baton takes only --help and "
					"--version (a command's options go after it: baton COMMAND --help)", word);
		return EXIT_USAGE;
	}
	for (i = 0; i < NCOMMANDS; i++) {
		d = distance(word, commands[i].name);
		if (d < bestd) {
			bestd = d;
			best = commands[i].name;
		}
	}
	/* two edits for names of 5 letters and more, one for shorter ones */
	if (best && bestd <= (strlen(best) >= 5 ? 2u : 1u))
		blog(BLOG_ERR, "baton", "unknown command \"%s\"; did you mean \"%s\"? (see baton --help)", word, best);
	else
		blog(BLOG_ERR, "baton", "unknown command \"%s\" (see baton --help)", word);
	return EXIT_USAGE;
}

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: baton COMMAND [OPTION]...\n\n"
		     "Hands a listening port from one process to the next without refusing,\n"
		     "resetting or stalling a connection.\n\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n  baton COMMAND --help   options of one command\n"
		     "  baton --version        print the version\n\n"
		     "See baton(1). Set BATON_DEBUG=1 to see libbpf's own messages.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	cli_self_argv = argv;
	libbpf_set_print(libbpf_print);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			for (i = 0; i < NCOMMANDS; i++)
				if (!strcmp(argv[2], commands[i].name)) {
					commands[i].usage(stdout);
					return 0;
				}
			return unknown(argv[2]);
		}
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("baton %s\n", BATON_VERSION);
		return 0;
	}
	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			commands[i].usage(stdout);
			return 0;
		}
		return commands[i].run(argc - 1, argv + 1);
	}
	return unknown(argv[1]);
}
