/* SPDX-License-Identifier: BSD-2-Clause */
/* A generation's environment, built in the supervisor before its spawn
 * (envbuild.c): a copy of ours with variables set and unset by key, so the
 * child, which shares our memory until its exec, never calls setenv. */
#ifndef BATON_SUP_ENVBUILD_H
#define BATON_SUP_ENVBUILD_H

#include <stddef.h>

struct envb {
	char **v;       /* NULL-terminated, every string ours */
	size_t n, cap;  /* entries, room (without the NULL) */
};

/* A copy of FROM (e.g. environ); -ENOMEM leaves E empty. */
int envb_init(struct envb *e, char *const *from);
void envb_free(struct envb *e);
/* KEY=VAL, in place of any KEY (where it was, as setenv does), else at the
 * end. 0 or -ENOMEM (E unchanged). */
int envb_set(struct envb *e, const char *key, const char *val);
void envb_unset(struct envb *e, const char *key);
/* KEY's value, or NULL */
const char *envb_get(const struct envb *e, const char *key);
/* KEY= followed by ROOM bytes (a NUL, then zeros) to be filled later; the
 * address of those bytes, or NULL (ENOMEM). */
char *envb_slot(struct envb *e, const char *key, size_t room);

#endif
