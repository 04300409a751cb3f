/* SPDX-License-Identifier: BSD-2-Clause */
/* Keeps baton ls's iterator programs loaded between runs: pinned in bpffs at
 * BATON_BPFFS (default /sys/fs/bpf)/baton-ls/KEY/, KEY a hash of the object
 * they came from. Loading them costs libbpf a walk of the kernel's BTF per
 * relocated type, most of baton ls at 10,000 listeners; a pinned program is
 * one bpf() call away. bpffs lives until reboot, as the kernel they were
 * relocated for does. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "internal.h"

static const char *const pin_names[BATON_ITER_PROGS] = { "tcp", "udp", "owners" };
static const char *const prog_names[BATON_ITER_PROGS] = { "tcp_listeners", "udp_sockets", "socket_owners" };

/* BASE/baton-ls, if BASE is bpffs; -errno otherwise (no cache then). */
static int pin_root(char *root, size_t len)
{
	const char *base = getenv("BATON_BPFFS");
	struct statfs sfs;

	if (!base || !*base)
		base = "/sys/fs/bpf";
	if (statfs(base, &sfs))
		return -errno;
	if (sfs.f_type != BPF_FS_MAGIC)
		return -ENOENT;
	if (snprintf(root, len, "%s/baton-ls", base) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Only pins this user made and nobody else may replace are loaded. */
static bool trusted(const char *path)
{
	struct stat st;

	return !lstat(path, &st) && st.st_uid == geteuid() && !(st.st_mode & 022);
}

static void close_all(int fd[BATON_ITER_PROGS])
{
	for (int i = 0; i < BATON_ITER_PROGS; i++) {
		if (fd[i] >= 0)
			close(fd[i]);
		fd[i] = -1;
	}
}

int baton_iterpin_open(const char *key, int fd[BATON_ITER_PROGS])
{
	char root[PATH_MAX], path[PATH_MAX];
	int r = pin_root(root, sizeof(root));

	for (int i = 0; i < BATON_ITER_PROGS; i++)
		fd[i] = -1;
	if (r)
		return r;
	if (snprintf(path, sizeof(path), "%s/%s", root, key) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (!trusted(root) || !trusted(path))
		return -ENOENT;
	for (int i = 0; i < BATON_ITER_PROGS; i++) {
		struct bpf_prog_info info = { 0 };
		uint32_t len = sizeof(info);

		if (snprintf(path, sizeof(path), "%s/%s/%s", root, key, pin_names[i]) >= (int)sizeof(path))
			goto fail;
		if (!trusted(path)) {
			if (i == 2)
				break;	/* no owners program: this kernel refused it */
			goto fail;
		}
		fd[i] = bpf_obj_get(path);
		if (fd[i] < 0 || bpf_obj_get_info_by_fd(fd[i], &info, &len) ||
		    info.type != BPF_PROG_TYPE_TRACING || strcmp(info.name, prog_names[i]))
			goto fail;
		if (fcntl(fd[i], F_SETFD, FD_CLOEXEC))
			goto fail;
	}
	return 0;
fail:
	close_all(fd);
	return -ENOENT;
}

/* Removes DIR's pins and DIR. */
static void remove_dir(const char *dir)
{
	char path[PATH_MAX];

	for (int i = 0; i < BATON_ITER_PROGS; i++)
		if (snprintf(path, sizeof(path), "%s/%s", dir, pin_names[i]) < (int)sizeof(path))
			unlink(path);
	rmdir(dir);
}

/* Pins of another baton version (another KEY): nothing loads them again. */
static void remove_others(const char *root, const char *key)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(root);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, key) || !strncmp(e->d_name, "tmp-", 4))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", root, e->d_name) < (int)sizeof(path))
			remove_dir(path);
	}
	closedir(d);
}

void baton_iterpin_save(const char *key, const int fd[BATON_ITER_PROGS])
{
	char root[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX], path[PATH_MAX];

	if (pin_root(root, sizeof(root)))
		return;
	if (mkdir(root, 0700) && errno != EEXIST)
		return;
	if (!trusted(root))
		return;
	/* filled aside and renamed in whole: a reader sees all of it or none
	 * (bpffs takes no dots in names) */
	if (snprintf(tmp, sizeof(tmp), "%s/tmp-%d", root, (int)getpid()) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", root, key) >= (int)sizeof(dst))
		return;
	remove_dir(tmp);
	if (mkdir(tmp, 0700))
		return;
	for (int i = 0; i < BATON_ITER_PROGS; i++) {
		if (fd[i] < 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", tmp, pin_names[i]) >= (int)sizeof(path) ||
		    bpf_obj_pin(fd[i], path))
			goto undo;
	}
	/* pins found but not trusted (see baton_iterpin_open) are replaced */
	if (!trusted(dst))
		remove_dir(dst);
	if (rename(tmp, dst))
		goto undo;	/* another baton ls was first: theirs serves */
	remove_others(root, key);
	return;
undo:
	remove_dir(tmp);
}
