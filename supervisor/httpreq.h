/* SPDX-License-Identifier: BSD-2-Clause */
/* The request head of --metrics-listen's HTTP server: one parser, with no
 * state and no I/O, so that it can be fuzzed alone (fuzz/mhttp_fuzz.c). */
#ifndef BATON_HTTPREQ_H
#define BATON_HTTPREQ_H

#include <stddef.h>

#define HTTPREQ_MAX 4096	/* a request head this long without its end is refused (431) */

/* The status to answer the request whose head starts BUF (LEN bytes read
 * so far): 0 while it is incomplete; 200 for GET /metrics (a query string
 * is ignored); 404 for another path; 405 for another method on /metrics;
 * 400 for a malformed request line or a NUL byte; 505 for an HTTP version
 * other than 1.0 and 1.1; 431 for a head of HTTPREQ_MAX bytes or more
 * without its blank line. */
int httpreq_parse(const char *buf, size_t len);

#endif
