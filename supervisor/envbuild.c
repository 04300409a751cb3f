/* SPDX-License-Identifier: BSD-2-Clause */
/* A generation's environment as an explicit vector, built before the spawn
 * (see envbuild.h): set, unset and read by key, each string owned here and
 * freed with the vector. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "envbuild.h"

/* The entry of KEY (KL bytes), or -1. */
static ssize_t find(const struct envb *e, const char *key, size_t kl)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strncmp(e->v[i], key, kl) && e->v[i][kl] == '=')
			return (ssize_t)i;
	return -1;
}

/* Appends TEXT (taken; freed on -ENOMEM). */
static int append(struct envb *e, char *text)
{
	if (e->n + 1 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		char **v = realloc(e->v, (cap + 1) * sizeof(*v));

		if (!v) {
			free(text);
			return -ENOMEM;
		}
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = text;
	e->v[e->n] = NULL;
	return 0;
}

/* Puts TEXT (taken) as KEY's entry: in place, or appended. */
static int put(struct envb *e, const char *key, char *text)
{
	ssize_t at = find(e, key, strlen(key));

	if (at < 0)
		return append(e, text);
	free(e->v[at]);
	e->v[at] = text;
	return 0;
}

int envb_init(struct envb *e, char *const *from)
{
	*e = (struct envb){ 0 };
	e->v = calloc(1, sizeof(*e->v));
	if (!e->v)
		return -ENOMEM;
	for (size_t i = 0; from && from[i]; i++) {
		char *d = strdup(from[i]);

		if (!d || append(e, d) < 0) {
			envb_free(e);
			return -ENOMEM;
		}
	}
	return 0;
}

void envb_free(struct envb *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	*e = (struct envb){ 0 };
}

int envb_set(struct envb *e, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	char *text = malloc(kl + vl + 2);

	if (!text)
		return -ENOMEM;
	memcpy(text, key, kl);
	text[kl] = '=';
	memcpy(text + kl + 1, val, vl + 1);
	return put(e, key, text);
}

void envb_unset(struct envb *e, const char *key)
{
	size_t kl = strlen(key), k = 0;

	for (size_t i = 0; i < e->n; i++) {
		if (!strncmp(e->v[i], key, kl) && e->v[i][kl] == '=')
			free(e->v[i]);
		else
			e->v[k++] = e->v[i];
	}
	e->n = k;
	e->v[k] = NULL;
}

const char *envb_get(const struct envb *e, const char *key)
{
	size_t kl = strlen(key);
	ssize_t at = find(e, key, kl);

	return at >= 0 ? e->v[at] + kl + 1 : NULL;
}

char *envb_slot(struct envb *e, const char *key, size_t room)
{
	size_t kl = strlen(key);
	char *text = calloc(1, kl + 1 + room);

	if (!text)
		return NULL;
	memcpy(text, key, kl);
	text[kl] = '=';
	return put(e, key, text) ? NULL : text + kl + 1;
}
