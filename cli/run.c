/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton run`: parses the command line into a supervisor config and runs
 * the supervisor in the foreground. */
#include <errno.h>
#include <netinet/in.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "sup.h"

void usage_run(FILE *out)
{
	fprintf(out,
		"usage: baton run --listen SPEC [--listen SPEC]... [OPTION]... -- CMD [ARG]...\n\n"
		"Runs CMD as generation 1 on sockets that baton holds, and supervises it in the\n"
		"foreground. `baton reload` (or SIGHUP) starts the next generation, waits until it\n"
		"is ready, switches every new connection to it in one step and stops the old one;\n"
		"connections left in the old one's queue move to the new one. CMD receives its\n"
		"sockets as fds 3.. with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (systemd socket\n"
		"activation) and NOTIFY_SOCKET for sd_notify(3). Under systemd, baton itself speaks\n"
		"sd_notify to its own NOTIFY_SOCKET and takes sockets passed with LISTEN_FDS\n"
		"for the --listen they match (see \"SYSTEMD\" in baton(1)).\n\n"
		"  -l, --listen SPEC      a listener, e.g. tcp://0.0.0.0:8080?backlog=4096&name=http\n"
		"                         (repeatable; order = fd order); ?handoff=idle hands idle\n"
		"                         keep-alive connections of a stopping generation to the\n"
		"                         new one (plaintext HTTP/1.x, through the preload shim)\n"
		"  -n, --name NAME        names the control socket (default: the first listener's\n"
		"                         name= option, else PROTO-PORT, e.g. tcp-8080)\n"
		"  -r, --ready MODE       when a generation is ready: notify (READY=1), delay:DUR,\n"
		"                         listen (it listens: the shim's report, or cgroup mode's\n"
		"                         adoption), or auto\n"
		"                         (default: READY=1 or listen, or 2 s after start if the\n"
		"                         command sends no sd_notify message at all)\n"
		"      --ready-timeout DUR  roll back a reload if not ready by then (default 30s)\n"
		"      --stop-signal SIG  how an old generation is told to stop (default TERM;\n"
		"                         nginx wants QUIT)\n"
		"      --grace DUR        how long a stopping generation may take before SIGKILL\n"
		"                         (default 30s)\n"
		"      --stop-when-idle   at a reload, fence the old generation and send the stop\n"
		"                         signal once it holds no connection (or after --grace):\n"
		"                         for servers whose stop signal cuts requests in flight\n"
		"      --no-preload       do not inject libbaton-preload.so, which otherwise makes\n"
		"                         a command that binds its own socket to a --listen\n"
		"                         address serve on baton's (BATON_PRELOAD, LD_PRELOAD)\n"
		"      --bind-mode MODE   how a command that binds its own socket joins the\n"
		"                         steered group: shim (LD_PRELOAD), cgroup (a cgroup bind\n"
		"                         hook; baton adopts the socket when it listens), or auto\n"
		"                         (default: cgroup for static and Go executables, else shim)\n"
		"      --no-watch         do not watch the active generation's health\n"
		"      --takeover PID     bring a running server (not started by baton) under baton:\n"
		"                         its listening sockets on the --listen addresses (and its\n"
		"                         children's) are copied and become generation 0, which\n"
		"                         is drained once generation 1 is ready (repeatable)\n"
		"      --takeover-signal SIG  how generation 0 is told to stop (default: the\n"
		"                         --stop-signal)\n"
		"      --takeover-reuseport  a taken socket without SO_REUSEPORT gets it, and the\n"
		"                         listener is steered (fenced, migrated) instead of shared;\n"
		"                         needs baton and the server to run as the same uid\n"
		"      --hang-threshold DUR  a stopped active generation, or one whose queue\n"
		"                         makes no progress this long (default 1s, or 4 times\n"
		"                         the longest stall it got over by itself, up to 10s),\n"
		"                         is fenced and replaced by a fresh generation\n"
		"      --allow-foreign    start even if a listener's address already has listening\n"
		"                         sockets that baton did not create (refused by default,\n"
		"                         naming their owners)\n"
		"      --max-draining N   refuse a reload while N older generations still drain\n"
		"                         (1 to 14; default: as many as the generation table holds)\n"
		"      --metrics-listen ADDR  serve baton status --metrics over plain HTTP at\n"
		"                         http://ADDR/metrics (GET only; ADDR is HOST:PORT,\n"
		"                         [V6]:PORT or :PORT; off by default)\n"
		"      --log-format FMT   how log lines show their level: plain (\"error: \",\n"
		"                         \"warning: \"), level (a level word on every line, for\n"
		"                         runit, s6, container logs), journal (\"<3>\" prefixes,\n"
		"                         for systemd-cat); default: journal when stderr is\n"
		"                         $JOURNAL_STREAM, else plain, or $BATON_LOG_FORMAT\n"
		"  -v, --verbose          more messages (twice: debug)\n"
		"  -h, --help             this text\n\n"
		"DUR is 250ms, 2s, 1.5s, 1m or plain seconds. The control socket is\n"
		"$BATON_RUNTIME_DIR/NAME.sock (default /run/baton for root, else\n"
		"$XDG_RUNTIME_DIR/baton). SIGTERM or SIGINT stops every generation gracefully;\n"
		"SIGUSR2 (or baton upgrade) re-executes baton in place. If baton itself dies,\n"
		"the generations keep serving: run the same command again and it adopts them\n"
		"(NAME.state beside the control socket, maps pinned in $BATON_BPFFS/baton,\n"
		"BATON_BPFFS defaulting to /sys/fs/bpf).\n");
}

/* --no-watch (HANG NULL) or --hang-threshold HANG. */
static int run_watch_option(struct sup_config *cfg, const char *hang)
{
	if (!hang) {
		cfg->no_watch = true;
		return 0;
	}
	if (sup_parse_duration(hang, &cfg->hang_ms) || cfg->hang_ms < 1 || cfg->hang_ms > 3600000)
		return -EINVAL;
	return 0;
}

/* Index of an earlier listener on the same protocol, address and port as
 * listen[n], or -1 (port 0 asks for a fresh port each time: no clash). */
static int same_address(const struct baton_spec *listen, int n)
{
	const struct baton_spec *b = &listen[n];

	for (int i = 0; i < n; i++) {
		const struct baton_spec *a = &listen[i];

		if (a->proto != b->proto || a->family != b->family || a->port != b->port || !a->port)
			continue;
		if (a->family == AF_INET ? !memcmp(&((const struct sockaddr_in *)&a->addr)->sin_addr,
						   &((const struct sockaddr_in *)&b->addr)->sin_addr, 4)
					 : !memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
						   &((const struct sockaddr_in6 *)&b->addr)->sin6_addr, 16))
			return i;
	}
	return -1;
}

static int bad(const char *what, const char *value, const char *hint)
{
	fprintf(stderr, "baton run: bad %s \"%s\"%s%s (see baton run --help)\n", what, value, hint ? ": " : "",
		hint ? hint : "");
	return EXIT_USAGE;
}

enum { OPT_READY_TIMEOUT = 256, OPT_STOP_SIGNAL, OPT_GRACE, OPT_NO_PRELOAD, OPT_STOP_WHEN_IDLE,
       OPT_NO_WATCH, OPT_HANG, OPT_ALLOW_FOREIGN, OPT_TAKEOVER, OPT_TAKEOVER_SIGNAL, OPT_TAKEOVER_REUSEPORT,
       OPT_BIND_MODE, OPT_MAX_DRAINING, OPT_METRICS_LISTEN, OPT_LOG_FORMAT };

static const struct option run_opts[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "name", required_argument, NULL, 'n' },
	{ "ready", required_argument, NULL, 'r' },
	{ "ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT },
	{ "stop-signal", required_argument, NULL, OPT_STOP_SIGNAL },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "no-preload", no_argument, NULL, OPT_NO_PRELOAD },
	{ "stop-when-idle", no_argument, NULL, OPT_STOP_WHEN_IDLE },
	{ "no-watch", no_argument, NULL, OPT_NO_WATCH },
	{ "hang-threshold", required_argument, NULL, OPT_HANG },
	{ "allow-foreign", no_argument, NULL, OPT_ALLOW_FOREIGN },
	{ "bind-mode", required_argument, NULL, OPT_BIND_MODE },
	{ "takeover", required_argument, NULL, OPT_TAKEOVER },
	{ "takeover-signal", required_argument, NULL, OPT_TAKEOVER_SIGNAL },
	{ "takeover-reuseport", no_argument, NULL, OPT_TAKEOVER_REUSEPORT },
	{ "max-draining", required_argument, NULL, OPT_MAX_DRAINING },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* run_option's answer for --help: stop parsing, exit 0 */
#define RUN_HELP (-1)

static int out_of_memory(void)
{
	fprintf(stderr, "baton run: out of memory\n");
	return EXIT_USAGE;
}

/* --listen SPEC: parsed, checked against the earlier ones, appended. */
static int add_listen(struct sup_config *cfg, int *cap, const char *spec)
{
	char err[256];
	int c;

	if (cfg->nlisten == SUP_MAX_LISTENERS) {
		fprintf(stderr, "baton run: at most %d listeners\n", SUP_MAX_LISTENERS);
		return EXIT_USAGE;
	}
	if (cfg->nlisten == *cap) {
		struct baton_spec *v;
		struct baton_spec_flows *fl;

		*cap = *cap ? *cap * 2 : 8;
		v = realloc(cfg->listen, (size_t)*cap * sizeof(*v));
		if (!v)
			return out_of_memory();
		cfg->listen = v;
		fl = realloc(cfg->flows, (size_t)*cap * sizeof(*fl));
		if (!fl)
			return out_of_memory();
		cfg->flows = fl;
	}
	if (baton_spec_parse(spec, &cfg->listen[cfg->nlisten], err, sizeof(err)) ||
	    baton_spec_flows(spec, &cfg->flows[cfg->nlisten], err, sizeof(err))) {
		fprintf(stderr, "baton run: %s\n", err);
		return EXIT_USAGE;
	}
	if ((c = same_address(cfg->listen, cfg->nlisten)) >= 0) {
		char a[256], b[256];

		baton_spec_format(&cfg->listen[c], a, sizeof(a));
		baton_spec_format(&cfg->listen[cfg->nlisten], b, sizeof(b));
		fprintf(stderr, "baton run: --listen %s and --listen %s name the same address; give each "
				"address once\n", a, b);
		return EXIT_USAGE;
	}
	cfg->nlisten++;
	return 0;
}

static int set_ready(struct sup_config *cfg, const char *mode)
{
	if (!strcmp(mode, "auto"))
		cfg->ready = SUP_READY_AUTO;
	else if (!strcmp(mode, "notify"))
		cfg->ready = SUP_READY_NOTIFY;
	else if (!strncmp(mode, "delay:", 6) && !sup_parse_duration(mode + 6, &cfg->ready_delay_ms))
		cfg->ready = SUP_READY_DELAY;
	else if (!strcmp(mode, "listen"))
		cfg->ready = SUP_READY_LISTEN;
	else
		return bad("--ready", mode, "want auto, notify, listen or delay:DUR");
	return 0;
}

static int set_bind_mode(struct sup_config *cfg, const char *mode)
{
	if (!strcmp(mode, "auto"))
		cfg->bind_mode = SUP_BIND_AUTO;
	else if (!strcmp(mode, "shim"))
		cfg->bind_mode = SUP_BIND_SHIM;
	else if (!strcmp(mode, "cgroup"))
		cfg->bind_mode = SUP_BIND_CGROUP;
	else
		return bad("--bind-mode", mode, "want shim, cgroup or auto");
	return 0;
}

static int add_takeover(struct sup_config *cfg, const char *arg)
{
	char *end;
	long pid = strtol(arg, &end, 10);
	pid_t *v;

	if (*end || end == arg || pid <= 1 || pid > 4194304)
		return bad("--takeover", arg, "want the pid of the running server (its master process)");
	v = realloc(cfg->takeover, (size_t)(cfg->ntakeover + 1) * sizeof(*v));
	if (!v)
		return out_of_memory();
	cfg->takeover = v;
	cfg->takeover[cfg->ntakeover++] = (pid_t)pid;
	return 0;
}

static int set_max_draining(struct sup_config *cfg, const char *arg)
{
	char *end;
	long n = strtol(arg, &end, 10);

	/* one slot of the table is the active generation's, one the new one's */
	if (end == arg || *end || n < 1 || n > SUP_MAX_DRAINING)
		return bad("--max-draining", arg, "want a number of generations from 1 to " BATON_STR(SUP_MAX_DRAINING));
	cfg->max_draining = (int)n;
	return 0;
}

static int set_metrics_listen(struct sup_config *cfg, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char why[320];

	if (sup_metrics_addr(addr, &ss, &sl, why, sizeof(why)))
		return bad("--metrics-listen", addr, why);
	cfg->metrics_listen = addr;
	return 0;
}

static int set_log_format(const char *arg)
{
	int fmt = blog_format_parse(arg);

	if (fmt < 0)
		return bad("--log-format", arg, "want plain, level or journal");
	blog_set_format((enum blog_format)fmt);
	return 0;
}

/* One option C with value ARG into CFG: 0 to go on, RUN_HELP, or an exit code. */
static int run_option(struct sup_config *cfg, int c, char *arg, int *cap, char **argv)
{
	switch (c) {
	case 'l':
		return add_listen(cfg, cap, arg);
	case 'n':
		if (!baton_name_valid(arg))
			return bad("name", arg, "use 1 to 63 of A-Z a-z 0-9 - _ . (not starting with .)");
		snprintf(cfg->name, sizeof(cfg->name), "%s", arg);
		return 0;
	case 'r':
		return set_ready(cfg, arg);
	case OPT_READY_TIMEOUT:
		if (sup_parse_duration(arg, &cfg->ready_timeout_ms) || !cfg->ready_timeout_ms)
			return bad("--ready-timeout", arg, "want a duration such as 30s");
		return 0;
	case OPT_STOP_SIGNAL:
		if (sup_parse_signal(arg, &cfg->stop_signal))
			return bad("--stop-signal", arg, "want a name such as TERM or QUIT, or a number");
		return 0;
	case OPT_GRACE:
		if (sup_parse_duration(arg, &cfg->grace_ms))
			return bad("--grace", arg, "want a duration such as 30s");
		return 0;
	case OPT_NO_PRELOAD:
		cfg->no_preload = true;
		return 0;
	case OPT_STOP_WHEN_IDLE:
		cfg->stop_when_idle = true;
		return 0;
	case OPT_NO_WATCH:
	case OPT_HANG:
		if (run_watch_option(cfg, c == OPT_HANG ? arg : NULL))
			return bad("--hang-threshold", arg, "want a duration from 1ms to 1h, such as 100ms");
		return 0;
	case OPT_ALLOW_FOREIGN:
		cfg->allow_foreign = true;
		return 0;
	case OPT_BIND_MODE:
		return set_bind_mode(cfg, arg);
	case OPT_TAKEOVER:
		return add_takeover(cfg, arg);
	case OPT_TAKEOVER_REUSEPORT:
		cfg->takeover_reuseport = true;
		return 0;
	case OPT_TAKEOVER_SIGNAL:
		if (sup_parse_signal(arg, &cfg->takeover_signal))
			return bad("--takeover-signal", arg, "want a name such as TERM or QUIT, or a number");
		return 0;
	case OPT_MAX_DRAINING:
		return set_max_draining(cfg, arg);
	case OPT_METRICS_LISTEN:
		return set_metrics_listen(cfg, arg);
	case OPT_LOG_FORMAT:
		return set_log_format(arg);
	case 'v':
		cfg->verbose++;
		return 0;
	case 'h':
		usage_run(stdout);
		return RUN_HELP;
	case ':':
		fprintf(stderr, "baton run: option \"%s\" needs a value (see baton run --help)\n", argv[optind - 1]);
		return EXIT_USAGE;
	default:
		fprintf(stderr, "baton run: unknown option \"%s\" (see baton run --help)\n", argv[optind - 1]);
		return EXIT_USAGE;
	}
}

/* The options that only make sense together, checked once all are read. */
static int check_combination(const struct sup_config *cfg, int argc)
{
	if (!cfg->nlisten) {
		fprintf(stderr, "baton run: give at least one --listen SPEC (see baton run --help)\n");
		return EXIT_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "baton run: no command to run: put it after \"--\" (see baton run --help)\n");
		return EXIT_USAGE;
	}
	if ((cfg->takeover_reuseport || cfg->takeover_signal) && !cfg->ntakeover) {
		fprintf(stderr, "baton run: --takeover-reuseport and --takeover-signal need --takeover PID\n");
		return EXIT_USAGE;
	}
	if (cfg->ready == SUP_READY_LISTEN && cfg->no_preload) {
		fprintf(stderr, "baton run: --ready listen needs the preload shim or cgroup mode: drop --no-preload\n");
		return EXIT_USAGE;
	}
	if (cfg->no_preload && cfg->bind_mode != SUP_BIND_AUTO) {
		fprintf(stderr, "baton run: --no-preload hands the command only its LISTEN_FDS; it cannot go with "
				"--bind-mode: drop one\n");
		return EXIT_USAGE;
	}
	return 0;
}

static int run_with(struct sup_config *cfg, int argc, char **argv)
{
	int c, r, cap = 0;

	sup_config_init(cfg);
	opterr = 0;
	/* '+': stop at CMD, whose own options are not ours */
	while ((c = getopt_long(argc, argv, "+:l:n:r:vh", run_opts, NULL)) != -1) {
		r = run_option(cfg, c, optarg, &cap, argv);
		if (r)
			return r == RUN_HELP ? 0 : r;
	}
	r = check_combination(cfg, argc);
	if (r)
		return r;
	cfg->argv = argv + optind;
	cfg->self_argv = cli_self_argv;
	return sup_run(cfg);
}

int cmd_run(int argc, char **argv)
{
	struct sup_config cfg;
	int r = run_with(&cfg, argc, argv);

	free(cfg.listen);
	free(cfg.flows);
	free(cfg.takeover);
	return r;
}
