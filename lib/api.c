/* SPDX-License-Identifier: BSD-2-Clause */
/* What every part of the public interface shares: the library's version,
 * and the checked copies that let option and result structs grow without
 * breaking programs built against an older or newer baton.h. */
#include <errno.h>
#include <string.h>

#include "internal.h"

const char *baton_version(void)
{
	return BATON_VERSION;
}

int baton_opts_copy(void *dst, size_t dst_sz, const void *src, size_t known, const char *type, size_t log_off,
		    size_t ctx_off)
{
	const unsigned char *p = src;
	size_t sz, n, i;

	memset(dst, 0, dst_sz);
	if (!src) {
		memcpy(dst, &dst_sz, sizeof(dst_sz));
		return 0;
	}
	memcpy(&sz, src, sizeof(sz));
	if (sz < sizeof(sz))
		return -EINVAL;	/* too short to hold even the log callback */
	n = sz < known ? sz : known;
	memcpy(dst, src, n);
	for (i = known; i < sz; i++) {
		baton_log_fn log = NULL;
		void *ctx = NULL;

		if (!p[i])
			continue;
		/* a caller built against a newer baton.h set an option this
		 * library does not have: refusing beats ignoring it */
		if (n >= log_off + sizeof(log))
			memcpy(&log, p + log_off, sizeof(log));
		if (n >= ctx_off + sizeof(ctx))
			memcpy(&ctx, p + ctx_off, sizeof(ctx));
		baton_logf(log, ctx, BATON_LOG_ERROR,
			   "%s: byte %zu of %zu is not zero, but this libbaton %s knows only its first %zu bytes: "
			   "the program sets an option of a newer libbaton (link that one, or leave the option out)",
			   type, i, sz, BATON_VERSION, known);
		memset(dst, 0, dst_sz);
		return -EINVAL;
	}
	memcpy(dst, &dst_sz, sizeof(dst_sz));
	return 0;
}

int baton_out_copy(void *dst, size_t len, const void *src, size_t known, size_t min)
{
	if (!dst || len < min)
		return -EINVAL;
	memset(dst, 0, len);
	if (len > known)
		len = known;
	memcpy(dst, src, len);
	return (int)len;
}

/* The 0.1 sizes are where the last 0.1 field ends; that is sizeof in 0.1
 * only if 0.1 had no tail padding, which these asserts kept true. */
_Static_assert(BATON_MEMBER_HEALTH_SZ_0_1 % _Alignof(struct baton_member_health) == 0, "0.1 size");
_Static_assert(BATON_SLOT_STATS_SZ_0_1 % _Alignof(struct baton_slot_stats) == 0, "0.1 size");
_Static_assert(BATON_SOCK_SZ_0_1 % _Alignof(struct baton_sock) == 0, "0.1 size");
