/* SPDX-License-Identifier: BSD-2-Clause */
/* String vectors (strv.c): NULL-terminated arrays of malloc'd strings. */
#ifndef BATON_SUP_STRV_H
#define BATON_SUP_STRV_H

#include <stdbool.h>
#include <stddef.h>

size_t strv_len(char *const *v);
void strv_free(char **v);
/* Appends (takes) TEXT; -ENOMEM leaves V as it was and frees TEXT. */
int strv_push(char ***v, char *text);
char **strv_dup(char *const *v);
bool strv_eq(char *const *a, char *const *b);

#endif
