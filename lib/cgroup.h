/* SPDX-License-Identifier: BSD-2-Clause */
/* cgroup v2 and the cgroup bind hook for `baton run --bind-mode cgroup`:
 * where the cgroup2 hierarchy is mounted, the cgroups of a supervisor's
 * generations, and the hook that makes their binds join a steered group.
 * Hidden: the supervisor links libbaton.a; not part of the API. */
#ifndef BATON_CGROUP_H
#define BATON_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"
#include "bindhook.h"

/* The cgroup2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
 * system) into BUF. 0, or -ENOENT: no cgroup2 hierarchy is mounted. */
BATON_HIDDEN int baton_cgroup_mount(char *buf, size_t len);

/* The directory of this process's own cgroup v2 (mount + /proc/self/cgroup's
 * "0::" path) into BUF. 0, -ENOENT (no cgroup2) or -errno. */
BATON_HIDDEN int baton_cgroup_self(char *buf, size_t len);

/* Whether systemd delegated DIR (the xattr trusted.delegate or
 * user.delegate that Delegate=yes sets). */
BATON_HIDDEN bool baton_cgroup_delegated(const char *dir);

/* The cgroup id of DIR (its inode on cgroup2, what
 * bpf_get_current_cgroup_id() returns), or 0. */
BATON_HIDDEN uint64_t baton_cgroup_id(const char *dir);

/* Removes the (empty) cgroup DIR; a populated one is emptied with
 * cgroup.kill first when KILL is set. 0 or -errno (-EBUSY: still populated). */
BATON_HIDDEN int baton_cgroup_remove(const char *dir, bool kill);

/* Whether any process is left in DIR or below (cgroup.events "populated"). */
BATON_HIDDEN bool baton_cgroup_populated(const char *dir);

struct baton_bindhook;
typedef void (*baton_bindhook_fn)(void *ctx, const struct baton_bind_event *e);

/* Loads the hook and attaches cgroup/bind4, cgroup/bind6 and sockops to the
 * cgroup DIR (and so to every cgroup below it) through BPF links, which the
 * kernel detaches when the hook is freed or this process dies. Events go to
 * FN(CTX, event) from baton_bindhook_poll. NULL with errno set (ERR says
 * what failed). */
BATON_HIDDEN struct baton_bindhook *baton_bindhook_new(const char *dir, baton_bindhook_fn fn, void *ctx,
						       char *err, size_t errlen);
BATON_HIDDEN void baton_bindhook_free(struct baton_bindhook *h);

/* Binds from the subtree to ADDR (an AF_INET or AF_INET6 sockaddr with
 * the port set) get SO_REUSEPORT, and report LISTENER in their events. */
BATON_HIDDEN int baton_bindhook_target(struct baton_bindhook *h, const struct sockaddr *addr, int listener);

/* An fd to wait on for events (epoll), and the call that delivers them. */
BATON_HIDDEN int baton_bindhook_fd(const struct baton_bindhook *h);
BATON_HIDDEN int baton_bindhook_poll(struct baton_bindhook *h);

/* Fills K from ADDR. 0 or -EAFNOSUPPORT. */
BATON_HIDDEN int baton_bindhook_key(const struct sockaddr *addr, struct baton_bind_key *k);

/* Whether the executable PATH (searched in $PATH without a slash) makes
 * its system calls without libc's bind(): statically linked, or a Go
 * program (a .go.buildinfo section), which issues raw syscalls even when
 * dynamically linked (Debian's caddy). 1 yes, 0 no, -errno unreadable. */
BATON_HIDDEN int baton_exe_bypasses_libc(const char *path, char *found, size_t len);

#endif
