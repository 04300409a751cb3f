/* SPDX-License-Identifier: BSD-2-Clause */
/* baton as a systemd service (sdnotify.c): sd_notify to the manager,
 * LISTEN_FDS intake, the fd store and the .socket unit's own sockets. */
#ifndef BATON_SUP_SDNOTIFY_H
#define BATON_SUP_SDNOTIFY_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

/* sdnotify.c: baton as a systemd service. Without NOTIFY_SOCKET nothing
 * is sent; without LISTEN_FDS every listener binds as usual. */
int sdn_init(struct sup *s);          /* LISTEN_FDS intake, before anything binds; -errno said */
void sdn_free(struct sup *s);
void sdn_ready(struct sup *s);        /* gen 1 ready, or generations adopted */
void sdn_reloading(struct sup *s);
void sdn_reload_end(struct sup *s);
void sdn_stopping(struct sup *s);
void sdn_status(struct sup *s);       /* STATUS= if the line changed */
void sdn_store(struct sup *s, int l, int fd);    /* FDSTORE=1 a member or shared socket */
void sdn_unstore(struct sup *s, int l, ino_t ino);
void sdn_unstore_fd(struct sup *s, int l, int fd);	/* no fstat unless it stores */
bool sdn_passed(const struct sup *s, int l);     /* listener L came from LISTEN_FDS (or a takeover) */
/* The .socket unit's own sockets are systemd's: never shut down, parked
 * without weight when their generation retires, steered to at stop. */
bool sdn_is_unit(const struct sup *s, ino_t ino);
void sdn_mark_foreign(struct sup *s);
bool sdn_park_unit(struct sup *s, struct gen *g, int l);
void sdn_stop_to_unit(struct sup *s);
void sdn_release_unit(struct sup *s);
void sdn_upgrade_pass(struct sup *s, bool pass);  /* baton upgrade: they cross the exec */
bool sdn_unit_hold(struct sup *s, struct gen *g);
void sdn_unit_wait_check(struct sup *s, struct gen *g, long long now);
bool sdn_ours(const struct sup *s, unsigned long long ino); /* a socket passed to us, not foreign */
int sdn_dup_ino(struct sup *s, unsigned long long ino);     /* a copy of a passed/stored socket, or -ENOENT */
int sdn_member_fd(struct sup *s, int l);         /* takes listener L's passed first member, -1 none */
const char *listener_mode(const struct sup *s, int l);      /* "steered" or "shared" */
void sdn_mark_ours(struct sup *s, ino_t ino);   /* a taken socket: not foreign */

#endif
