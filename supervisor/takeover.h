/* SPDX-License-Identifier: BSD-2-Clause */
/* --takeover PID (takeover.c): generation 0 is a server baton did not
 * start, its sockets copied with pidfd_getfd. */
#ifndef BATON_SUP_TAKEOVER_H
#define BATON_SUP_TAKEOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core.h"

/* takeover.c */
int takeover_collect(struct sup *s);   /* generation 0 from --takeover PIDs; -errno said */
void takeover_pids_free(struct sup *s);
void takeover_abandon(struct sup *s);  /* gives generation 0 back untouched */
void takeover_release(struct sup *s, struct gen *g, bool fence);
void takeover_drain(struct sup *s, struct gen *g, long long now);
void takeover_signal(struct sup *s, struct gen *g);
int takeover_add_member(struct sup *s, int gi, int l, int slot, ino_t ino);
/* A copy of fd FD of PID, which must still be the process that started at
 * START (clock ticks; 0: not checked) and FD still the socket of inode INO
 * found by the scan. The copy, or -errno with WHY said. */
int takeover_copy_fd(pid_t pid, unsigned long long start, int fd, unsigned long long ino, char *why, size_t len);

#endif
