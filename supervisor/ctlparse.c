/* SPDX-License-Identifier: BSD-2-Clause */
/* The control socket's request line, split without side effects:
 * "baton/1 COMMAND [ARG ...]" and the item count of "reload-with N", so
 * that what any local client of the right uid sends can be fuzzed
 * (fuzz/ctl_fuzz.c); control.c acts on the parts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sup.h"
#include "ctlparse.h"

int ctl_split(char *line, struct ctl_req *req)
{
	char *save = NULL;

	memset(req, 0, sizeof(*req));
	line[strcspn(line, "\r\n")] = '\0';
	req->proto = strtok_r(line, " ", &save);
	if (!req->proto || strcmp(req->proto, SUP_PROTO))
		return -EPROTO;
	req->cmd = strtok_r(NULL, " ", &save);
	req->rest = save ? save : (char *)"";
	return 0;
}

int ctl_args(char *rest, char **arg, char **extra)
{
	char *save = NULL;

	*arg = strtok_r(rest, " ", &save);
	*extra = strtok_r(NULL, " ", &save);
	return *extra ? -E2BIG : 0;
}

int ctl_items_count(const char *line, long *n)
{
	static const char head[] = SUP_PROTO " reload-with ";
	const char *p = line + sizeof(head) - 1;
	char *end;

	if (strncmp(line, head, sizeof(head) - 1))
		return -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;	/* no sign, no space: a count */
	errno = 0;
	*n = strtol(p, &end, 10);
	/* a staged reload's options may follow N (canary.c) */
	if (errno || (*end != '\n' && *end != '\r' && *end != ' ') || *n < 0 || *n > SUP_ITEMS_MAX)
		return -EINVAL;
	return 0;
}
