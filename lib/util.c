/* SPDX-License-Identifier: BSD-2-Clause */
/* One home for the helpers that lib/, supervisor/ and cli/ share: clocks,
 * /proc readers and JSON string escaping (see util.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

long long baton_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

long long baton_mono_ms(void)
{
	return baton_mono_us() / 1000;
}

long long baton_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int baton_proc_stat_parse(const char *text, struct baton_proc_stat *st)
{
	const char *p = strrchr(text, ')');	/* the name may hold ')' itself */
	int ppid;

	if (!p || p[1] != ' ')
		return -EINVAL;
	/* fields after the name: state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime stime cutime cstime priority nice
	 * num_threads itrealvalue starttime */
	if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &st->state, &ppid, &st->start) != 3)
		return -EINVAL;
	st->ppid = ppid;
	return 0;
}

int baton_proc_stat(pid_t pid, int fd, struct baton_proc_stat *st)
{
	char path[64], buf[1024];
	bool own = pid > 0;
	ssize_t n;

	if (own) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -ESRCH;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (own)
		close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	return baton_proc_stat_parse(buf, st) ? -ESRCH : 0;
}

int baton_proc_children(pid_t pid, pid_t *out, int max)
{
	char path[64], buf[4096], *tok, *save = NULL;
	ssize_t got;
	int fd, n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[got > 0 ? got : 0] = '\0';
	for (tok = strtok_r(buf, " \n", &save); tok && n < max; tok = strtok_r(NULL, " \n", &save))
		out[n++] = (pid_t)atoi(tok);
	return n;
}

int baton_proc_sockets(pid_t pid, unsigned budget, baton_proc_socket_fn fn, void *ctx)
{
	char path[64];
	struct dirent *e;
	int dfd, r = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while (!r && budget-- > 0 && (e = readdir(d))) {
		unsigned long long inode;
		char link[64];
		ssize_t len;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		len = readlinkat(dfd, e->d_name, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%llu]", &inode) == 1)
			r = fn(ctx, atoi(e->d_name), inode);
	}
	closedir(d);
	return r;
}

struct socket_fd_ctx {
	unsigned long long inode;
	int fd;
};

static int is_inode(void *ctx, int fd, unsigned long long inode)
{
	struct socket_fd_ctx *c = ctx;

	if (inode != c->inode)
		return 0;
	c->fd = fd;
	return 1;
}

int baton_proc_socket_fd(pid_t pid, unsigned budget, unsigned long long inode)
{
	struct socket_fd_ctx c = { .inode = inode, .fd = -1 };
	int r = baton_proc_sockets(pid, budget, is_inode, &c);

	return r < 0 ? r : r == 1 ? c.fd : -ENOENT;
}

static unsigned utf8_char(const unsigned char *s, unsigned *cp);
static bool cp_unsafe(unsigned cp);

/* JSON must be valid UTF-8: a byte that is not becomes U+FFFD; the
 * characters a terminal acts on (C1 controls, bidi) are written \uXXXX,
 * which keeps them and keeps a terminal that shows the document safe. */
void baton_json_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		unsigned c = *s, cp, n;

		if (c < 0x80) {
			if (c == '"' || c == '\\')
				fprintf(f, "\\%c", c);
			else if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc((int)c, f);
			s++;
		} else if (!(n = utf8_char(s, &cp))) {
			fputs("\\ufffd", f);
			s++;
		} else {
			if (cp_unsafe(cp))
				fprintf(f, "\\u%04x", cp);
			else
				fwrite(s, 1, n, f);
			s += n;
		}
	}
	fputc('"', f);
}

uint32_t baton_hash32(const char *str)
{
	uint32_t h = 2166136261u;

	for (; *str; str++)
		h = (h ^ (unsigned char)*str) * 16777619u;
	return h;
}

/* The length of the valid UTF-8 character at S (2 to 4 bytes: whole, not
 * overlong, no surrogate, at most U+10FFFF) with its code point in *CP, or
 * 0 for a byte that starts none. */
static unsigned utf8_char(const unsigned char *s, unsigned *cp)
{
	unsigned c = s[0], i, n;

	n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	*cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (!n || (n == 3 && *cp < 0x800) || (n == 4 && (*cp < 0x10000 || *cp > 0x10ffff)) ||
	    (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

/* Valid characters a terminal acts on: the C1 controls (ESC's 8-bit
 * twins: U+009B is CSI), line separators and bidi controls. */
static bool cp_unsafe(unsigned cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The next token of STR for a terminal: the bytes themselves (a printable
 * ASCII character or a whole valid UTF-8 character that is no control), or
 * their escape. Fills TOK (NUL-terminated), returns the bytes of STR used. */
static size_t esc_token(const unsigned char *s, unsigned flags, char tok[20])
{
	unsigned c = s[0], cp, i, n;

	if (c >= 0x20 && c < 0x7f) {
		if (c == '\\' && !(flags & BATON_ESC_LINES)) {
			strcpy(tok, "\\\\");
			return 1;
		}
		tok[0] = (char)c;
		tok[1] = '\0';
		return 1;
	}
	if ((flags & BATON_ESC_LINES) && (c == '\n' || c == '\t')) {
		tok[0] = (char)c;
		tok[1] = '\0';
		return 1;
	}
	n = c >= 0x80 ? utf8_char(s, &cp) : 0;
	if (n && !cp_unsafe(cp)) {
		memcpy(tok, s, n);
		tok[n] = '\0';
		return n;
	}
	/* a control, a byte that is not UTF-8, or a character shown escaped:
	 * every byte of it as \xHH */
	if (!n)
		n = 1;
	for (i = 0; i < n; i++)
		snprintf(tok + 4 * i, 5, "\\x%02x", s[i]);
	return n;
}

char *baton_text_escape(char *out, size_t len, const char *str, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t used = 0;
	char tok[20];

	if (!len)
		return out;
	while (*s) {
		size_t k = esc_token(s, flags, tok), tl = strlen(tok);

		if (used + tl >= len)
			break;	/* never half an escape */
		memcpy(out + used, tok, tl);
		used += tl;
		s += k;
	}
	out[used] = '\0';
	return out;
}

void baton_text_fputs(FILE *f, const char *str, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)str;
	char tok[20];

	while (*s) {
		s += esc_token(s, flags, tok);
		fputs(tok, f);
	}
}

int baton_unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(path);

	if (n == 0 || (n == 1 && path[0] == '@'))
		return -EINVAL;
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@')	/* abstract namespace, as systemd writes it */
		sun->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}
