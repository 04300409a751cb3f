/* SPDX-License-Identifier: BSD-2-Clause */
/* Generations of this supervisor that no state file names (it could not be
 * written, or is stale): found on the listeners by their environment and
 * adopted, the newest serving. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "feature.h"
#include "foreign.h"
#include "gen.h"
#include "resume.h"
#include "state.h"
#include "stateparse.h"
#include "util.h"

/* ---- generations without a state ------------------------------------------ */

/* Is PID a process of a generation of this supervisor? Its uids are ours
 * (all four: a process that made itself undumpable shows /proc/PID as
 * root's), and the environment it was started with names this supervisor:
 * BATON_NAME and NOTIFY_SOCKET, the latter a path in this runtime
 * directory. Returns its BATON_GENERATION, or -1. */
static int orphan_gen(const struct sup *s, pid_t pid)
{
	char path[64], buf[65536], want_name[BATON_NAME_MAX + 16], want_notify[160];
	unsigned uid[4];
	bool name = false, notify = false;
	int fd, gen = -1;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	uid[0] = uid[1] = uid[2] = uid[3] = (unsigned)-1;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "Uid: %u %u %u %u", &uid[0], &uid[1], &uid[2], &uid[3]) == 4)
			break;
	fclose(f);
	for (int i = 0; i < 4; i++)
		if (uid[i] != (unsigned)geteuid())
			return -1;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	snprintf(want_name, sizeof(want_name), "BATON_NAME=%s", s->name);
	snprintf(want_notify, sizeof(want_notify), "NOTIFY_SOCKET=%s", s->notify_path);
	for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
		name |= !strcmp(p, want_name);
		notify |= !strcmp(p, want_notify);
		if (!strncmp(p, "BATON_GENERATION=", 17))
			gen = atoi(p + 17);
	}
	return name && notify && gen > 0 ? gen : -1;
}

/* The generation's own process: the topmost of PID and its parents that
 * carries the same generation's environment (workers inherit it). */
static pid_t orphan_top(const struct sup *s, pid_t pid, int id)
{
	for (int hops = 0; hops < 8; hops++) {
		struct baton_proc_stat ps;

		if (baton_proc_stat(pid, -1, &ps) || ps.ppid <= 1 || ps.ppid == getpid() ||
		    orphan_gen(s, ps.ppid) != id)
			break;
		pid = ps.ppid;
	}
	return pid;
}

struct orphan {
	int id;
	pid_t pid;
	unsigned long long ino[SUP_MAX_LISTENERS > 64 ? 64 : SUP_MAX_LISTENERS];
};

/* Generations of this supervisor serving on the listeners that no other
 * supervisor knows (up to MAX_GENS - 1, with their sockets): the count
 * put in ORPH, or -1 when the sockets cannot be listed. */
static int orphans_find(struct sup *s, struct orphan *orph)
{
	struct baton_collect_opts o = { .sz = sizeof(o), .log = lib_log, .log_ctx = s };
	struct baton_sock *socks = NULL;
	int norph = 0, l;
	size_t n = 0, i;

	if (s->nl > (int)(sizeof(orph[0].ino) / sizeof(orph[0].ino[0])) || baton_socks_collect(&o, &socks, &n))
		return -1;
	for (l = 0; l < s->nl; l++) {
		if (!s->spec[l].port)
			continue;
		for (i = 0; i < n; i++) {
			const struct baton_sock *k = &socks[i];
			int id = -1, j;
			pid_t top = 0;

			if (!sock_on_spec(&s->spec[l], k) || FEATURES_ANY(ours, s, k->inode))
				continue;
			for (uint32_t w = 0; w < k->nowners && w < BATON_SOCK_MAX_OWNERS && id < 0; w++)
				if ((id = orphan_gen(s, k->owners[w].pid)) > 0)
					top = orphan_top(s, k->owners[w].pid, id);
			if (id <= 0)
				continue;
			for (j = 0; j < norph && orph[j].id != id; j++)
				;
			if (j == norph) {
				if (norph == MAX_GENS - 1)
					continue;
				memset(&orph[norph], 0, sizeof(orph[norph]));
				orph[norph].id = id;
				orph[norph++].pid = top;
			}
			if (!orph[j].ino[l])
				orph[j].ino[l] = k->inode;
		}
	}
	baton_socks_free(socks);
	return norph;
}

