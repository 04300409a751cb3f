/* SPDX-License-Identifier: BSD-2-Clause */
/* The supervisor without processes of the unit tests (tests/fakesup.h):
 * what test_genstate, test_reload_items and test_status_text set up alike.
 * It registers no test of its own. */
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "fakesup.h"
#include "../../supervisor/gen.h"
#include "../../supervisor/state.h"

void bt_fake_sup(struct sup *s, struct sup_config *cfg, struct baton_spec *spec, const struct sup_ops *ops,
		 char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	char err[128], text[64];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* a port free now: the kernel's pick, given back */
	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	snprintf(text, sizeof(text), "tcp://127.0.0.1:%u", ntohs(a.sin_port));
	ASSERT_EQ(baton_spec_parse(text, spec, err, sizeof(err)), 0);
	sup_config_init(cfg);
	cfg->listen = spec;
	cfg->nlisten = 1;
	cfg->no_preload = true;
	cfg->argv = argv;
	setenv("BATON_STEERING", "cbpf", 1);
	ASSERT_EQ(sup_init(s, cfg, ops), 0);
	ASSERT_EQ(sup_make_groups(s), 0);
}

int bt_fake_first_gen(struct sup *s)
{
	int gi = start_gen(s, -1, 1);

	ASSERT_GE(gi, 0);
	s->active = gi;
	return gi;
}
