/* SPDX-License-Identifier: BSD-2-Clause */
/* A steering set's state pinned in bpffs: where each map and the program
 * are pinned, recovering a restarted group's policy from them, repinning
 * what was removed, and unpinning. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer_int.h"
#include "steer.skel.h"

/* bpf/steer.h names the pins; the program's comes last */
#define PIN_NAME(n) #n,
static const char *const pin_names[] = { BATON_STEER_PINNED_MAPS(PIN_NAME) BATON_STEER_PIN_PROG };
#define NPINS (sizeof(pin_names) / sizeof(pin_names[0]))
static const char *const old_pin_names[] = { BATON_STEER_OLD_PINS(PIN_NAME) };

/* The descriptor of each pin of SKEL, in pin_names' order. */
static void pin_fds(struct steer_bpf *skel, int fds[NPINS])
{
#define PIN_FD(n) bpf_map__fd(skel->maps.n),
	const int maps[] = { BATON_STEER_PINNED_MAPS(PIN_FD) bpf_program__fd(skel->progs.steer) };
#undef PIN_FD
	_Static_assert(sizeof(maps) / sizeof(maps[0]) == NPINS, "a pin without a descriptor");
	memcpy(fds, maps, sizeof(maps));
}

/* Pinned maps live at PIN_PATH/NAME; libbpf reuses them on load when they
 * exist (a restarted baton steer) and pins fresh ones otherwise. */
int steer_set_pins(struct baton_steerset *set, struct steer_bpf *skel)
{
#define PIN_MAP(n) skel->maps.n,
	struct bpf_map *maps[] = { BATON_STEER_PINNED_MAPS(PIN_MAP) };
#undef PIN_MAP
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", set->pin_path, pin_names[i]);
		if (bpf_map__set_pin_path(maps[i], path))
			return -errno;
	}
	return 0;
}

/* The program is pinned only so that bpftool and a later baton see it; the
 * kernel's group holds its own reference while it is attached. */
void steer_pin_prog(struct baton_steerset *set, struct steer_bpf *skel)
{
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/%s", set->pin_path, BATON_STEER_PIN_PROG);
	unlink(path);
	if ((r = bpf_program__pin(skel->progs.steer, path)))
		LOG(set, WARN, "cannot pin the steering program at %s: %s", path, strerror(-r));
}

uint32_t steer_pinned_cap(const char *pin_path)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_path, BATON_STEER_PIN_SOCKS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.max_entries = 0;
	close(fd);
	return info.max_entries / BATON_STEER_SLOTS;
}

bool steer_pinned_old(const char *pin_path)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/cfg", pin_path);
	return access(path, F_OK) == 0;
}

/* An older baton's pins (bpf/steer.h BATON_STEER_OLD_PINS): its policy,
 * the copy its latch pointed readers at, goes into the live bank of the
 * fresh maps (no program reads them yet: the new one is attached with the
 * first member), and the old pins go; the old program keeps its maps until
 * it is replaced. Returns true if a policy was carried over. */
static bool carry_old_pins(struct baton_group *g, struct baton_steer_cfg *into)
{
	char cpath[PATH_MAX], tpath[PATH_MAX];
	struct bpf_map_info ci = { 0 }, ti = { 0 };
	uint32_t clen = sizeof(ci), tlen = sizeof(ti), zero = 0, idx;
	struct baton_steer_ctl ctl;
	int cfd, tfd;
	bool ok = false;

	snprintf(cpath, sizeof(cpath), "%s/cfg", g->pin_path);
	snprintf(tpath, sizeof(tpath), "%s/ctl", g->pin_path);
	cfd = bpf_obj_get(cpath);
	tfd = bpf_obj_get(tpath);
	if (cfd < 0 || tfd < 0)
		goto out;
	if (bpf_obj_get_info_by_fd(cfd, &ci, &clen) || bpf_obj_get_info_by_fd(tfd, &ti, &tlen) ||
	    ci.type != BPF_MAP_TYPE_ARRAY || ci.value_size != sizeof(*into) || ci.max_entries != 2 ||
	    ti.type != BPF_MAP_TYPE_ARRAY || ti.value_size != sizeof(ctl)) {
		LOG(g, WARN, "%s and %s are not the maps of an older baton's group: left as they are", cpath, tpath);
		goto out;
	}
	if (bpf_map_lookup_elem(tfd, &zero, &ctl) || !ctl.seq)
		goto drop;	/* never published: nothing to carry */
	idx = ctl.seq & 1;
	if (bpf_map_lookup_elem(cfd, &idx, into) || into->n > BATON_STEER_TABLE) {
		memset(into, 0, sizeof(*into));
		goto drop;
	}
	ok = true;
	LOG(g, INFO, "carried the policy of an older baton's pins at %s (cfg, ctl: a seqcount latch) over to policy banks",
	    g->pin_path);
drop:
	unlink(cpath);
	unlink(tpath);
out:
	if (cfd >= 0)
		close(cfd);
	if (tfd >= 0)
		close(tfd);
	return ok;
}

