/* SPDX-License-Identifier: BSD-2-Clause */
/* cgroup v2 for the supervisor's generations, and the loader of the cgroup
 * bind hook (bpf/bindhook.bpf.c): finds the hierarchy, creates and removes
 * cgroups, attaches the hook through links and reads its ring buffer. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "bindhook.skel.h"

int baton_cgroup_mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int r = -ENOENT;

	if (!f)
		return -errno;
	/* "36 25 0:31 / /sys/fs/cgroup/unified rw,... - cgroup2 cgroup2 rw,..." */
	while (r && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - "), *mnt, *save = NULL;
		int i;

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		mnt = strtok_r(line, " ", &save);
		for (i = 0; i < 4 && mnt; i++)
			mnt = strtok_r(NULL, " ", &save);
		if (mnt && strlen(mnt) < len) {
			snprintf(buf, len, "%s", mnt);
			r = 0;
		}
	}
	fclose(f);
	return r;
}

int baton_cgroup_self(char *buf, size_t len)
{
	char mnt[PATH_MAX], line[PATH_MAX];
	FILE *f;
	int r = baton_cgroup_mount(mnt, sizeof(mnt));

	if (r)
		return r;
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	r = -ENOENT;
	while (r && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		/* "/" is the root; " (deleted)" cannot take children */
		if (strstr(line, " (deleted)")) {
			r = -ESTALE;
			break;
		}
		r = (size_t)snprintf(buf, len, "%s%s", mnt, strcmp(line + 3, "/") ? line + 3 : "") >= len
			    ? -ENAMETOOLONG : 0;
	}
	fclose(f);
	return r;
}

bool baton_cgroup_delegated(const char *dir)
{
	char v[8];

	return getxattr(dir, "trusted.delegate", v, sizeof(v)) > 0 || getxattr(dir, "user.delegate", v, sizeof(v)) > 0;
}

uint64_t baton_cgroup_id(const char *dir)
{
	struct stat st;

	return stat(dir, &st) ? 0 : (uint64_t)st.st_ino;
}

static int read_small(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

bool baton_cgroup_populated(const char *dir)
{
	char buf[256];

	return !read_small(dir, "cgroup.events", buf, sizeof(buf)) && strstr(buf, "populated 1");
}

int baton_cgroup_remove(const char *dir, bool kill)
{
	char path[PATH_MAX];
	int fd;

	if (!rmdir(dir) || errno == ENOENT)
		return 0;
	if (errno != EBUSY || !kill)
		return -errno;
	/* cgroup.kill (5.14) reaches every process, forked or not */
	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) {
			/* nothing more to try */
		}
		close(fd);
	}
	for (int i = 0; i < 100 && baton_cgroup_populated(dir); i++)
		usleep(10000);
	return rmdir(dir) && errno != ENOENT ? -errno : 0;
}

struct baton_bindhook {
	struct bindhook_bpf *skel;
	struct bpf_link *link[3];
	struct ring_buffer *rb;
	baton_bindhook_fn fn;
	void *ctx;
};

static int on_event(void *ctx, void *data, size_t len)
{
	struct baton_bindhook *h = ctx;

	if (len >= sizeof(struct baton_bind_event))
		h->fn(h->ctx, data);
	return 0;
}

struct baton_bindhook *baton_bindhook_new(const char *dir, baton_bindhook_fn fn, void *ctx, char *err, size_t errlen)
{
	struct baton_bindhook *h = calloc(1, sizeof(*h));
	struct bpf_program *prog[3];
	int cg = -1, r = 0, i;

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->fn = fn;
	h->ctx = ctx;
	h->skel = bindhook_bpf__open_and_load();
	if (!h->skel) {
		r = -errno;
		snprintf(err, errlen, "cannot load the bind hook: %s (needs root, or CAP_BPF, CAP_NET_ADMIN "
			 "and CAP_SYS_ADMIN; Linux 5.11 or later)", strerror(-r));
		goto fail;
	}
	cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open cgroup %s: %s", dir, strerror(-r));
		goto fail;
	}
	prog[0] = h->skel->progs.baton_bind4;
	prog[1] = h->skel->progs.baton_bind6;
	prog[2] = h->skel->progs.baton_listen;
	for (i = 0; i < 3; i++) {
		h->link[i] = bpf_program__attach_cgroup(prog[i], cg);
		if (!h->link[i]) {
			r = -errno;
			snprintf(err, errlen, "cannot attach %s to cgroup %s: %s", bpf_program__name(prog[i]), dir,
				 strerror(-r));
			goto fail;
		}
	}
	h->rb = ring_buffer__new(bpf_map__fd(h->skel->maps.events), on_event, h, NULL);
	if (!h->rb) {
		r = -errno;
		snprintf(err, errlen, "cannot read the bind hook's events: %s", strerror(-r));
		goto fail;
	}
	close(cg);
	return h;
