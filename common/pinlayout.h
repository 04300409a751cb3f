/* SPDX-License-Identifier: BSD-2-Clause */
/* The one place that knows where baton pins in bpffs, for baton run,
 * baton steer and baton ls (the file names inside a group's directory are
 * in bpf/steer.h, with the maps they pin):
 *   BASE/baton/                   BASE: $BATON_BPFFS, else /sys/fs/bpf
 *   BASE/baton/steer-ADDR-PORT/   a group of baton steer (. and : of ADDR as _)
 *   BASE/baton/run-NAME/lN/       listener N of supervisor NAME (. as _); with
 *                                 eBPF l0 holds the steering set of every
 *                                 listener (lib/steer_set.c); no l1... is made */
#ifndef BATON_PINLAYOUT_H
#define BATON_PINLAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define PIN_BASE_DEFAULT "/sys/fs/bpf"

/* $BATON_BPFFS if set and not empty, else PIN_BASE_DEFAULT. */
const char *pin_base(void);

/* BASE/baton into BUF; -ENAMETOOLONG if it does not fit. */
int pin_root(char *buf, size_t len);

/* The directory of baton steer's group on FAMILY's ADDR (network order,
 * 4 or 16 bytes) and PORT. */
int pin_steer_dir(char *buf, size_t len, int family, const void *addr, uint16_t port);

/* The directory of supervisor NAME's groups. */
int pin_run_dir(char *buf, size_t len, const char *name);

/* Listener L's group under RUN_DIR (pin_run_dir). */
int pin_listener_dir(char *buf, size_t len, const char *run_dir, int l);

/* Mounts bpffs at BASE unless one is there (a fresh host, a namespace of
 * its own): 0, or -errno of the mount (-EPERM: needs CAP_SYS_ADMIN). */
int pin_bpffs_mount(const char *base);

#endif
