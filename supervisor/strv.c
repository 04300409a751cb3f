/* SPDX-License-Identifier: BSD-2-Clause */
/* String vectors: NULL-terminated arrays of malloc'd strings, the form of a
 * generation's command and environment. Apart from cmd.c so that the state
 * file's parser (stateparse.c) and its fuzzer use the same ones. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"

size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Appends (takes) TEXT; -ENOMEM leaves V as it was and frees TEXT. */
int strv_push(char ***v, char *text)
{
	size_t n = strv_len(*v);
	char **nv = realloc(*v, (n + 2) * sizeof(*nv));

	if (!nv) {
		free(text);
		return -ENOMEM;
	}
	nv[n] = text;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

char **strv_dup(char *const *v)
{
	char **out = calloc(1, sizeof(*out));

	for (size_t i = 0; out && v && v[i]; i++) {
		char *d = strdup(v[i]);

		if (!d || strv_push(&out, d)) {
			strv_free(out);
			return NULL;
		}
	}
	return out;
}

bool strv_eq(char *const *a, char *const *b)
{
	size_t i;

	for (i = 0; a && b && a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return (!a || !a[i]) && (!b || !b[i]);
}
