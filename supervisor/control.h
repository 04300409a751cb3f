/* SPDX-License-Identifier: BSD-2-Clause */
/* The control socket (control.c): clients of baton reload, status, stop
 * and friends, and their requests. */
#ifndef BATON_SUP_CONTROL_H
#define BATON_SUP_CONTROL_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.h"

void client_send(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void client_close(struct sup *s, struct client *c);
void handle_request(struct sup *s, int ci);
void accept_client(struct sup *s);
void read_client(struct sup *s, int ci);
int open_control(struct sup *s);
void control_retry(struct sup *s, long long now);	/* sockets a read-only directory refused, again */
const char *fmt_duration(long long ms);

#endif
