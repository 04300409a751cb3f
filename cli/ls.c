/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton ls`: collects every listening socket through the library (sock_diag,
 * the BPF iterator or the pidfd fallback, /proc) and prints it with
 * cli/lsfmt.c, as a table grouped by reuseport group or as one JSON document. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "lsfmt.h"
#include "pins.h"
#include "pinlayout.h"

#define MAX_STALE 64

/* One pin directory: stale if its group's socket map holds no socket.
 * Returns 0 (stale or not: *n tells), -ENOENT if no group is pinned there,
 * or -errno when it cannot be read. */
static int stale_check(const char *base, const char *path, const struct baton_sock *v, size_t nv,
		       struct ls_stale *st, long *n)
{
	uint32_t map_id;
	int sockets, r = pins_group(path, &map_id, &sockets);

	if (r || sockets)
		return r;
	if (*n >= MAX_STALE)
		return 0;
	ls_stale_parse(&st[*n], base, path);
	for (size_t k = 0; st[*n].spec[0] && k < nv; k++)
		if (v[k].proto == BATON_PROTO_TCP && v[k].state == 10 && v[k].family == st[*n].family &&
		    v[k].lport == st[*n].port &&
		    !memcmp(v[k].local, st[*n].addr, v[k].family == AF_INET ? 4 : 16))
			st[*n].listening = true;
	(*n)++;
	return 0;
}

/* 0 if PATH is an empty directory: removing it loses nothing. */
static int rmdir_would_do(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int r = 0;

	if (!d)
		return -errno;
	while (!r && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			r = -ENOTEMPTY;
	closedir(d);
	return r;
}

/* baton's groups pin under pin_root() (common/pinlayout.h): steer-ADDR-PORT/, or a supervisor's
 * run-NAME/LISTENER/; any directory there with a "socks" pin is a group.
 * Returns the number of stale ones, or -1 if they cannot be read (no
 * privilege): then nothing is claimed either way. */
static long stale_pins(const struct baton_sock *v, size_t nv, struct ls_stale *st)
{
	char path[PATH_MAX], path2[PATH_MAX], base[PATH_MAX - 512];
	DIR *root = pin_root(base, sizeof(base)) ? NULL : opendir(base), *sub;
	struct dirent *e, *f;
	long n = 0;
	int r;

	if (!root)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	while ((e = readdir(root))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		r = stale_check(base, path, v, nv, st, &n);
		if (r == -EPERM || r == -EACCES) {
			n = -1;
			break;
		}
		if (r != -ENOENT || !(sub = opendir(path)))
			continue;
		bool groups = false;

		while ((f = readdir(sub))) {
			if (f->d_name[0] == '.')
				continue;
			if (snprintf(path2, sizeof(path2), "%s/%s", path, f->d_name) >= (int)sizeof(path2))
				continue;
			/* not a group and not empty (an unknown file): leave the folder alone */
			groups |= stale_check(base, path2, v, nv, st, &n) != -ENOENT || rmdir_would_do(path2) != 0;
		}
		closedir(sub);
		/* a folder with no group in it (empty, or only empty folders,
		 * left by a run that could not pin): stale too */
		if (!groups && n < MAX_STALE)
			ls_stale_parse(&st[n++], base, path);
	}
	closedir(root);
	return n;
}

void usage_ls(FILE *out)
{
	fprintf(out,
		"usage: baton ls [--json] [-a] [--no-bpf] [FILTER]\n\n"
		"Lists every listening TCP socket and bound UDP socket of this network\n"
		"namespace with its queue, owners (command[pid] fd N), the options that are\n"
		"set, its SO_REUSEPORT group and the program attached to the group. Members\n"
		"of a group baton steers show their slot and share of new connections.\n\n"
		"  FILTER      PORT, ADDRESS:PORT, [IPV6]:PORT or a listener spec such as\n"
		"              tcp://0.0.0.0:8080\n"
		"  -a, --all   also UDP sockets that are connected (not listening)\n"
		"  -j, --json  print one JSON document (fields: baton(1), JSON OUTPUT)\n"
		"  --no-bpf    do not load the BPF iterator; read options with pidfd_getfd\n"
		"  -v, --verbose  print the library's messages\n"
		"  -h, --help  this text\n\n"
		"As root it also names baton's pin directories in bpffs whose group is gone\n"
		"(stale baton pins), with the command that removes them.\n\n"
		"Options, groups and programs come from a BPF iterator, which needs root (or\n"
		"CAP_BPF and CAP_PERFMON); without it baton copies each socket from its owner\n"
		"with pidfd_getfd where allowed. Fields it could not read print as \"?\"\n"
		"(null in JSON) with the reason, never as a guess. The iterator's programs\n"
		"stay pinned in bpffs (/sys/fs/bpf/baton-ls) until reboot, so that the next\n"
		"run skips loading them.\n");
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "no-bpf", no_argument, NULL, 'B' },
		{ "record", no_argument, NULL, 'R' },	/* the tests' fixture format: not in --help */
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	BATON_OPTS(baton_collect_opts, co, .log = cli_log, .sock_sz = sizeof(struct baton_sock));
	struct ls_filter filter;
	struct baton_sock *socks = NULL;
	struct ls_stale *stale;
	long nstale, kstale = 0;
	bool json = false, record = false, filtered = false;
	size_t n = 0, k, kept = 0;
	int c, r, verbose = 0;
	char err[256];

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":javh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'a': co.udp_all = true; break;
		case 'B': co.no_iter = true; break;
		case 'R': record = true; break;
		case 'v': verbose++; break;
		case 'h': usage_ls(stdout); return 0;
		default:
			blog(BLOG_ERR, "baton ls", "unknown option \"%s\" (see baton ls --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (ls_filter_parse(argv[optind], &filter, err, sizeof(err))) {
			blog(BLOG_ERR, "baton ls", "%s", err);
			return EXIT_USAGE;
		}
		filtered = true;
		optind++;
	}
	if (optind < argc) {
		blog(BLOG_ERR, "baton ls", "unexpected argument \"%s\" (see baton ls --help)", argv[optind]);
		return EXIT_USAGE;
	}
	co.log_ctx = &verbose;
	/* the listing is written at once at the end: with 10,000 sockets the
	 * default 4 KiB buffer meant thousands of write calls */
	setvbuf(stdout, NULL, _IOFBF, 1u << 16);
	stale = calloc(MAX_STALE, sizeof(*stale));
	if (!stale)
		return 1;
	r = baton_socks_collect(&co, &socks, &n);
	if (r) {
		free(stale);
		blog(BLOG_ERR, "baton ls", "cannot list sockets: %s", strerror(-r));
		return 1;
	}
	nstale = record ? 0 : stale_pins(socks, n, stale);
	for (long i = 0; i < nstale; i++)
		if (!filtered || ls_stale_match(&filter, &stale[i]))
			stale[kstale++] = stale[i];
	for (k = 0; k < n; k++)
		if (!filtered || ls_filter_match(&filter, &socks[k]))
			socks[kept++] = socks[k];
	if (record)
		ls_record(stdout, socks, kept);
	else if (json)
		ls_render_json_stale(stdout, socks, kept, stale, nstale < 0 ? -1 : kstale);
	else {
		ls_render_text(stdout, socks, kept);
		ls_render_stale_text(stdout, stale, (size_t)kstale);
	}
	baton_socks_free(socks);
	free(stale);
	return fflush(stdout) ? 1 : 0;
}
