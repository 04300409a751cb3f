/* SPDX-License-Identifier: BSD-2-Clause */
/* The control request line's parts (ctlparse.c). */
#ifndef BATON_SUP_CTLPARSE_H
#define BATON_SUP_CTLPARSE_H

struct ctl_req {
	char *proto;    /* the first word: SUP_PROTO, or what came instead (NULL: none) */
	char *cmd;      /* NULL: none */
	char *rest;     /* what follows the command, never NULL */
};

/* Splits LINE in place (cut at its first CR or LF). -EPROTO if it does
 * not start with SUP_PROTO (REQ->proto says what it started with). */
int ctl_split(char *line, struct ctl_req *req);
/* The one optional argument in REST; -E2BIG (EXTRA set) if there are more. */
int ctl_args(char *rest, char **arg, char **extra);
/* N of "baton/1 reload-with N[ options]\n": 0 .. SUP_ITEMS_MAX, or -EINVAL. */
int ctl_items_count(const char *line, long *n);

#endif
