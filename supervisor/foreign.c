/* SPDX-License-Identifier: BSD-2-Clause */
/* Sockets that baton did not create on a listener's address. A group that
 * `baton run` joins must be baton's alone: a foreign SO_REUSEPORT member
 * (another server, or a generation left by a supervisor whose state is
 * gone) would take connections that no generation accepts, or silently
 * share the port. Found with the collectors behind `baton ls`. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "foreign.h"
#include "sdnotify.h"
#include "util.h"

bool sock_on_spec(const struct baton_spec *sp, const struct baton_sock *k)
{
	if (k->proto != sp->proto || k->lport != sp->port || k->family != sp->family)
		return false;
	if (k->proto == BATON_PROTO_TCP ? k->state != 10 : k->state != 7)
		return false;	/* TCP: listeners only; UDP: unconnected sockets */
	if (sp->family == AF_INET)
		return !memcmp(k->local, &((const struct sockaddr_in *)&sp->addr)->sin_addr, 4);
	return !memcmp(k->local, &((const struct sockaddr_in6 *)&sp->addr)->sin6_addr, 16);
}

/* "pid 1234 (nginx) fd 6, pid 1240 (nginx) fd 6" */
static void owners_text(const struct baton_sock *k, char *buf, size_t len)
{
	size_t off = 0;
	uint32_t i;

	buf[0] = '\0';
	/* the names are their owners' to choose: escaped for logs and status */
	for (i = 0; i < k->nowners && i < BATON_SOCK_MAX_OWNERS && off < len; i++) {
		char comm[4 * BATON_COMM_MAX + 1];

		off += (size_t)snprintf(buf + off, len - off, "%spid %d (%s) fd %d", i ? ", " : "", k->owners[i].pid,
					baton_text_escape(comm, sizeof(comm), k->owners[i].comm, 0), k->owners[i].fd);
	}
	if (k->nowners > BATON_SOCK_MAX_OWNERS && off < len)
		snprintf(buf + off, len - off, " and %u more", k->nowners - BATON_SOCK_MAX_OWNERS);
	if (!k->nowners)
		snprintf(buf, len, "owner unknown (another user's process, or no permission to read /proc)");
}

/* The socket K on SPEC belongs to another supervisor (its state file in the
 * runtime directory names it): say which, and what to do. True if said. */
static bool peer_says(struct sup *s, const struct baton_sock *k, const char *spec)
{
	pid_t pids[BATON_SOCK_MAX_OWNERS];
	struct sup_peer p;
	int n = 0;

	for (uint32_t i = 0; i < k->nowners && i < BATON_SOCK_MAX_OWNERS; i++)
		pids[n++] = k->owners[i].pid;
	if (sup_peer_find(k->inode, pids, n, s->name, &p))
		return false;
	char active[64] = "";

	for (int i = 0; i < p.ngens; i++)
		if (!strcmp(p.gen[i].state, "active"))
			snprintf(active, sizeof(active), ", serving with gen %d, pid %d", p.gen[i].id, (int)p.gen[i].pid);
	if (p.running)
		say_err(s, "%s is already served by baton supervisor \"%s\" (pid %d%s): one supervisor per "
			   "address. Change what it runs with baton reload %s, or stop it first with baton stop %s",
		    spec, p.name, (int)p.pid, active, p.name, p.name);
	else
		say_err(s, "%s is still served by %d generation%s of baton supervisor \"%s\" (pid %d, no longer "
			   "running): run its baton run again (--name %s) to resume them, or stop them first",
		    spec, p.ngens, p.ngens == 1 ? "" : "s", p.name, (int)p.pid, p.name);
	return true;
}

int foreign_check(struct sup *s)
{
	struct baton_collect_opts o = { .sz = sizeof(o), .log = lib_log, .log_ctx = s };
	struct baton_sock *socks = NULL;
	size_t n = 0, i;
	int l, found = 0, r;

	for (l = 0; l < s->nl && s->spec[l].port == 0; l++)
		;
	if (l == s->nl)
		return 0;	/* only port 0: a fresh port is nobody's */
	r = baton_socks_collect(&o, &socks, &n);
	if (r) {
		say_warn(s, "cannot list the sockets on the listeners' addresses (%s); not checking for foreign ones",
		    strerror(-r));
		return 0;
	}
	for (l = 0; l < s->nl; l++) {
		char spec[256], who[512];

		if (!s->spec[l].port)
			continue;
		for (i = 0; i < n; i++) {
			const struct baton_sock *k = &socks[i];
			bool reuseport = (k->opt_known & (1u << BATON_OPT_REUSEPORT)) && k->opt[BATON_OPT_REUSEPORT];

			if (!sock_on_spec(&s->spec[l], k) || sdn_ours(s, k->inode))
				continue;	/* passed to baton (socket activation, takeover): not foreign */
			found++;
			baton_spec_format(&s->spec[l], spec, sizeof(spec));
			owners_text(k, who, sizeof(who));
			if (!reuseport && (k->opt_known & (1u << BATON_OPT_REUSEPORT))) {
				say_err(s, "%s is already taken by a socket without SO_REUSEPORT: %s; stop it first, or take it "
					   "over with --takeover %d", spec, who, k->nowners ? k->owners[0].pid : 0);
				continue;
			}
			if (peer_says(s, k, spec))
				continue;
			if (!s->cfg->allow_foreign)
				say_err(s, "%s already has a listener that baton did not create: %s; its group would share "
				       "the port with it. Stop it first, or give --allow-foreign to run beside it",
				    spec, who);
			else
				say_warn(s, "%s has a foreign listener (%s); running beside it (--allow-foreign)%s", spec,
				    who, baton_group_mode(s->grp[0]) == BATON_MODE_CBPF
						 ? ": in classic BPF mode it takes a share of new connections"
						 : ": baton's program never picks it, but the kernel does while no "
						   "generation has weight");
		}
	}
	baton_socks_free(socks);
	return found && !s->cfg->allow_foreign ? -EADDRINUSE : 0;
}
