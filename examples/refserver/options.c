/* SPDX-License-Identifier: BSD-2-Clause */
/* refserver's command line: --help, the options and their checks. */
#include <getopt.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "numarg.h"
#include "refserver.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: refserver [OPTION]...\n\n"
		"A small HTTP/1.1 server for baton: GET / answers 200 with its pid and tag.\n"
		"Listening sockets come from systemd socket activation (LISTEN_PID,\n"
		"LISTEN_FDS, LISTEN_FDNAMES; fds from 3); without them, --listen binds its own.\n"
		"With NOTIFY_SOCKET set it sends READY=1 once it accepts, as sd_notify(3) does.\n"
		"On the stop signal it stops accepting, answers what it has received with\n"
		"\"Connection: close\", ends idle connections and exits 0 when none is left.\n\n"
		"  --listen HOST:PORT   bind this address when no LISTEN_FDS are given\n"
		"                       (repeatable; [V6]:PORT for IPv6)\n"
		"  --reuseport          set SO_REUSEPORT on sockets --listen binds\n"
		"  --tag STR            text included in every answer (default \"refserver\")\n"
		"  --delay-ms N         answer each request N ms after it arrives\n"
		"  --grace-ms N         longest graceful stop before exiting anyway (10000)\n"
		"  --stop-signal NAME   signal that starts the graceful stop (TERM)\n"
		"  --ready-delay MS     send READY=1 only MS ms after accepting starts\n"
		"  --upgrade-socket PATH  upgrade in place on SIGUSR2: run this command line\n"
		"                       again, hand it the listening sockets through the unix\n"
		"                       socket PATH (baton's handover protocol), and once it\n"
		"                       accepts, stop as on the stop signal\n"
		"  --never-ready        never send READY=1\n"
		"  --crash-at-start     exit 1 right after startup (for rollback tests)\n"
		"  --fail-after MS      MS after READY=1, stop accepting, answer what was\n"
		"                       asked, and exit 1 (a version that fails once it serves)\n"
		"  -q, --quiet          print only errors\n"
		"  -h, --help           this text\n");
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
	double n;

	if (numarg_parse(v, lo, hi, true, &n)) {
		fprintf(stderr, "refserver: option %s: \"%s\" is not a number from %d to %d\n", opt, v, lo, hi);
		return -1;
	}
	*out = (int)n;
	return 0;
}

enum { O_LISTEN = 256, O_TAG, O_DELAY, O_GRACE, O_STOPSIG, O_READYDELAY, O_NEVER, O_CRASH, O_REUSEPORT,
       O_UPGRADE, O_FAIL_AFTER };

/* The options that take a whole number of ms: option ID's value V, checked
 * against its row's range, into its field of O. */
static int set_ms(struct opts *o, int id, const char *v)
{
	static const struct { int id; const char *name; int lo, hi; size_t field; } ms[] = {
		{ O_DELAY, "--delay-ms", 0, 3600000, offsetof(struct opts, delay_ms) },
		{ O_GRACE, "--grace-ms", 0, 86400000, offsetof(struct opts, grace_ms) },
		{ O_READYDELAY, "--ready-delay", 0, 86400000, offsetof(struct opts, ready_delay_ms) },
		{ O_FAIL_AFTER, "--fail-after", 1, 86400000, offsetof(struct opts, fail_after_ms) },
	};

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		if (ms[i].id == id)
			return parse_int(ms[i].name, v, ms[i].lo, ms[i].hi, (int *)((char *)o + ms[i].field));
	return -1;
}

static int parse_signal(const char *v)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "WINCH", SIGWINCH },
	};
	size_t i;
	char *end;
	long n;

	if (!strncasecmp(v, "SIG", 3))
		v += 3;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!strcasecmp(v, sigs[i].name))
			return sigs[i].sig;
	n = strtol(v, &end, 10);
	if (end != v && !*end && n > 0 && n < SIGRTMAX && n != SIGKILL && n != SIGSTOP)
		return (int)n;
	return -1;
}

int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "tag", required_argument, NULL, O_TAG },
		{ "delay-ms", required_argument, NULL, O_DELAY },
		{ "grace-ms", required_argument, NULL, O_GRACE },
		{ "stop-signal", required_argument, NULL, O_STOPSIG },
		{ "ready-delay", required_argument, NULL, O_READYDELAY },
		{ "never-ready", no_argument, NULL, O_NEVER },
		{ "crash-at-start", no_argument, NULL, O_CRASH },
		{ "fail-after", required_argument, NULL, O_FAIL_AFTER },
		{ "reuseport", no_argument, NULL, O_REUSEPORT },
		{ "upgrade-socket", required_argument, NULL, O_UPGRADE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", lopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			if (o->nlisten == MAX_LISTEN) {
				fprintf(stderr, "refserver: option --listen: at most %d\n", MAX_LISTEN);
				return 2;
			}
			o->listen[o->nlisten++] = optarg;
			break;
		case O_TAG:
			if (strlen(optarg) > 200 || strpbrk(optarg, "\r\n")) {
				fprintf(stderr, "refserver: option --tag: at most 200 characters on one line\n");
				return 2;
			}
			o->tag = optarg;
			break;
		case O_DELAY:
		case O_GRACE:
		case O_READYDELAY:
		case O_FAIL_AFTER:
			if (set_ms(o, c, optarg))
				return 2;
			break;
		case O_STOPSIG:
			o->stop_signal = parse_signal(optarg);
			if (o->stop_signal < 0) {
				fprintf(stderr, "refserver: option --stop-signal: unknown signal \"%s\"\n", optarg);
				return 2;
			}
			break;
		case O_NEVER: o->never_ready = true; break;
		case O_CRASH: o->crash_at_start = true; break;
		case O_REUSEPORT: o->reuseport = true; break;
		case O_UPGRADE:
			/* the offer moves to each successor by rename(2): a file, not @abstract */
			if (optarg[0] != '/' || strlen(optarg) + 16 > sizeof(((struct sockaddr_un *)0)->sun_path)) {
				fprintf(stderr, "refserver: option --upgrade-socket: \"%s\" is not an absolute path "
					"of at most %zu characters\n", optarg,
					sizeof(((struct sockaddr_un *)0)->sun_path) - 16);
				return 2;
			}
			o->upgrade_socket = optarg;
			break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); return 0;
		case ':':
			fprintf(stderr, "refserver: option \"%s\" needs a value (see refserver --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "refserver: unknown option \"%s\" (see refserver --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "refserver: unexpected argument \"%s\" (see refserver --help)\n", argv[optind]);
		return 2;
	}
	if (o->upgrade_socket && o->stop_signal == SIGUSR2) {
		fprintf(stderr, "refserver: --stop-signal USR2 cannot go with --upgrade-socket (USR2 upgrades)\n");
		return 2;
	}
	return -1;
}
