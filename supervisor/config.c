/* SPDX-License-Identifier: BSD-2-Clause */
/* The parts of the supervisor that the CLI shares: config defaults, the
 * duration and signal parsers, and where control sockets live. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sup.h"
void sup_config_init(struct sup_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ready = SUP_READY_AUTO;
	cfg->ready_delay_ms = 2000;
	cfg->ready_timeout_ms = 30000;
	cfg->grace_ms = 30000;
	cfg->stop_signal = SIGTERM;
	/* replacing a generation costs a whole start: a hang floor of 1 s keeps
	 * a healthy server that a busy machine delays for a few hundred ms (a
	 * python http.server on two loaded cores) from being taken for hung,
	 * while a frozen one is still caught at once by its stop signal */
	cfg->hang_ms = 1000;
}

int sup_parse_duration(const char *text, long long *ms)
{
	char *end;
	double v;

	if (!text || !*text || *text == '-' || *text == '+')
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || v < 0)
		return -EINVAL;
	if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		v *= 60000;
	else if (strcmp(end, "ms"))
		return -EINVAL;
	if (v > 86400000.0 * 7)
		return -ERANGE;
	*ms = (long long)(v + 0.5);
	return 0;
}

int sup_parse_signal(const char *text, int *sig)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "WINCH", SIGWINCH }, { "KILL", SIGKILL },
	};
	const char *t = text;
	size_t i;
	char *end;
	long v;

	if (!text || !*text)
		return -EINVAL;
	if (!strncmp(t, "SIG", 3))
		t += 3;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(t, names[i].name)) {
			*sig = names[i].sig;
			return 0;
		}
	v = strtol(text, &end, 10);
	if (*end || v <= 0 || v >= NSIG)
		return -EINVAL;
	*sig = (int)v;
	return 0;
}

int sup_runtime_dir(char *buf, size_t len)
{
	const char *env = getenv("BATON_RUNTIME_DIR"), *xdg;
	int n;

	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/baton");
	else if ((xdg = getenv("XDG_RUNTIME_DIR")) && *xdg)
		n = snprintf(buf, len, "%s/baton", xdg);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int sup_socket_path(const char *name, const char *suffix, char *buf, size_t len)
{
	char dir[4096];
	int r = sup_runtime_dir(dir, sizeof(dir)), n;

	if (r)
		return r;
	n = snprintf(buf, len, "%s/%s.%s", dir, name, suffix);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}


int sup_state_path(const char *name, char *buf, size_t len)
{
	return sup_socket_path(name, "state", buf, len);
}
