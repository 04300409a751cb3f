/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton reload`, `baton status` and `baton stop`: clients of a running
 * supervisor's control socket. They send one request line and relay what
 * comes back: progress lines, then "ok ..." or "error ...". */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "util.h"
#include "sup.h"

/* Errors of `baton CMD`, through blog so that they carry a level. */
static void ctl_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctl_err(const char *cmd, const char *fmt, ...)
{
	char who[32];
	va_list ap;

	snprintf(who, sizeof(who), "baton %s", cmd);
	va_start(ap, fmt);
	vblog(BLOG_ERR, who, fmt, ap);
	va_end(ap);
}

/* The same words for every control command when there is no runtime
 * directory to look in (an unprivileged user outside a login session). */
static void no_runtime_dir(const char *cmd, int r)
{
	if (r == -ENOENT)
		ctl_err(cmd, "no runtime directory: set BATON_RUNTIME_DIR or XDG_RUNTIME_DIR (baton uses "
			     "$BATON_RUNTIME_DIR, else $XDG_RUNTIME_DIR/baton; /run/baton as root) to where "
			     "the supervisor keeps its control socket");
	else
		ctl_err(cmd, "no runtime directory: %s", strerror(-r));
}

/* With no NAME given: the one supervisor in the runtime directory. */
static int pick_name(const char *cmd, char *name, size_t len)
{
	char dir[4096], found[BATON_NAME_MAX + 1] = "", all[1024] = "";
	struct dirent *e;
	int n = 0, r = sup_runtime_dir(dir, sizeof(dir));
	size_t used = 0;
	DIR *d;

	if (r) {
		no_runtime_dir(cmd, r);
		return 1;
	}
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l <= 5 || strcmp(e->d_name + l - 5, ".sock") || l - 5 > BATON_NAME_MAX)
			continue;
		if (!n++)
			snprintf(found, sizeof(found), "%.*s", (int)(l - 5), e->d_name);
		/* a long list is cut with "..." rather than the line */
		if (used + l + 8 < sizeof(all))
			used += (size_t)snprintf(all + used, sizeof(all) - used, "%s%.*s", used ? ", " : "",
						 (int)(l - 5), e->d_name);
		else if (!strstr(all, "..."))
			used += (size_t)snprintf(all + used, sizeof(all) - used, ", ...");
	}
	if (d)
		closedir(d);
	if (n > 1) {
		ctl_err(cmd, "several supervisors run: %s; name one, e.g. baton %s %s", all, cmd, found);
		return EXIT_USAGE;
	}
	if (!n) {
		ctl_err(cmd, "no supervisor is running (nothing in %s)", dir);
		return 1;
	}
	snprintf(name, len, "%s", found);
	return 0;
}

/* Nobody answers at NAME's control socket. If its state file names
 * generations that still run, the supervisor died and they serve on: say
 * so, and how to resume them, rather than that nothing runs. */
static void no_answer(const char *cmd, const char *name, const char *sock)
{
	char path[4200], gens[512] = "";
	struct sup_peer p;
	size_t used = 0;

	if (sup_state_path(name, path, sizeof(path)) || sup_peer_read(path, &p) || p.running || !p.ngens) {
		ctl_err(cmd, "no supervisor named \"%s\" is running (no answer at %s)", name, sock);
		return;
	}
	for (int i = 0; i < p.ngens && used + 48 < sizeof(gens); i++)
		used += (size_t)snprintf(gens + used, sizeof(gens) - used, "%sgen %d (pid %d, %s)", i ? ", " : "",
					 p.gen[i].id, (int)p.gen[i].pid, p.gen[i].state);
	ctl_err(cmd, "no supervisor named \"%s\" is running (no answer at %s), but its generations still serve "
		     "%s: %s. Run the same baton run again (--name %s) and it resumes them",
		name, sock, p.listeners[0] ? p.listeners : "its listeners", gens, name);
}

static int connect_to(const char *cmd, const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, r;

	if ((r = sup_socket_path(name, "sock", sun.sun_path, sizeof(sun.sun_path)))) {
		if (r == -ENAMETOOLONG)
			ctl_err(cmd, "no control socket path for \"%s\": %s", name, strerror(-r));
		else
			no_runtime_dir(cmd, r);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			no_answer(cmd, name, sun.sun_path);
		else
			ctl_err(cmd, "cannot reach supervisor \"%s\" at %s: %s", name,
				sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The text status kept whole (a character may span two reads), then
 * printed escaped: it carries commands, health and exit reasons that the
 * generations' servers can choose. Several lines: newline and tab pass. */
static void text_payload_end(FILE **acc, char **text)
{
	if (!*acc)
		return;
	fclose(*acc);
	*acc = NULL;
	if (*text)
		baton_text_fputs(stdout, *text, BATON_ESC_LINES);
	free(*text);
	*text = NULL;
}

/* Sends REQUEST and relays the reply. Lines "step X" print X; the final
 * "ok X" or "error X" decides the exit code; after "ok" on a status
 * request the rest is the payload. What the supervisor relays is escaped
 * for the terminal (baton_text_escape); the JSON and metrics payloads are
 * escaped by their formats and pass as they are. */
static int exchange(const char *cmd, const char *name, const char *request, long long timeout_ms)
{
	char buf[8192], line[4096], safe[4 * sizeof(line) + 1], *text = NULL;
	const char *verb = request + strlen(SUP_PROTO) + 1;
	size_t have = 0, textlen = 0;
	int fd = connect_to(cmd, name), result = -1;
	bool payload = false, text_status = !strstr(verb, " json") && !strstr(verb, " metrics");
	FILE *acc = NULL, *out = stdout;
	long long end;

	if (fd < 0)
		return 1;
	end = baton_mono_ms() + timeout_ms;
	/* a supervisor that turned us away (busy) has said why before it hung
	 * up: read that rather than report a broken pipe */
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET) {
		ctl_err(cmd, "%s", strerror(errno));
		close(fd);
		return 1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left;
		ssize_t n;

		left = end - baton_mono_ms();
		if (left <= 0) {
			/* the supervisor carries on without a client: say so,
			 * and how to see the end, in one line */
			if (!strcmp(cmd, "reload") || !strcmp(cmd, "upgrade"))
				ctl_err(cmd, "stopped waiting after %lld ms (--timeout); the %s goes on in supervisor "
					     "\"%s\": see how it ends with baton status %s", timeout_ms, cmd, name, name);
			else if (!strcmp(cmd, "stop"))
				ctl_err(cmd, "stopped waiting after %lld ms (--timeout); supervisor \"%s\" goes on "
					     "stopping: baton status %s answers until it has stopped", timeout_ms, name,
					name);
			else
				ctl_err(cmd, "no answer from supervisor \"%s\" within %lld ms (--timeout); it may be "
					     "busy: try again", name, timeout_ms);
			close(fd);
			text_payload_end(&acc, &text);
			return EXIT_TIMEOUT;
		}
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (payload) {
			fwrite(buf, 1, (size_t)n, out);
			continue;
		}
		for (ssize_t i = 0; i < n; i++) {
			char *rest;

			if (buf[i] != '\n') {
				if (have < sizeof(line) - 1)
					line[have++] = buf[i];
				continue;
			}
			line[have] = '\0';
			have = 0;
			if (!strncmp(line, "step ", 5)) {
				printf("%s\n", baton_text_escape(safe, sizeof(safe), line + 5, BATON_ESC_LINES));
				fflush(stdout);
			} else if (!strncmp(line, "error", 5)) {
				rest = line + 5 + (line[5] == ' ');
				ctl_err(cmd, "%s", baton_text_escape(safe, sizeof(safe), rest, BATON_ESC_LINES));
				result = 1;
			} else if (!strncmp(line, "ok", 2)) {
				rest = line + 2 + (line[2] == ' ');
				if (*rest)
					printf("%s\n", baton_text_escape(safe, sizeof(safe), rest, BATON_ESC_LINES));
				result = 0;
				if (!strcmp(verb, "status\n") || !strncmp(verb, "status ", 7)) {
					payload = true;
					if (text_status && (acc = open_memstream(&text, &textlen)))
						out = acc;
					fwrite(buf + i + 1, 1, (size_t)(n - i - 1), out);
					break;
				}
			}
		}
	}
	close(fd);
	text_payload_end(&acc, &text);
	if (result < 0) {
		ctl_err(cmd, "the supervisor \"%s\" closed the connection without an answer", name);
		return 1;
	}
	return result;
}

/* --check http://HOST/PATH: HOST goes into the probe's Host: header and
 * PATH into its request line, so neither may hold a space or a control
 * character (a CR LF would add headers of the caller's making), and HOST
 * is a name, an address or [V6], with an optional :PORT. True (and the
 * error printed, the input escaped) when V is bad. */
static bool check_url_bad(const char *cmd, const char *v)
{
	char safe[4 * 512 + 1];
	const char *host = v + 7, *path, *p;

	baton_text_escape(safe, sizeof(safe), v, 0);
	if (strncmp(v, "http://", 7) || !(path = strchr(host, '/'))) {
		ctl_err(cmd, "bad --check \"%s\": want http://PATH, such as http:///healthz, or http://HOST/PATH "
			     "to send Host: HOST", safe);
		return true;
	}
	for (p = host; p < path; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("-._:[]", *p))) {
			ctl_err(cmd, "bad --check \"%s\": its HOST holds %s%02x at byte %zu; want a host name, an "
				     "address or [IPV6], with :PORT if needed, such as http://example.com/healthz",
				safe, *p == ' ' ? "a space 0x" : "the character 0x", (unsigned char)*p, (size_t)(p - v));
			return true;
		}
	for (p = path; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			ctl_err(cmd, "bad --check \"%s\": its PATH holds %s%02x at byte %zu; escape it as %%%02X",
				safe, *p == ' ' ? "a space 0x" : "the control character 0x", (unsigned char)*p,
				(size_t)(p - v), (unsigned char)*p);
			return true;
		}
	return false;
}

/* Appends " KEY=VALUE" to the request, VALUE with %XX for what would end
 * a token (a --check-cmd has spaces). -1 when it does not fit. */
static int add_opt(char *req, size_t len, const char *key, const char *value)
{
	size_t used = strlen(req);
	int n = snprintf(req + used, len - used, " %s=", key);

	if (n < 0 || (size_t)n >= len - used)
		return -1;
	used += (size_t)n;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (used + 4 >= len)
			return -1;
		if (*p <= ' ' || *p == '%' || *p >= 0x7f)
			used += (size_t)snprintf(req + used, len - used, "%%%02X", *p);
		else
			req[used++] = (char)*p;
		req[used] = '\0';
	}
	return 0;
}

/* Options of `baton reload` that stage it (--canary, --probation, ...). */
static int reload_opt(const char *cmd, int c, const char *v, char *opts, size_t len)
{
	static const char *const keys[] = { "canary", "step", "probation", "check", "check-cmd", "check-interval" };
	long long ms;
	char *end;

	if (strcmp(cmd, "reload")) {
		ctl_err(cmd, "unknown option \"--%s\" (see baton %s --help)", keys[c - 256], cmd);
		return EXIT_USAGE;
	}
	if (c == 256) {
		long p = strtol(v, &end, 10);

		if (end == v || (*end && strcmp(end, "%")) || p < 1 || p > 99) {
			ctl_err(cmd, "bad --canary \"%s\": want a share from 1%% to 99%%, such as 10%%", v);
			return EXIT_USAGE;
		}
	} else if ((c == 257 || c == 258 || c == 261) && (sup_parse_duration(v, &ms) || ms < 10)) {
		ctl_err(cmd, "bad --%s \"%s\": want a duration such as 30s", keys[c - 256], v);
		return EXIT_USAGE;
	} else if (c == 259 && check_url_bad(cmd, v)) {
		return EXIT_USAGE;
	}
	if (add_opt(opts, len, keys[c - 256], c == 256 ? (char[12]){ 0 } : v)) {
		ctl_err(cmd, "the reload options are too long (a request holds at most %d bytes): shorten --check-cmd",
			SUP_REQUEST_MAX);
		return EXIT_USAGE;
	}
	if (c == 256)	/* the number alone */
		snprintf(opts + strlen(opts), len - strlen(opts), "%ld", strtol(v, NULL, 10));
	return 0;
}

/* `baton reload ... [-- CMD ARG...]`: the request with the new command and
 * environment changes, percent-escaped one item a line (NULL: none given,
 * a plain reload). ENV holds "env K=V" and "unset K" in the given order. */
static char *reload_items(char **env, int nenv, char **cmd, int ncmd, const char *ropts)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!nenv && !ncmd)
		return NULL;
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fprintf(f, "%s reload-with %d%s\n", SUP_PROTO, nenv + ncmd, ropts);	/* staged: the options follow N */
	for (int i = 0; i < ncmd; i++) {
		fputs("arg ", f);
		sup_escape(f, cmd[i]);
		fputc('\n', f);
	}
	for (int i = 0; i < nenv; i++) {
		fputs(env[i][0] == 'e' ? "env " : "unset ", f);
		sup_escape(f, env[i] + 2);
		fputc('\n', f);
	}
	fclose(f);
	return text;
}

/* A reload's --env KEY=VALUE or --unset-env KEY: 0, or said why not. */
static int check_env(const char *opt, const char *val, bool set)
{
	size_t kl = strcspn(val, "=");
	const char *why = sup_item_check(val);

	if (why) {
		char *shown = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&shown, &len);

		/* shown escaped: the raw byte would act on the terminal */
		if (f) {
			sup_escape(f, val);
			fclose(f);
		}
		ctl_err("reload", "%s \"%s\" holds %s; only printable text, tab and newline can be passed", opt,
			shown ? shown : "", why);
		free(shown);
		return EXIT_USAGE;
	}
	if (!kl || kl > 255 || (set && !val[kl]) || (!set && val[kl])) {
		ctl_err("reload", "bad %s \"%s\": want %s", opt, val,
			set ? "KEY=VALUE (KEY= sets it empty; --unset-env KEY removes it)" : "KEY, without =");
		return EXIT_USAGE;
	}
	return 0;
}

static const struct option ctl_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "metrics", no_argument, NULL, 'm' },
	{ "timeout", required_argument, NULL, 't' },
	{ "env", required_argument, NULL, 'e' },
	{ "unset-env", required_argument, NULL, 'u' },
	{ "help", no_argument, NULL, 'h' },
	{ "canary", required_argument, NULL, 256 },
	{ "step", required_argument, NULL, 257 },
	{ "probation", required_argument, NULL, 258 },
	{ "check", required_argument, NULL, 259 },
	{ "check-cmd", required_argument, NULL, 260 },
	{ "check-interval", required_argument, NULL, 261 },
	{ 0 },
};

/* What one control command's command line asks for. */
struct ctl_req {
	const char *cmd;
	bool reload, json, metrics;
	long long timeout_ms;
	/* " key=value" of a staged reload; room left for the rest of the line */
	char ropts[SUP_REQUEST_MAX - 40];
	char **env;			/* "e:KEY=VALUE" or "u:KEY", reload only */
	int nenv;
	char **cmdv;			/* reload only: the command after "--" */
	int ncmd;
};

/* ctl_option's answer for --help: stop, exit 0 */
#define CTL_HELP (-1)

/* `baton reload [OPTION]... -- CMD [ARG]...`: the index of the "--" that
 * starts the command (ARGC without one), or -1 once said why it is bad. */
static int reload_command(struct ctl_req *q, int argc, char **argv)
{
	int end = argc;

	/* the command starts after the first "--" that is not an option's value */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			end = i;
			break;
		}
		if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--timeout") || !strcmp(argv[i], "-e") ||
		    !strcmp(argv[i], "--env") || !strcmp(argv[i], "--unset-env") || !strcmp(argv[i], "--canary") ||
		    !strcmp(argv[i], "--step") || !strcmp(argv[i], "--probation") || !strcmp(argv[i], "--check") ||
		    !strcmp(argv[i], "--check-cmd") || !strcmp(argv[i], "--check-interval"))
			i++;
	}
	if (end == argc)
		return end;
	q->cmdv = argv + end + 1;
	q->ncmd = argc - end - 1;
	if (!q->ncmd) {
		ctl_err("reload", "nothing after \"--\": give the command to run, or leave "
				"out \"--\" to keep the current one");
		return -1;
	}
	for (int i = 0; i < q->ncmd; i++) {
		const char *why = sup_item_check(q->cmdv[i]);

		if (why) {
			ctl_err("reload", "argument %d of the command holds %s; only printable text, tab "
					  "and newline can be passed", i + 1, why);
			return -1;
		}
	}
	if (!q->cmdv[0][0]) {
		ctl_err("reload", "the command's name is empty");
		return -1;
	}
	return end;
}

static int unknown_option(const char *cmd, char **argv)
{
	ctl_err(cmd, "unknown option \"%s\" (see baton %s --help)", argv[optind - 1], cmd);
	return EXIT_USAGE;
}

/* One option C with value ARG into Q: 0 to go on, CTL_HELP, or an exit code. */
static int ctl_option(struct ctl_req *q, int c, const char *arg, char **argv)
{
	int r;

	if (c >= 256 && c <= 261)
		return reload_opt(q->cmd, c, arg, q->ropts, sizeof(q->ropts));
	switch (c) {
	case 'j':
	case 'm':
		if (strcmp(q->cmd, "status"))
			return unknown_option(q->cmd, argv);
		if (c == 'j')
			q->json = true;
		else
			q->metrics = true;
		return 0;
	case 'e':
	case 'u':
		if (!q->reload)
			return unknown_option(q->cmd, argv);
		if ((r = check_env(c == 'e' ? "--env" : "--unset-env", arg, c == 'e')))
			return r;
		/* "e:" or "u:" before the text: which item it makes */
		q->env[q->nenv] = malloc(strlen(arg) + 3);
		if (q->env[q->nenv])
			sprintf(q->env[q->nenv++], "%c:%s", c, arg);
		return 0;
	case 't':
		if (sup_parse_duration(arg, &q->timeout_ms) || !q->timeout_ms) {
			ctl_err(q->cmd, "bad --timeout \"%s\" (want a duration such as 60s)", arg);
			return EXIT_USAGE;
		}
		return 0;
	case 'h':
		return CTL_HELP;
	case ':':
		ctl_err(q->cmd, "option \"%s\" needs a value", argv[optind - 1]);
		return EXIT_USAGE;
	default:
		return unknown_option(q->cmd, argv);
	}
}

/* Once the options are read: the supervisor's name, the request, its answer. */
static int ctl_send(const struct ctl_req *q, int argc, char **argv)
{
	char name[BATON_NAME_MAX + 1], req[SUP_REQUEST_MAX];
	const char *cmd = q->cmd;
	char *big = NULL;
	int r = EXIT_USAGE;

	if (q->json && q->metrics) {
		ctl_err("status", "give --json or --metrics, not both");
		return r;
	}
	if (argc - optind > 1) {
		ctl_err(cmd, "unexpected argument \"%s\" (see baton %s --help)", argv[optind + 1], cmd);
		return r;
	}
	if (optind < argc) {
		if (!baton_name_valid(argv[optind])) {
			ctl_err(cmd, "bad name \"%s\" (1 to 63 of A-Z a-z 0-9 - _ .)", argv[optind]);
			return r;
		}
		snprintf(name, sizeof(name), "%s", argv[optind]);
	} else if ((r = pick_name(cmd, name, sizeof(name)))) {
		return r;
	}
	if (q->nenv + q->ncmd > SUP_ITEMS_MAX) {
		ctl_err("reload", "%d arguments and environment changes: at most %d fit in one reload",
			q->nenv + q->ncmd, SUP_ITEMS_MAX);
		return EXIT_USAGE;
	}
	big = q->reload ? reload_items(q->env, q->nenv, q->cmdv, q->ncmd, q->ropts) : NULL;
	if (q->reload && (q->nenv || q->ncmd) && !big) {
		ctl_err("reload", "out of memory");
		return 1;
	}
	if (big && strlen(big) > SUP_REQUEST_BIG) {
		ctl_err("reload", "the command and environment take %zu bytes escaped; at most %d fit in a request",
			strlen(big), SUP_REQUEST_BIG);
		free(big);
		return EXIT_USAGE;
	}
	snprintf(req, sizeof(req), "%s %s%s%s\n", SUP_PROTO, cmd, q->json ? " json" : q->metrics ? " metrics" : "",
		 q->ropts);
	r = exchange(cmd, name, big ? big : req, q->timeout_ms);
	free(big);
	return r;
}

static int ctl_main(const char *cmd, int argc, char **argv, void (*usage)(FILE *))
{
	struct ctl_req q = {
		.cmd = cmd,
		.reload = !strcmp(cmd, "reload"),
		.timeout_ms = strcmp(cmd, "status") ? 600000 : 10000,
	};
	int c, r = 0, end = argc;

	if (q.reload) {
		end = reload_command(&q, argc, argv);
		if (end < 0)
			return EXIT_USAGE;
		q.env = calloc((size_t)end + 1, sizeof(*q.env));
		if (!q.env)
			return 1;
	}
	argc = end;
	opterr = 0;
	while (!r && (c = getopt_long(argc, argv, ":jmt:e:u:h", ctl_opts, NULL)) != -1)
		r = ctl_option(&q, c, optarg, argv);
	if (r == CTL_HELP) {
		usage(stdout);
		r = 0;
	} else if (!r) {
		r = ctl_send(&q, argc, argv);
	}
	for (int i = 0; i < q.nenv; i++)
		free(q.env[i]);
	free(q.env);
	return r;
}

void usage_reload(FILE *out)
{
	fprintf(out, "usage: baton reload [NAME] [--canary P%%] [--step DUR] [--probation DUR]\n"
		     "                    [--check http://PATH | --check-cmd CMD] [--check-interval DUR]\n"
		     "                    [--env K=V]... [--unset-env K]... [--timeout DUR]\n"
		     "                    [-- CMD [ARG]...]\n\n"
		     "Starts the next generation of supervisor NAME (the only one running if not\n"
		     "given), prints each step with its time, and exits 0 once the new generation\n"
		     "serves; non-zero with the reason if it was rolled back (it exited or was not\n"
		     "ready in time), and the old generation serves on.\n\n"
		     "With -- CMD, the new generation and every later one run CMD instead of the\n"
		     "command before; --env and --unset-env change their environment the same way.\n"
		     "Both take effect only once the new generation serves: a reload that rolls\n"
		     "back leaves the command and environment as they were.\n\n"
		     "  -e, --env K=V      set K in the environment of this and later generations\n"
		     "                     (K= sets it empty)\n"
		     "      --unset-env K  remove K from it (also when baton run's own has it)\n"
		     "      --canary P%%        once ready, the new generation takes P%% of new\n"
		     "                         connections and the old one the rest; exits 0 then:\n"
		     "                         baton promote NAME or baton rollback NAME decides\n"
		     "      --step DUR         with --canary: add P%% every DUR up to 100%%, then\n"
		     "                         promote; waits for the outcome\n"
		     "      --probation DUR    switch fully, but keep the old generation alive\n"
		     "                         without traffic for DUR: if the new one exits,\n"
		     "                         freezes, hangs or fails its check, every new\n"
		     "                         connection flips back to the old one at once\n"
		     "      --check http://PATH  probe the new generation itself (not whichever\n"
		     "                         member the hash picks) with GET PATH through the\n"
		     "                         real port; an answer other than 2xx/3xx rolls back\n"
		     "      --check-cmd CMD    the same with a command (sh -c): exit 0 passes; it\n"
		     "                         gets BATON_CHECK_HOST, _PORT and _PORTS (the source\n"
		     "                         ports that reach the new generation, e.g. for\n"
		     "                         curl --local-port \"$BATON_CHECK_PORTS\")\n"
		     "      --check-interval DUR  between probes (default 1s; also their timeout)\n"
		     "  -t, --timeout DUR  stop waiting after DUR (default 10m): exit 3, and the\n"
		     "                     reload goes on (see it end with baton status NAME)\n"
		     "  -h, --help         this text\n");
}

void usage_promote(FILE *out)
{
	fprintf(out, "usage: baton promote [NAME] [--timeout DUR]\n\n"
		     "Completes the staged reload of supervisor NAME: a canary takes every new\n"
		     "connection and the old generation is stopped and drained; a probation ends\n"
		     "now and the old generation stops.\n\n"
		     "  -t, --timeout DUR  stop waiting after DUR (default 10m): exit 3\n"
		     "  -h, --help         this text\n");
}

void usage_rollback(FILE *out)
{
	fprintf(out, "usage: baton rollback [NAME] [--timeout DUR]\n\n"
		     "Undoes the staged reload of supervisor NAME: every new connection goes to\n"
		     "the old generation again (one policy update, no process started), and the\n"
		     "new one is fenced (its queue moves to the old one) and stopped.\n\n"
		     "  -t, --timeout DUR  stop waiting after DUR (default 10m): exit 3\n"
		     "  -h, --help         this text\n");
}

int cmd_promote(int argc, char **argv)
{
	return ctl_main("promote", argc, argv, usage_promote);
}

int cmd_rollback(int argc, char **argv)
{
	return ctl_main("rollback", argc, argv, usage_rollback);
}

void usage_status(FILE *out)
{
	fprintf(out, "usage: baton status [NAME] [--json | --metrics]\n\n"
		     "Shows supervisor NAME: steering mode, listeners, and each generation with its\n"
		     "pid, state (starting, ready, active, draining, exited), start time and each\n"
		     "member's queue and backlog; reloads done and failed, restarts.\n\n"
		     "  -j, --json     one JSON document (fields in baton(1)), with each generation's\n"
		     "                 connections steered to it and migrated to and from it\n"
		     "  -m, --metrics  the same in the Prometheus text format (baton_* metrics)\n"
		     "  -t, --timeout DUR  stop waiting after DUR (default 10s): exit 3\n"
		     "  -h, --help     this text\n");
}

void usage_stop(FILE *out)
{
	fprintf(out, "usage: baton stop [NAME] [--timeout DUR]\n\n"
		     "Stops supervisor NAME gracefully: every generation gets its stop signal, then\n"
		     "SIGKILL after the grace time; exits 0 once the supervisor has stopped.\n\n"
		     "  -t, --timeout DUR  stop waiting after DUR (default 10m): exit 3, and the\n"
		     "                     supervisor goes on stopping\n"
		     "  -h, --help         this text\n");
}

int cmd_reload(int argc, char **argv)
{
	return ctl_main("reload", argc, argv, usage_reload);
}

int cmd_status(int argc, char **argv)
{
	return ctl_main("status", argc, argv, usage_status);
}

int cmd_stop(int argc, char **argv)
{
	return ctl_main("stop", argc, argv, usage_stop);
}

void usage_upgrade(FILE *out)
{
	fprintf(out, "usage: baton upgrade [NAME] [--timeout DUR]\n\n"
		     "Re-executes supervisor NAME's binary in place (the file it was started from, as\n"
		     "it is now: a new version after a package upgrade) as the same pid. The\n"
		     "generations keep serving and stay its children; the state crosses the exec.\n"
		     "The new binary is tried first (--version): one that does not start is refused\n"
		     "with the reason, and the running supervisor goes on. SIGUSR2 to the supervisor\n"
		     "does the same. Exits 0 once the new binary supervises.\n\n"
		     "  -t, --timeout DUR  stop waiting after DUR (default 10m): exit 3, and the\n"
		     "                     upgrade goes on (see it end with baton status NAME)\n"
		     "  -h, --help         this text\n");
}

int cmd_upgrade(int argc, char **argv)
{
	return ctl_main("upgrade", argc, argv, usage_upgrade);
}