/* OP into a slot of the table, draining, with its members: the slot, or
 * -1 (it no longer runs, or the table is full). */
static int orphan_adopt(struct sup *s, const struct orphan *op, char *lost, size_t lostlen, int *stored)
{
	struct st_gen sg = { .id = op->id, .pid = op->pid, .pidfd = -1 };
	struct baton_proc_stat ps;
	struct state st = { 0 };
	struct st_member mem[64];
	int gi, l;

	if (baton_proc_stat(op->pid, -1, &ps))
		return -1;
	sg.ticks = ps.start;
	check_alive(&sg);
	if (!sg.alive || (gi = alloc_gen(s)) < 0) {
		if (sg.pidfd >= 0)
			close(sg.pidfd);
		return -1;
	}
	gen_reset(s, &s->gen[gi]);
	s->gen[gi].id = op->id;
	s->gen[gi].pid = op->pid;
	s->gen[gi].pidfd = sg.pidfd;
	s->gen[gi].start_ticks = sg.ticks;
	s->gen[gi].start_wall_ms = baton_wall_ms();
	s->gen[gi].start_us = s->gen[gi].ready_us = baton_mono_us();
	s->gen[gi].adopted = true;
	gen_set_state(s, gi, GEN_DRAINING, "adopted without a state file");
	for (l = 0; l < s->nl; l++)
		if (op->ino[l]) {
			mem[st.nmem] = (struct st_member){ .id = op->id, .l = l, .slot = -1, .ino = op->ino[l] };
			FEATURES_CALL(mark_ours, s, (ino_t)op->ino[l]);
			st.nmem++;
		}
	st.mem = mem;
	adopt_members(s, &st, &sg, gi, true, lost, lostlen, stored);
	gen_watch_pid(s, gi);
	return gi;
}

/* A supervisor killed while its state file could not be written (full
 * disk, read-only directory) leaves a stale state or none; the same
 * command started again finds the generations serving on its listeners.
 * They are its own when orphan_gen says so: adopted, the newest serving,
 * instead of refused as foreign. Makes the groups when it finds any.
 * 1: found some, 0: none, -errno: the groups could not be made (said). */
int state_adopt_orphans(struct sup *s)
{
	struct orphan orph[MAX_GENS];
	char said[1024] = "", lost[1024] = "";
	int norph, newest = -1, l, stored = 0;

	norph = orphans_find(s, orph);
	if (norph <= 0)
		return 0;
	/* the pins of the dead supervisor still hold these members: kept,
	 * as a resume keeps them, never cleared as a fresh start would */
	if (make_groups(s, true))
		return -1;
	for (int j = 0; j < norph; j++) {
		int gi = orphan_adopt(s, &orph[j], lost, sizeof(lost), &stored);

		if (gi < 0)
			continue;
		if (orph[j].id >= s->next_id)
			s->next_id = orph[j].id + 1;
		if (newest < 0 || orph[j].id > s->gen[newest].id)
			newest = gi;
	}
	if (newest < 0) {
		say_warn(s, "generations of this supervisor serve on its listeners, but none could be adopted");
		return 1;
	}
	/* the newest serves; any older one was draining when the state was
	 * last known (or a restart replaced it): told to stop again */
	for (int gi = 0; gi < MAX_GENS; gi++) {
		struct gen *g = &s->gen[gi];

		if (g->state == GEN_FREE || g->pid <= 0)
			continue;
		if (gi == newest) {
			gen_set_state(s, gi, GEN_ACTIVE, "adopted: the newest serves");
			s->active = gi;
			for (l = 0; l < s->nl; l++)
				if (g->slot[l] >= 0)
					baton_group_activate(s->grp[l], g->slot[l]);
		} else {
			g->stop_ms = baton_mono_ms();
			stop_gen(s, g);
		}
	}
	resume_said(s, -1, false, said, sizeof(said));
	s->resumed = true;
	say(s, "adopted %s: serving on this command's listeners with this supervisor's name and notify socket in "
	       "their environment, though the state file %s did not name them (it could not be written, or is "
	       "stale)", said, s->state_path);
	resume_lost(s, lost);
	return 1;
}