/* A restarted group: the policy version, and for each occupied slot of its
 * listener in the pinned sockarray its socket's cookie and its share of the
 * live pick table (the set's live bank, which a resumed set keeps: every
 * other bank waits for a grace period before its first reuse). An older
 * baton's pins are carried over in a set of one listener, the only set its
 * pins fit (lib/steer_set.c fit_pinned refuses them for more). Returns true
 * if a previous policy was found. */
bool steer_recover_pinned(struct baton_group *g)
{
	int socks_fd = bpf_map__fd(g->set->skel->maps.socks);
	struct baton_steer_cfg *cfg = steer_banks_entry(&g->set->banks, g->set->banks.cur, g->lid);
	bool found = false;
	uint32_t k;

	/* version is at least 1 once published (publish counts from 0) */
	if (!cfg->version && !(g->set->cap == 1 && carry_old_pins(g, cfg)))
		return false;	/* fresh maps: never published */
	g->version = cfg->version;
	if (!g->pin && !(g->pin = calloc(BATON_MAX_SLOTS, sizeof(*g->pin))))
		return false;	/* published afresh: the members come back through the caller */
	for (k = 0; k < BATON_MAX_SLOTS; k++) {
		uint64_t cookie = 0;
		uint32_t key = steer_gslot(g, (int)k);

		if (bpf_map_lookup_elem(socks_fd, &key, &cookie) == 0 && cookie) {
			g->pin[k].cookie = cookie;
			g->npinned++;
			steer_slot_used(g, (int)k);
			found = true;
		}
	}
	for (k = 0; k < cfg->n && k < BATON_STEER_TABLE; k++)
		if (cfg->slot[k] < BATON_MAX_SLOTS && g->pin[cfg->slot[k]].cookie)
			g->pin[cfg->slot[k]].weight++;
	LOG(g, INFO, "resuming the pinned group at %s, listener %u (policy version %u, bank %u)", g->pin_path, g->lid,
	    g->version, g->set->banks.cur);
	return found;
}

/* The caller states the whole policy: pinned slots nobody claimed leave the
 * sockarray (their sockets, held elsewhere, fall back to the kernel hash
 * only if no slot has weight). */
void steer_forget_pinned(struct baton_group *g)
{
	uint32_t k;

	if (!g->pin)
		return;	/* nothing pinned waits: the common case, a switch costs nothing here */
	for (k = 0; k < BATON_MAX_SLOTS; k++) {
		if (!g->pin[k].cookie)
			continue;
		g->pin[k] = (struct pinned){ 0 };
		if (g->m[k].fd < 0 && g->mode == BATON_MODE_EBPF) {
			uint32_t key = steer_gslot(g, (int)k);

			bpf_map_delete_elem(bpf_map__fd(g->set->skel->maps.socks), &key);
		}
	}
	free(g->pin);
	g->pin = NULL;
	g->npinned = 0;
}

int steer_mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		struct stat st;

		path[i] = '\0';
		/* stat first: some file systems (sysfs) refuse mkdir with EPERM
		 * even where the directory exists */
		if (stat(path, &st) && mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		path[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/* Only what baton pins goes: what else a directory holds is not baton's,
 * so it stays, and with it the directory. */
int baton_group_unpin_dir(const char *pin_path)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	if (!pin_path || !pin_path[0] || strlen(pin_path) >= PATH_MAX - 16)
		return -EINVAL;
	if (stat(pin_path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	for (i = 0; i < NPINS; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_path, pin_names[i]);
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	for (i = 0; i < sizeof(old_pin_names) / sizeof(old_pin_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_path, old_pin_names[i]);
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	if (rmdir(pin_path) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Pins removed under a running group (rm -r of bpffs, a cleanup script)
 * leave it steering, but a later process cannot find its state: each
 * missing pin is made again from the group's own descriptors. */
int baton_group_repin(struct baton_group *g)
{
	char path[PATH_MAX];
	struct stat st;
	int fds[NPINS], n = 0, r;

	if (!g)
		return -EINVAL;
	if (!g->pin_path[0] || g->mode != BATON_MODE_EBPF || !g->set)
		return 0;
	if ((r = steer_mkdir_p(g->pin_path)))
		return r;
	pin_fds(g->set->skel, fds);
	for (size_t i = 0; i < NPINS; i++) {
		snprintf(path, sizeof(path), "%s/%s", g->pin_path, pin_names[i]);
		if (fds[i] < 0 || !stat(path, &st))
			continue;
		if (bpf_obj_pin(fds[i], path))
			return -errno;
		n++;
	}
	if (n)
		LOG(g, WARN, "%d pin%s under %s had been removed: pinned again", n, n == 1 ? "" : "s", g->pin_path);
	return n;
}

int baton_group_unpin(struct baton_group *g)
{
	int r;

	if (!g)
		return -EINVAL;
	if (!g->pin_path[0])
		return 0;
	r = baton_group_unpin_dir(g->pin_path);
	return r == -ENOENT ? 0 : r;
}
