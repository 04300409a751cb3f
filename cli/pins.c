/* SPDX-License-Identifier: BSD-2-Clause */
/* Looks at baton's pinned groups from outside (see pins.h): for baton steer
 * --release, which must not pull state from under a live process, and for
 * baton ls, which names the pin directories whose group is gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "pins.h"
#include "steer.h"

#define MAX_SOCKS 4096      /* bound on slots read; baton uses far fewer */

int pins_group(const char *dir, uint32_t *map_id, int *sockets)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info), k;
	char path[PATH_MAX];
	int fd, n = 0;

	if (snprintf(path, sizeof(path), "%s/" BATON_STEER_PIN_SOCKS, dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (access(path, F_OK))
		return -errno;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (info.type != BPF_MAP_TYPE_REUSEPORT_SOCKARRAY) {
		close(fd);
		return -ENOENT;
	}
	/* a closed socket leaves the map by itself: what is left is alive */
	for (k = 0; k < info.max_entries && k < MAX_SOCKS; k++) {
		uint64_t cookie = 0;

		if (bpf_map_lookup_elem(fd, &k, &cookie) == 0 && cookie)
			n++;
	}
	close(fd);
	*map_id = info.id;
	*sockets = n;
	return 0;
}

static bool fd_has_map(const char *pid, const char *fd, uint32_t map_id)
{
	char path[PATH_MAX], link[64], line[128];
	bool found = false;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/fd/%s", pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	if (strcmp(link, "anon_inode:bpf-map"))
		return false;
	snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", pid, fd);
	f = fopen(path, "re");
	if (!f)
		return false;
	for (int i = 0; i < 64 && fgets(line, sizeof(line), f); i++) {
		unsigned long id;

		if (sscanf(line, "map_id: %lu", &id) == 1) {
			found = id == map_id;
			break;
		}
	}
	fclose(f);
	return found;
}

pid_t pins_map_holder(uint32_t map_id, char *comm, size_t len)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;
	pid_t self = getpid(), found = 0;

	if (!proc)
		return 0;
	while (!found && (p = readdir(proc))) {
		char path[PATH_MAX];
		struct dirent *e;
		DIR *fds;
		long pid = strtol(p->d_name, NULL, 10);

		if (pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;	/* gone, or not ours to read */
		while ((e = readdir(fds)))
			if (e->d_name[0] != '.' && fd_has_map(p->d_name, e->d_name, map_id)) {
				found = (pid_t)pid;
				break;
			}
		closedir(fds);
	}
	closedir(proc);
	if (found && comm && len) {
		char path[64];
		FILE *f;

		snprintf(comm, len, "?");
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
		if ((f = fopen(path, "re"))) {
			if (fgets(comm, (int)len, f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
	}
	return found;
}

bool pins_prog_uses_map(uint32_t prog_id, uint32_t map_id)
{
	struct bpf_prog_info info;
	uint32_t ids[16], len = sizeof(info), i;
	bool uses = false;
	int fd = bpf_prog_get_fd_by_id(prog_id);

	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = 16;
	info.map_ids = (uint64_t)(uintptr_t)ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		for (i = 0; i < info.nr_map_ids && i < 16; i++)
			uses |= ids[i] == map_id;
	close(fd);
	return uses;
}
