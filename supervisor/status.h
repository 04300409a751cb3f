/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton status`: collected in statuscollect.c, rendered in statusfmt.c. */
#ifndef BATON_SUP_STATUS_H
#define BATON_SUP_STATUS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "core.h"

void write_status(struct sup *s, FILE *f, bool json);

#endif
