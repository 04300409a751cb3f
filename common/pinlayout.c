/* SPDX-License-Identifier: BSD-2-Clause */
/* Pin directories in bpffs (see pinlayout.h): the names are built here and
 * nowhere else, so run, steer and ls agree on BATON_BPFFS. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "pinlayout.h"

const char *pin_base(void)
{
	const char *base = getenv("BATON_BPFFS");

	return base && *base ? base : PIN_BASE_DEFAULT;
}

static int fits(int n, size_t len)
{
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pin_root(char *buf, size_t len)
{
	return fits(snprintf(buf, len, "%s/baton", pin_base()), len);
}

int pin_steer_dir(char *buf, size_t len, int family, const void *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN], root[4096];
	int r;

	if (!inet_ntop(family, addr, a, sizeof(a)))
		return -errno;
	/* bpffs refuses names with dots */
	for (char *c = a; *c; c++)
		if (*c == '.' || *c == ':')
			*c = '_';
	if ((r = pin_root(root, sizeof(root))))
		return r;
	return fits(snprintf(buf, len, "%s/steer-%s-%u", root, a, port), len);
}

int pin_run_dir(char *buf, size_t len, const char *name)
{
	char root[4096];
	int r, n;

	if ((r = pin_root(root, sizeof(root))))
		return r;
	n = snprintf(buf, len, "%s/run-", root);
	if ((r = fits(n, len)))
		return r;
	for (const char *c = name; *c; c++) {
		if ((size_t)n + 1 >= len)
			return -ENAMETOOLONG;
		buf[n++] = *c == '.' ? '_' : *c;	/* bpffs refuses names with dots */
	}
	buf[n] = '\0';
	return 0;
}

int pin_listener_dir(char *buf, size_t len, const char *run_dir, int l)
{
	return fits(snprintf(buf, len, "%s/l%d", run_dir, l), len);
}

int pin_bpffs_mount(const char *base)
{
	struct statfs sfs;

	if (statfs(base, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC)
		return 0;
	return mount("bpf", base, "bpf", 0, "mode=0700") ? -errno : 0;
}
