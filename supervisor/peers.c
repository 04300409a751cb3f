/* SPDX-License-Identifier: BSD-2-Clause */
/* Other supervisors, as their state files in the runtime directory tell: who
 * holds a socket on our address (so that a second `baton run` names the
 * first), and whether a supervisor that no longer answers left generations
 * that still serve (so that `baton status` says how to resume them). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sup.h"
#include "util.h"

/* PID runs and is a baton (its comm), not a process that reused the pid. */
static bool is_baton(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (!(f = fopen(path, "re")))
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return !strcmp(comm, "baton");
}

int sup_peer_read(const char *path, struct sup_peer *p)
{
	char line[1024];
	FILE *f = fopen(path, "re");
	int n = 0;

	memset(p, 0, sizeof(*p));
	if (!f)
		return -errno;
	/* bounded: a state file is a few hundred lines at most */
	while (n++ < 100000 && fgets(line, sizeof(line), f)) {
		unsigned long long ticks, ino;
		char spec[512], state[16];
		int id, gid, l, slot, pid;

		if (sscanf(line, "name %64s", p->name) == 1)
			continue;
		if (sscanf(line, "pid %d", &pid) == 1) {
			p->pid = pid;
		} else if (sscanf(line, "listener %d %*u %511s", &l, spec) == 2) {
			size_t used = strlen(p->listeners);

			if (used + strlen(spec) + 3 < sizeof(p->listeners))
				snprintf(p->listeners + used, sizeof(p->listeners) - used, "%s%s", used ? ", " : "", spec);
		} else if (sscanf(line, "gen %d %d %llu %15s", &id, &pid, &ticks, state) == 4 &&
			   p->ngens < SUP_PEER_GENS) {
			struct baton_proc_stat st;

			/* the same process only if its start time matches */
			if (pid > 0 && !baton_proc_stat(pid, -1, &st) && st.start == ticks && st.state != 'Z') {
				p->gen[p->ngens].id = id;
				p->gen[p->ngens].pid = pid;
				snprintf(p->gen[p->ngens].state, sizeof(p->gen[0].state), "%s", state);
				p->ngens++;
			}
		} else if (sscanf(line, "member %d %d %d %llu", &gid, &l, &slot, &ino) == 4 &&
			   p->nmembers < SUP_PEER_MEMBERS) {
			p->member_gen[p->nmembers] = gid;
			p->member_ino[p->nmembers++] = ino;
		}
	}
	fclose(f);
	if (!p->name[0])
		return -EINVAL;
	p->running = is_baton(p->pid);
	return 0;
}

int sup_peer_find(unsigned long long ino, const pid_t *pids, int npids, const char *self, struct sup_peer *p)
{
	char dir[4096], path[4400];
	struct dirent *e;
	int r = sup_runtime_dir(dir, sizeof(dir));
	DIR *d;

	if (r)
		return r;
	if (!(d = opendir(dir)))
		return -errno;
	r = -ENOENT;
	while (r && (e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len <= 6 || strcmp(e->d_name + len - 6, ".state"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (sup_peer_read(path, p) || (self && !strcmp(p->name, self)))
			continue;
		for (int i = 0; r && i < p->nmembers; i++)
			if (ino && p->member_ino[i] == ino)
				r = 0;
		for (int k = 0; r && k < npids; k++) {
			if (p->running && pids[k] == p->pid)
				r = 0;
			for (int i = 0; r && i < p->ngens; i++)
				if (pids[k] == p->gen[i].pid)
					r = 0;
		}
	}
	closedir(d);
	return r;
}
