/* SPDX-License-Identifier: BSD-2-Clause */
/* Where `baton run` finds libbaton-preload.so, in a build tree and once
 * installed (make install puts it in $(LIBDIR)/baton, not next to baton). */
#ifndef BATON_PRELOAD_PATH_H
#define BATON_PRELOAD_PATH_H

#include <stddef.h>

/* The shim named by $BATON_PRELOAD_LIB if set (and nothing else: the user
 * chose it), else the one next to the running executable (a build tree, a
 * relocated install), else the one in the directory baton was built for
 * (BATON_PRELOAD_DIR). Returns 0 with the path in BUF; -errno if none is
 * readable, with BUF naming the path a fix would put it at. */
int preload_path_find(char *buf, size_t len);

#endif
