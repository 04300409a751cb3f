/* SPDX-License-Identifier: BSD-2-Clause */
/* The address-to-fd map that `baton run` gives the preload shim
 * (BATON_PRELOAD): one parser for both sides, so that baton run refuses at
 * start what the shim could not read, and one target for the fuzzer. */
#ifndef BATON_PRELOAD_MAP_H
#define BATON_PRELOAD_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* As many entries as baton run accepts listeners (SUP_MAX_LISTENERS). */
#define PRELOAD_MAX_ENTRIES 4096
/* Above this, the map goes in an inherited sealed memfd and BATON_PRELOAD
 * says "v1fd:FD": one environment string may not exceed 128 KiB
 * (MAX_ARG_STRLEN), and 4,096 IPv6 entries are more. */
#define PRELOAD_ENV_MAX 8192
/* The largest map a memfd may carry (the shim reads it whole). */
#define PRELOAD_MAP_MAX (1u << 20)

struct preload_entry {
	int family;                 /* AF_INET or AF_INET6 */
	int type;                   /* SOCK_STREAM or SOCK_DGRAM */
	unsigned char addr[16];     /* network order; v4 in the first 4 bytes */
	bool any;                   /* wildcard address */
	uint16_t port;
	int fd;                     /* 3..65535 */
};

/* Parses one entry, "tcp:HOST:PORT=FD" or "udp:[V6]:PORT=FD", cutting E
 * apart. 0, or -EINVAL. Touches no fd. */
int preload_entry_parse(char *e, struct preload_entry *m);

/* Entries in a "v1;E;E;..." map (what preload_map_parse needs room for),
 * or -EINVAL if TEXT is not version 1. */
int preload_map_count(const char *text);

/* Parses a "v1;E;E;..." map in place into OUT (room for MAX). Returns the
 * number of entries, or -EINVAL (not v1, a bad entry: a copy of it in BAD)
 * or -E2BIG (more than MAX or PRELOAD_MAX_ENTRIES). */
int preload_map_parse(char *text, struct preload_entry *out, int max, char *bad, size_t badlen);

#endif
