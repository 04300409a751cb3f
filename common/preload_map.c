/* SPDX-License-Identifier: BSD-2-Clause */
/* BATON_PRELOAD's syntax, shared by the shim (which reads it before the
 * server's main) and the supervisor (which checks what it wrote). No
 * allocation, no stdio: the shim runs it in other people's processes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "preload_map.h"

int preload_entry_parse(char *e, struct preload_entry *m)
{
	char *host, *port, *fd, *end;
	long v;

	if (!strncmp(e, "tcp:", 4))
		m->type = SOCK_STREAM;
	else if (!strncmp(e, "udp:", 4))
		m->type = SOCK_DGRAM;
	else
		return -EINVAL;
	host = e + 4;
	fd = strrchr(host, '=');
	if (!fd)
		return -EINVAL;
	*fd++ = '\0';
	port = strrchr(host, ':');
	if (!port)
		return -EINVAL;
	*port++ = '\0';
	if (host[0] == '[') {
		size_t n = strlen(host);

		if (n < 3 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		host++;
		m->family = AF_INET6;
	} else {
		m->family = AF_INET;
	}
	memset(m->addr, 0, sizeof(m->addr));
	if (inet_pton(m->family, host, m->addr) != 1)
		return -EINVAL;
	m->any = m->family == AF_INET ? !memcmp(m->addr, "\0\0\0\0", 4) : !memcmp(m->addr, &in6addr_any, 16);
	/* digits only: strtol would take "+8", " 8" and "0x" prefixes */
	if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
		return -EINVAL;
	v = strtol(port, &end, 10);
	if (v < 1 || v > 65535)
		return -EINVAL;
	m->port = (uint16_t)v;
	if (!*fd || strspn(fd, "0123456789") != strlen(fd) || strlen(fd) > 5)
		return -EINVAL;
	v = strtol(fd, &end, 10);
	if (v < 3 || v > 65535)
		return -EINVAL;
	m->fd = (int)v;
	return 0;
}

int preload_map_count(const char *text)
{
	int n = 0;

	if (strncmp(text, "v1;", 3))
		return -EINVAL;
	for (const char *p = text + 3; *p; p++)
		if (*p != ';' && (p[-1] == ';'))
			n++;
	return n;
}

int preload_map_parse(char *text, struct preload_entry *out, int max, char *bad, size_t badlen)
{
	char *p, *next;
	int n = 0;

	if (badlen)
		bad[0] = '\0';
	if (strncmp(text, "v1;", 3))
		return -EINVAL;
	for (p = text + 3; p && *p; p = next) {
		next = strchr(p, ';');
		if (next)
			*next++ = '\0';
		if (!*p)
			continue;	/* ";;": nothing between */
		if (n >= max || n >= PRELOAD_MAX_ENTRIES)
			return -E2BIG;
		if (badlen) {
			/* the parse cuts the entry apart; a message wants it whole */
			size_t cn = strnlen(p, badlen - 1);

			memcpy(bad, p, cn);
			bad[cn] = '\0';
		}
		if (preload_entry_parse(p, &out[n]))
			return -EINVAL;
		n++;
	}
	if (badlen)
		bad[0] = '\0';
	return n;
}
