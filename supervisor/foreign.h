/* SPDX-License-Identifier: BSD-2-Clause */
/* Sockets on a listener's address that baton did not create (foreign.c). */
#ifndef BATON_SUP_FOREIGN_H
#define BATON_SUP_FOREIGN_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

/* foreign.c: sockets on a listener's address that baton did not create */
int foreign_check(struct sup *s);
struct baton_sock;
bool sock_on_spec(const struct baton_spec *sp, const struct baton_sock *k);	/* K listens on SP's address */

#endif
