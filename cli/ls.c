/* `baton ls`: collects every listening socket through the library (sock_diag,
 * the BPF iterator or the pidfd fallback, /proc) and prints it with
 * cli/lsfmt.c, as a table grouped by reuseport group or as one JSON document. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lsfmt.h"

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
		"  --json      print one JSON document (fields: baton(1), JSON OUTPUT)\n"
		"  --no-bpf    do not load the BPF iterator; read options with pidfd_getfd\n"
		"  --record    print the collected data in the fixture format of the tests\n"
		"  -v, --verbose  print the library's messages\n"
		"  -h, --help  this text\n\n"
		"Options, groups and programs come from a BPF iterator, which needs root (or\n"
		"CAP_BPF and CAP_PERFMON); without it baton copies each socket from its owner\n"
		"with pidfd_getfd where allowed. Fields it could not read print as \"?\"\n"
		"(null in JSON) with the reason, never as a guess.\n");
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "no-bpf", no_argument, NULL, 'B' },
		{ "record", no_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	BATON_OPTS(baton_collect_opts, co, .log = cli_log, .sock_sz = sizeof(struct baton_sock));
	struct ls_filter filter;
	struct baton_sock *socks = NULL;
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
			fprintf(stderr, "baton ls: unknown option \"%s\" (see baton ls --help)\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (ls_filter_parse(argv[optind], &filter, err, sizeof(err))) {
			fprintf(stderr, "baton ls: %s\n", err);
			return EXIT_USAGE;
		}
		filtered = true;
		optind++;
	}
	if (optind < argc) {
		fprintf(stderr, "baton ls: unexpected argument \"%s\" (see baton ls --help)\n", argv[optind]);
		return EXIT_USAGE;
	}
	co.log_ctx = &verbose;
	r = baton_socks_collect(&co, &socks, &n);
	if (r) {
		fprintf(stderr, "baton ls: cannot list sockets: %s\n", strerror(-r));
		return 1;
	}
	for (k = 0; k < n; k++)
		if (!filtered || ls_filter_match(&filter, &socks[k]))
			socks[kept++] = socks[k];
	if (record)
		ls_record(stdout, socks, kept);
	else if (json)
		ls_render_json(stdout, socks, kept);
	else
		ls_render_text(stdout, socks, kept);
	baton_socks_free(socks);
	return fflush(stdout) ? 1 : 0;
}
