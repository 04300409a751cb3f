/* SPDX-License-Identifier: BSD-2-Clause */
/* A tiny server for the shim's tests, built without sanitizers so that
 * libbaton-preload.so can be preloaded into it: binds HOST PORT the way an
 * unmodified server does, listens, and prints what it got (its fd, whether
 * that is now the same socket as fd 3, the address, flags). With
 * --children it then runs itself as a child, through system() and through
 * fork + exec, with --scan: which listening sockets a program the server
 * runs inherits. --inherit: the server's socket without SOCK_CLOEXEC. */
#include <dirent.h>
#include <limits.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prints the fd numbers of every listening socket this process has. */
static int scan(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return perror("/proc/self/fd"), 1;
	printf("listening:");
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), on = 0;
		socklen_t l = sizeof(on);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		if (!getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l) && on) {
			printf(" %d", fd);
			n++;
		}
	}
	closedir(d);
	printf(" (%d)\n", n);
	return 0;
}

static void children(void)
{
	char self[PATH_MAX], cmd[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t pid;

	if (n <= 0)
		return;
	self[n] = '\0';
	fflush(stdout);
	printf("system() ");
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "exec '%s' --scan", self);
	if (system(cmd) != 0)
		printf("system() failed\n");
	printf("exec ");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execl(self, self, "--scan", (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	struct stat a, b;
	char host[64];
	int fd, one = 1, v6, inherit = 0, kids = 0;

	if (argc == 2 && !strcmp(argv[1], "--scan"))
		return scan();
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--inherit"))
			inherit = 1;
		else if (!strcmp(argv[i], "--children"))
			kids = 1;
		else
			argc = 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: preload-probe HOST PORT [--inherit] [--children] | --scan\n");
		return 2;
	}
	v6 = strchr(argv[1], ':') != NULL;
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | (inherit ? 0 : SOCK_CLOEXEC), 0);
	if (fd < 0)
		return perror("socket"), 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(argv[2]));
		inet_pton(AF_INET6, argv[1], &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)atoi(argv[2]));
		inet_pton(AF_INET, argv[1], &s4->sin_addr);
		len = sizeof(*s4);
	}
	if (bind(fd, (struct sockaddr *)&ss, len))
		return perror("bind"), 1;
	if (listen(fd, 5))
		return perror("listen"), 1;
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
	fstat(fd, &a);
	printf("fd=%d same_as_3=%s addr=%s nonblock=%d cloexec=%d\n", fd,
	       fd != 3 && !fstat(3, &b) && a.st_ino == b.st_ino ? "yes" : "no", host, !!(fcntl(fd, F_GETFL) & O_NONBLOCK),
	       !!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
	if (kids)
		children();
	return 0;
}