fail:
	if (cg >= 0)
		close(cg);
	baton_bindhook_free(h);
	errno = r ? -r : EIO;
	return NULL;
}

void baton_bindhook_free(struct baton_bindhook *h)
{
	if (!h)
		return;
	ring_buffer__free(h->rb);
	for (int i = 0; i < 3; i++)
		bpf_link__destroy(h->link[i]);
	bindhook_bpf__destroy(h->skel);
	free(h);
}

int baton_bindhook_key(const struct sockaddr *addr, struct baton_bind_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = addr->sa_family;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)addr;

		k->port = ntohs(a->sin_port);
		memcpy(k->addr, &a->sin_addr, 4);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)addr;

		k->port = ntohs(a->sin6_port);
		memcpy(k->addr, &a->sin6_addr, 16);
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

int baton_bindhook_target(struct baton_bindhook *h, const struct sockaddr *addr, int listener)
{
	struct baton_bind_key k;
	uint32_t v = (uint32_t)listener;
	int r = baton_bindhook_key(addr, &k);

	if (r)
		return r;
	return bpf_map_update_elem(bpf_map__fd(h->skel->maps.targets), &k, &v, BPF_ANY) ? -errno : 0;
}

int baton_bindhook_fd(const struct baton_bindhook *h)
{
	return ring_buffer__epoll_fd(h->rb);
}

int baton_bindhook_poll(struct baton_bindhook *h)
{
	int r = ring_buffer__consume(h->rb);

	return r < 0 ? r : 0;
}

/* Finds NAME in $PATH the way execvp does (first executable match). */
static int search_path(const char *name, char *found, size_t len)
{
	const char *path = getenv("PATH"), *p;

	if (strchr(name, '/')) {
		snprintf(found, len, "%s", name);
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL) {
		size_t n = strcspn(p, ":");

		snprintf(found, len, "%.*s%s%s", (int)n, n ? p : ".", "/", name);
		if (!access(found, X_OK))
			return 0;
	}
	return -ENOENT;
}

int baton_exe_bypasses_libc(const char *path, char *found, size_t len)
{
	Elf64_Ehdr eh;
	Elf64_Shdr sh, strsh;
	bool dynamic = false, go = false;
	int fd, r;
	char *names = NULL;

	if ((r = search_path(path, found, len)))
		return r;
	fd = open(found, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64) {
		r = -ENOEXEC;	/* a script, or not a 64-bit ELF: its interpreter binds */
		goto out;
	}
	for (int i = 0; i < eh.e_phnum && i < 256; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) != (ssize_t)sizeof(ph))
			break;
		dynamic |= ph.p_type == PT_INTERP;
	}
	if (eh.e_shstrndx && eh.e_shstrndx < eh.e_shnum &&
	    pread(fd, &strsh, sizeof(strsh), (off_t)(eh.e_shoff + (uint64_t)eh.e_shstrndx * eh.e_shentsize)) ==
		    (ssize_t)sizeof(strsh) && strsh.sh_size < (1u << 20)) {
		names = calloc(1, strsh.sh_size + 1);
		if (names && pread(fd, names, strsh.sh_size, (off_t)strsh.sh_offset) == (ssize_t)strsh.sh_size)
			for (int i = 0; i < eh.e_shnum && i < 4096 && !go; i++)
				if (pread(fd, &sh, sizeof(sh), (off_t)(eh.e_shoff + (uint64_t)i * eh.e_shentsize)) ==
					    (ssize_t)sizeof(sh) && sh.sh_name < strsh.sh_size)
					go = !strcmp(names + sh.sh_name, ".go.buildinfo") ||
					     !strcmp(names + sh.sh_name, ".note.go.buildid");
	}
	r = !dynamic || go;
out:
	free(names);
	close(fd);
	return r;
}
