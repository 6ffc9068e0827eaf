/* The wire test vectors in proto/vectors/ (format: proto/vectors/README.md)
 * run against ferry's real codec: one cmocka test per vector file.
 *
 * A vector is the bytes of one frame.  The header is checked with
 * frame_decode_hdr for the vector's direction and negotiated maximum, the
 * payload with the message's decoder (PAGES entry by entry against the
 * context device, LZ4 blocks decompressed, nothing left over: as the
 * receiver applies it).  A valid vector must decode to exactly its listed
 * fields and re-encode with ferry's encoders to the same bytes; an invalid
 * one must fail with exactly its listed error code.
 *
 * QSTREAM is decoded the same way: the header, count items against the
 * block table (context qblocks, then any BLOCKS item), LZ4 pages
 * decompressed to 4096 bytes, nothing left over.
 *
 * Then: at least 60 vectors, every frame type 1..19 in a valid vector,
 * every PAGES entry kind (and a short last unit) in a valid vector, and
 * every QSTREAM item type and page kind in a valid vector. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_lz4.h"
#include "err.h"
#include "ferry_proto.h"
#include "frame.h"
#include "msg.h"
#include "msg_qemu.h"
#include "rd.h"
#include "wr.h"

#define VEC_DIR "proto/vectors"
#define MIN_VECTORS 60

/* ---- a vector file ---- */

struct field {
	char *key;
	char *val;
	int line;
	int seen;
};

struct vec {
	char *file;             /* path, for messages */
	char *stem;             /* file name without .vec: the test name */
	char *name;
	int dir;                /* FDIR_S2R or FDIR_R2S */
	uint32_t max_payload;
	struct dev_desc ctx[FERRY_MAX_DEVICES];
	uint32_t nctx;
	struct qitem_block *qctx;   /* the session's block table, FERRY_QBLOCKS_MAX */
	uint32_t nqctx;
	uint8_t *bytes;
	size_t n, cap;
	int valid;              /* 1, 0, or -1 when missing */
	int reencode;
	int have_err;
	int err_code;
	char *contains;
	struct field *f;
	size_t nf, fcap;
	char perr[512];         /* first format error: the test fails with it */
};

static struct vec **g_vecs;
static size_t g_nvec;

static void
perr(struct vec *v, int line, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (v->perr[0] != '\0')
		return;
	k = snprintf(v->perr, sizeof(v->perr), "line %d: ", line);
	va_start(ap, fmt);
	vsnprintf(v->perr + k, sizeof(v->perr) - (size_t)k, fmt, ap);
	va_end(ap);
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		abort();
	return q;
}

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Wire code name -> ferr code ("PROTO_RANGE" -> -14), by ferr_name. */
static int
code_by_name(const char *name, int *code)
{
	int c;

	for (c = 0; c >= -64; c--) {
		const char *n = ferr_name(c);

		if (strcmp(n, "UNKNOWN") != 0 && strcmp(n, name) == 0) {
			*code = c;
			return 0;
		}
	}
	return -1;
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return (errno != 0 || *end != '\0') ? -1 : 0;
}

static void
add_field(struct vec *v, const char *key, const char *val, int line)
{
	size_t i;

	for (i = 0; i < v->nf; i++)
		if (strcmp(v->f[i].key, key) == 0) {
			perr(v, line, "field %s listed twice", key);
			return;
		}
	if (v->nf == v->fcap) {
		v->fcap = v->fcap ? 2 * v->fcap : 32;
		v->f = xrealloc(v->f, v->fcap * sizeof(*v->f));
	}
	v->f[v->nf].key = xstrdup(key);
	v->f[v->nf].val = xstrdup(val);
	v->f[v->nf].line = line;
	v->f[v->nf].seen = 0;
	v->nf++;
}

/* "KEY=VALUE", or "pre[A..B].rest=VALUE" with {i} in VALUE. */
static void
parse_field(struct vec *v, char *s, int line)
{
	char *eq = strchr(s, '='), *lb, *dots, *rb;
	unsigned long a, b, i;

	if (eq == NULL || eq == s) {
		perr(v, line, "field without KEY=VALUE");
		return;
	}
	*eq = '\0';
	lb = strchr(s, '[');
	dots = lb ? strstr(lb, "..") : NULL;
	rb = lb ? strchr(lb, ']') : NULL;
	if (lb == NULL || dots == NULL || rb == NULL || dots > rb) {
		add_field(v, s, eq + 1, line);
		return;
	}
	a = strtoul(lb + 1, NULL, 10);
	b = strtoul(dots + 2, NULL, 10);
	if (b < a || b - a > 100000) {
		perr(v, line, "bad range in %s", s);
		return;
	}
	for (i = a; i <= b; i++) {
		char key[128], val[256], num[24];
		const char *src = eq + 1, *ph;
		size_t k = 0;

		snprintf(key, sizeof(key), "%.*s[%lu]%s", (int)(lb - s), s, i, rb + 1);
		snprintf(num, sizeof(num), "%lu", i);
		val[0] = '\0';
		while ((ph = strstr(src, "{i}")) != NULL && k < sizeof(val) - 32) {
			k += (size_t)snprintf(val + k, sizeof(val) - k, "%.*s%s", (int)(ph - src), src, num);
			src = ph + 3;
		}
		snprintf(val + k, sizeof(val) - k, "%s", src);
		add_field(v, key, val, line);
	}
}

static void
parse_hex(struct vec *v, char *s, int line)
{
	char *hash = strchr(s, '#');
	int hi = -1;

	if (hash != NULL)
		*hash = '\0';
	for (; *s; s++) {
		int x;

		if (*s == ' ' || *s == '\t' || *s == '\r')
			continue;
		if ((x = hexval((unsigned char)*s)) < 0) {
			perr(v, line, "bad hex character '%c'", *s);
			return;
		}
		if (hi < 0) {
			hi = x;
			continue;
		}
		if (v->n == v->cap) {
			v->cap = v->cap ? 2 * v->cap : 256;
			v->bytes = xrealloc(v->bytes, v->cap);
		}
		v->bytes[v->n++] = (uint8_t)(hi << 4 | x);
		hi = -1;
	}
	if (hi >= 0)
		perr(v, line, "odd number of hex digits");
}

/* "qblock id=pc.ram len=65536": one entry of the session's block table */
static void
parse_qblock(struct vec *v, char *s, int line)
{
	struct qitem_block *b;
	char *tok, *save = NULL;
	int have = 0;

	if (v->qctx == NULL && (v->qctx = calloc(FERRY_QBLOCKS_MAX, sizeof(*v->qctx))) == NULL)
		abort();
	if (v->nqctx == FERRY_QBLOCKS_MAX) {
		perr(v, line, "too many context qblocks");
		return;
	}
	b = &v->qctx[v->nqctx];
	for (tok = strtok_r(s, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');

		if (eq == NULL) {
			perr(v, line, "context: '%s' is not KEY=VALUE", tok);
			return;
		}
		*eq++ = '\0';
		if (strcmp(tok, "id") == 0 && strlen(eq) >= 1 && strlen(eq) <= FERRY_QBLOCK_ID_MAX) {
			b->id_len = (uint8_t)strlen(eq);
			memcpy(b->id, eq, b->id_len + 1);
			have |= 1;
		} else if (strcmp(tok, "len") == 0 && parse_u64(eq, &b->len) == 0) {
			have |= 2;
		} else {
			perr(v, line, "context: qblock %s=%s", tok, eq);
		}
	}
	if (have != 3)
		perr(v, line, "context: a qblock needs id and len");
	v->nqctx++;
}

/* "device id=1 kind=memory unit=4096 size=16384" */
static void
parse_context(struct vec *v, char *s, int line)
{
	struct dev_desc *d;
	char *tok, *save = NULL;
	int have = 0;

	if (strncmp(s, "qblock ", 7) == 0) {
		parse_qblock(v, s + 7, line);
		return;
	}
	if (strncmp(s, "device ", 7) != 0) {
		perr(v, line, "context: only 'device ...' and 'qblock ...' are known");
		return;
	}
	if (v->nctx == FERRY_MAX_DEVICES) {
		perr(v, line, "too many context devices");
		return;
	}
	d = &v->ctx[v->nctx];
	memset(d, 0, sizeof(*d));
	for (tok = strtok_r(s + 7, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t x;

		if (eq == NULL) {
			perr(v, line, "context: '%s' is not KEY=VALUE", tok);
			return;
		}
		*eq++ = '\0';
		if (strcmp(tok, "kind") == 0) {
			if (strcmp(eq, "memory") == 0)
				d->kind = DK_MEMORY;
			else if (strcmp(eq, "disk") == 0)
				d->kind = DK_DISK;
			else
				perr(v, line, "context: kind %s", eq);
			continue;
		}
		if (strcmp(tok, "name") == 0) {
			snprintf(d->name, sizeof(d->name), "%s", eq);
			continue;
		}
		if (parse_u64(eq, &x) != 0) {
			perr(v, line, "context: %s=%s is not a number", tok, eq);
			return;
		}
		if (strcmp(tok, "id") == 0)
			d->id = (uint32_t)x, have |= 1;
		else if (strcmp(tok, "unit") == 0)
			d->unit = (uint32_t)x, have |= 2;
		else if (strcmp(tok, "size") == 0)
			d->size = x, have |= 4;
		else
			perr(v, line, "context: unknown key %s", tok);
	}
	if (have != 7 || d->unit == 0 || d->size == 0)
		perr(v, line, "context: a device needs id, unit and size (non-zero)");
	v->nctx++;
}

static struct vec *
load_vector(const char *dir, const char *fname)
{
	struct vec *v = calloc(1, sizeof(*v));
	char path[4096], buf[8192];
	FILE *fp;
	int line = 0, seen_name = 0;

	if (v == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/%s", dir, fname);
	v->file = xstrdup(path);
	v->stem = xstrdup(fname);
	v->stem[strlen(v->stem) - 4] = '\0';
	v->valid = -1;
	v->reencode = 1;
	v->max_payload = FERRY_MAX_FRAME_DEFAULT;
	fp = fopen(path, "r");
	if (fp == NULL) {
		perr(v, 0, "cannot open: %s", strerror(errno));
		return v;
	}
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		char *s, *colon, *key, *val;

		line++;
		if (strchr(buf, '\n') == NULL && !feof(fp)) {
			perr(v, line, "line too long");
			break;
		}
		s = trim(buf);
		if (*s == '\0' || *s == '#')
			continue;
		colon = strchr(s, ':');
		if (colon == NULL) {
			perr(v, line, "not KEY: VALUE");
			continue;
		}
		*colon = '\0';
		key = trim(s);
		val = trim(colon + 1);
		if (strcmp(key, "hex") == 0) {
			parse_hex(v, val, line);
		} else if (strcmp(key, "field") == 0) {
			parse_field(v, val, line);
		} else if (strcmp(key, "name") == 0) {
			if (seen_name++)
				perr(v, line, "name twice");
			v->name = xstrdup(val);
		} else if (strcmp(key, "direction") == 0) {
			if (strcmp(val, "S2R") == 0)
				v->dir = FDIR_S2R;
			else if (strcmp(val, "R2S") == 0)
				v->dir = FDIR_R2S;
			else
				perr(v, line, "direction must be S2R or R2S");
		} else if (strcmp(key, "context") == 0) {
			parse_context(v, val, line);
		} else if (strcmp(key, "max-payload") == 0) {
			uint64_t x;

			if (parse_u64(val, &x) != 0 || x > UINT32_MAX)
				perr(v, line, "bad max-payload");
			v->max_payload = (uint32_t)x;
		} else if (strcmp(key, "valid") == 0) {
			if (v->valid != -1)
				perr(v, line, "valid twice");
			v->valid = strcmp(val, "yes") == 0 ? 1 : strcmp(val, "no") == 0 ? 0 : -2;
			if (v->valid == -2)
				perr(v, line, "valid must be yes or no");
		} else if (strcmp(key, "reencode") == 0) {
			if (strcmp(val, "yes") == 0)
				v->reencode = 1;
			else if (strcmp(val, "no") == 0)
				v->reencode = 0;
			else
				perr(v, line, "reencode must be yes or no");
		} else if (strcmp(key, "error") == 0) {
			if (v->have_err++)
				perr(v, line, "error twice");
			if (code_by_name(val, &v->err_code) != 0)
				perr(v, line, "error %s is not a ferr_name", val);
		} else if (strcmp(key, "message-contains") == 0) {
			free(v->contains);
			v->contains = xstrdup(val);
		} else if (strcmp(key, "spec") == 0 || strcmp(key, "note") == 0 ||
		    strcmp(key, "ambiguous") == 0) {
			/* informative */
		} else {
			perr(v, line, "unknown key '%s'", key);
		}
	}
	fclose(fp);
	if (v->name == NULL)
		perr(v, line, "no name");
	else if (strcmp(v->name, v->stem) != 0)
		perr(v, line, "name %s differs from the file name %s.vec", v->name, v->stem);
	if (v->dir == 0)
		perr(v, line, "no direction");
	if (v->valid < 0)
		perr(v, line, "no valid: line");
	if (v->n == 0)
		perr(v, line, "no hex bytes");
	if (v->valid == 1 && (v->have_err || v->contains))
		perr(v, line, "a valid vector has no error/message-contains");
	if (v->valid == 0 && !v->have_err)
		perr(v, line, "an invalid vector needs error:");
	if (v->valid == 0 && v->nf != 0)
		perr(v, line, "an invalid vector has no field lines");
	return v;
}

static void
free_vector(struct vec *v)
{
	size_t i;

	for (i = 0; i < v->nf; i++) {
		free(v->f[i].key);
		free(v->f[i].val);
	}
	free(v->f);
	free(v->qctx);
	free(v->bytes);
	free(v->contains);
	free(v->name);
	free(v->stem);
	free(v->file);
	free(v);
}

/* ---- decoded fields ---- */

enum okind { O_NUM, O_STR, O_BYTES };

struct out {
	char key[64];
	int kind;
	uint64_t num;
	uint8_t *b;             /* O_STR, O_BYTES */
	size_t blen;
};

struct outs {
	struct out *o;
	size_t n, cap;
};

static struct out *
out_add(struct outs *os, int kind, const char *fmt, ...) FERRY_PRINTF(3, 4);

static struct out *
out_add(struct outs *os, int kind, const char *fmt, ...)
{
	struct out *o;
	va_list ap;

	if (os->n == os->cap) {
		os->cap = os->cap ? 2 * os->cap : 64;
		os->o = xrealloc(os->o, os->cap * sizeof(*os->o));
	}
	o = &os->o[os->n++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	va_start(ap, fmt);
	vsnprintf(o->key, sizeof(o->key), fmt, ap);
	va_end(ap);
	return o;
}

#define OUT_NUM(os, val, ...) (out_add((os), O_NUM, __VA_ARGS__)->num = (uint64_t)(val))

static void
out_blob(struct outs *os, int kind, const void *p, size_t n, const char *key)
{
	struct out *o = out_add(os, kind, "%s", key);

	o->b = malloc(n ? n : 1);
	if (o->b == NULL)
		abort();
	if (n)
		memcpy(o->b, p, n);
	o->blen = n;
}

static void
outs_free(struct outs *os)
{
	size_t i;

	for (i = 0; i < os->n; i++)
		free(os->o[i].b);
	free(os->o);
	memset(os, 0, sizeof(*os));
}

static uint64_t
fnv1a64(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Symbolic values where PROTOCOL.md names them. */
static int
sym_value(const char *key, const char *val, uint64_t *out)
{
	const char *last = strrchr(key, '.');
	int c;
	unsigned t;

	last = last ? last + 1 : key;
	if (strcmp(last, "type") == 0 && strncmp(key, "item[", 5) == 0) {
		static const char *const qi[] = { NULL, "OPAQUE", "BLOCKS", "PAGE" };

		for (t = 1; t < 4; t++)
			if (strcmp(qi[t], val) == 0)
				return (int)(*out = t, 0);
	} else if (strcmp(last, "kind") == 0 && strncmp(key, "item[", 5) == 0) {
		static const char *const pk[] = { NULL, "ZERO", "REF", "LZ4", "RAW" };

		for (t = 1; t < 5; t++)
			if (strcmp(pk[t], val) == 0)
				return (int)(*out = t, 0);
	} else if (strcmp(last, "type") == 0) {
		for (t = 1; t < FT_COUNT; t++)
			if (strcmp(frame_name((uint8_t)t), val) == 0)
				return (int)(*out = t, 0);
	} else if (strcmp(last, "kind") == 0 && strncmp(key, "entry[", 6) == 0) {
		static const char *const pk[] = { NULL, "ZERO", "REF", "LZ4", "RAW" };

		for (t = 1; t < 5; t++)
			if (strcmp(pk[t], val) == 0)
				return (int)(*out = t, 0);
	} else if (strcmp(last, "kind") == 0 && strncmp(key, "dev[", 4) == 0) {
		if (strcmp(val, "memory") == 0)
			return (int)(*out = DK_MEMORY, 0);
		if (strcmp(val, "disk") == 0)
			return (int)(*out = DK_DISK, 0);
		if (strcmp(val, "qemu") == 0)
			return (int)(*out = DK_QEMU, 0);
	} else if (strcmp(last, "status") == 0 && strncmp(key, "row[", 4) == 0) {
		static const char *const cs[] = { NULL, "PASS", "FAIL", "WAIVED" };

		for (t = 1; t < 4; t++)
			if (strcmp(cs[t], val) == 0)
				return (int)(*out = t, 0);
	} else if (strcmp(last, "status") == 0) {
		static const char *const rs[] = { NULL, "RECEIVING", "COMMITTED", "FAILED" };

		for (t = 1; t < 4; t++)
			if (strcmp(rs[t], val) == 0)
				return (int)(*out = t, 0);
	} else if (strcmp(last, "code") == 0) {
		if (code_by_name(val, &c) == 0 && c < 0)
			return (int)(*out = (uint64_t)-c, 0);
	}
	return -1;
}

/* "..." with \\ \" \n \t \xHH -> bytes. */
static int
unquote(const char *s, uint8_t **out, size_t *n)
{
	size_t len = strlen(s), k = 0, i;
	uint8_t *b;

	if (len < 2 || s[0] != '"' || s[len - 1] != '"')
		return -1;
	b = malloc(len);
	if (b == NULL)
		abort();
	for (i = 1; i < len - 1; i++) {
		if (s[i] != '\\') {
			b[k++] = (uint8_t)s[i];
			continue;
		}
		if (++i >= len - 1)
			goto bad;
		switch (s[i]) {
		case '\\': b[k++] = '\\'; break;
		case '"': b[k++] = '"'; break;
		case 'n': b[k++] = '\n'; break;
		case 't': b[k++] = '\t'; break;
		case 'x': {
			int h1, h2;

			if (i + 2 >= len - 1 || (h1 = hexval((unsigned char)s[i + 1])) < 0 ||
			    (h2 = hexval((unsigned char)s[i + 2])) < 0)
				goto bad;
			b[k++] = (uint8_t)(h1 << 4 | h2);
			i += 2;
			break;
		}
		default:
			goto bad;
		}
	}
	*out = b;
	*n = k;
	return 0;
bad:
	free(b);
	return -1;
}

static int
unhex(const char *s, uint8_t **out, size_t *n)
{
	size_t len = strlen(s), i;
	uint8_t *b;

	if (len % 2 != 0)
		return -1;
	b = malloc(len / 2 + 1);
	if (b == NULL)
		abort();
	for (i = 0; i < len / 2; i++) {
		int h1 = hexval((unsigned char)s[2 * i]), h2 = hexval((unsigned char)s[2 * i + 1]);

		if (h1 < 0 || h2 < 0) {
			free(b);
			return -1;
		}
		b[i] = (uint8_t)(h1 << 4 | h2);
	}
	*out = b;
	*n = len / 2;
	return 0;
}

/* Append to a report buffer. */
struct report {
	char buf[4096];
	size_t len;
	int bad;
	unsigned lines;         /* lines reported; after 24 only counted */
};

static void
rep(struct report *r, const char *fmt, ...) FERRY_PRINTF(2, 3);

static void
rep(struct report *r, const char *fmt, ...)
{
	va_list ap;
	int k;

	r->bad = 1;
	if (++r->lines > 24 || r->len >= sizeof(r->buf) - 2)
		return;
	va_start(ap, fmt);
	k = vsnprintf(r->buf + r->len, sizeof(r->buf) - r->len, fmt, ap);
	va_end(ap);
	if (k > 0)
		r->len += (size_t)k;
	if (r->len >= sizeof(r->buf) - 2)
		r->len = sizeof(r->buf) - 2;
	r->buf[r->len++] = '\n';
	r->buf[r->len] = '\0';
}

static void
show_out(const struct out *o, char *s, size_t n)
{
	size_t i, k = 0;

	if (o->kind == O_NUM) {
		snprintf(s, n, "%llu (0x%llx)", (unsigned long long)o->num, (unsigned long long)o->num);
		return;
	}
	if (o->kind == O_STR && k + 1 < n)
		s[k++] = '"';
	for (i = 0; i < o->blen && k + 8 < n; i++) {
		uint8_t c = o->b[i];

		if (o->kind == O_BYTES)
			k += (size_t)snprintf(s + k, n - k, "%02x", c);
		else if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			s[k++] = (char)c;
		else
			k += (size_t)snprintf(s + k, n - k, "\\x%02x", c);
	}
	if (i < o->blen && k + 4 < n)
		k += (size_t)snprintf(s + k, n - k, "...");
	if (o->kind == O_STR && k + 1 < n)
		s[k++] = '"';
	s[k < n ? k : n - 1] = '\0';
}

static void
compare_fields(struct vec *v, const struct outs *os, struct report *r)
{
	size_t i, j;

	for (i = 0; i < v->nf; i++)
		v->f[i].seen = 0;
	for (i = 0; i < os->n; i++) {
		const struct out *o = &os->o[i];
		struct field *f = NULL;
		char got[160];

		for (j = 0; j < v->nf; j++)
			if (strcmp(v->f[j].key, o->key) == 0) {
				f = &v->f[j];
				break;
			}
		show_out(o, got, sizeof(got));
		if (f == NULL) {
			rep(r, "decoded %s=%s, which the vector does not list", o->key, got);
			continue;
		}
		f->seen = 1;
		if (o->kind == O_NUM) {
			uint64_t want;

			if (sym_value(o->key, f->val, &want) != 0 && parse_u64(f->val, &want) != 0)
				rep(r, "line %d: %s=%s is not a number", f->line, o->key, f->val);
			else if (want != o->num)
				rep(r, "%s: decoded %s, vector says %s", o->key, got, f->val);
		} else {
			uint8_t *want = NULL;
			size_t wn = 0;
			int rc = o->kind == O_STR ? unquote(f->val, &want, &wn) : unhex(f->val, &want, &wn);

			if (rc != 0)
				rep(r, "line %d: %s=%s is not a %s", f->line, o->key, f->val,
				    o->kind == O_STR ? "quoted string" : "hex byte string");
			else if (wn != o->blen || (wn && memcmp(want, o->b, wn) != 0))
				rep(r, "%s: decoded %s, vector says %s", o->key, got, f->val);
			free(want);
		}
	}
	for (j = 0; j < v->nf; j++)
		if (!v->f[j].seen)
			rep(r, "line %d: vector lists %s=%s, the decoder gives no such field", v->f[j].line,
			    v->f[j].key, v->f[j].val);
}

/* ---- decoding with ferry's codec ---- */

struct decoded {
	struct frame_hdr h;
	union {
		struct msg_hello hello;
		struct msg_welcome welcome;
		struct msg_manifest man;
		struct msg_accept acc;
		struct msg_text text;
		struct msg_seq seq;
		struct msg_state st;
		struct msg_commit commit;
		struct msg_resume resume;
		struct msg_resumed resumed;
		struct msg_domain domain;
		struct msg_checks checks;
		struct msg_qreturn qret;
		struct msg_have have;
	} u;
	struct msg_pages ph;
	struct page_entry *pe;
	uint64_t *unit_fnv;
	uint32_t npe;
	/* QSTREAM */
	struct msg_qstream qh;
	struct qitem *qi;
	uint64_t *qpage_fnv;        /* LZ4 items: FNV-1a of the decompressed page */
	uint32_t nqi;
	struct qitem_block *qtab;   /* the block table after the frame */
	uint32_t qnblocks;
};

static const struct dev_desc *
ctx_device(const struct vec *v, uint32_t id)
{
	uint32_t i;

	for (i = 0; i < v->nctx; i++)
		if (v->ctx[i].id == id)
			return &v->ctx[i];
	return NULL;
}

/* PAGES as the receiver applies it (rsess.c on_pages/apply_entry, minus the
 * session checks): header, entries against the device, LZ4 decompressed to
 * the unit, nothing left over. */
static int
decode_pages(const struct vec *v, const uint8_t *p, size_t n, struct decoded *d, struct ferr *e)
{
	const struct dev_desc *dev;
	struct rd r;
	uint32_t i;
	int rc;

	rd_init(&r, p, n);
	if ((rc = msg_pages_decode(&r, &d->ph, e)) != 0)
		return rc;
	dev = ctx_device(v, d->ph.device);
	if (dev == NULL)
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: device %u not in manifest (test context)",
		    d->ph.device);
	d->pe = calloc(d->ph.count, sizeof(*d->pe));
	d->unit_fnv = calloc(d->ph.count, sizeof(*d->unit_fnv));
	if (d->pe == NULL || d->unit_fnv == NULL)
		abort();
	for (i = 0; i < d->ph.count; i++) {
		struct page_entry *pe = &d->pe[i];

		if ((rc = msg_page_next(&r, dev, pe, e)) != 0)
			return rc;
		d->npe = i + 1;
		if (pe->kind == PK_LZ4) {
			char what[64];
			uint8_t *unit = malloc(pe->len ? pe->len : 1);

			if (unit == NULL)
				abort();
			snprintf(what, sizeof(what), "PAGES: LZ4 entry %u", pe->index);
			rc = codec_lz4_decode(pe->data, pe->data_len, unit, pe->len, what, e);
			if (rc == 0)
				d->unit_fnv[i] = fnv1a64(unit, pe->len);
			free(unit);
			if (rc != 0)
				return rc;
		}
	}
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: %zu bytes after %u entries", rd_left(&r),
		    d->ph.count);
	return 0;
}

/* QSTREAM as the receiver applies it: header, count items against the
 * session's block table (the context's, filled by a BLOCKS item), LZ4
 * pages decompressed to 4096 bytes, nothing left over. */
static int
decode_qstream(const struct vec *v, const uint8_t *p, size_t n, struct decoded *d, struct ferr *e)
{
	struct rd r;
	uint32_t i;
	int rc;

	d->qtab = calloc(FERRY_QBLOCKS_MAX, sizeof(*d->qtab));
	if (d->qtab == NULL)
		abort();
	if (v->nqctx != 0)
		memcpy(d->qtab, v->qctx, v->nqctx * sizeof(*d->qtab));
	d->qnblocks = v->nqctx;
	rd_init(&r, p, n);
	if ((rc = msg_qstream_decode(&r, &d->qh, e)) != 0)
		return rc;
	d->qi = calloc(d->qh.count, sizeof(*d->qi));
	d->qpage_fnv = calloc(d->qh.count, sizeof(*d->qpage_fnv));
	if (d->qi == NULL || d->qpage_fnv == NULL)
		abort();
	for (i = 0; i < d->qh.count; i++) {
		struct qitem *it = &d->qi[i];

		if ((rc = msg_qitem_next(&r, d->qtab, d->qnblocks, d->qtab, it, e)) != 0)
			return rc;
		d->nqi = i + 1;
		if (it->type == QI_BLOCKS)
			d->qnblocks = it->nblocks;
		if (it->type == QI_PAGE && it->kind == PK_LZ4) {
			uint8_t page[FERRY_QPAGE_SIZE];

			if ((rc = codec_lz4_decode(it->payload, it->payload_len, page, sizeof(page),
			    "QSTREAM: LZ4 page", e)) != 0)
				return rc;
			d->qpage_fnv[i] = fnv1a64(page, sizeof(page));
		}
	}
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: %zu bytes after %u items", rd_left(&r),
		    d->qh.count);
	return 0;
}

static int
decode_payload(const struct vec *v, const uint8_t *p, size_t n, struct decoded *d, struct ferr *e)
{
	switch (d->h.type) {
	case FT_HELLO: return msg_hello_decode(p, n, &d->u.hello, e);
	case FT_WELCOME: return msg_welcome_decode(p, n, &d->u.welcome, e);
	case FT_MANIFEST: return msg_manifest_decode(p, n, &d->u.man, e);
	case FT_ACCEPT: return msg_accept_decode(p, n, &d->u.acc, e);
	case FT_REFUSE: return msg_refuse_decode(p, n, &d->u.text, e);
	case FT_PAGES: return decode_pages(v, p, n, d, e);
	case FT_ACK:
	case FT_COMMITTED:
	case FT_PING:
	case FT_PONG: return msg_seq_decode(d->h.type, p, n, &d->u.seq, e);
	case FT_STATE: return msg_state_decode(p, n, &d->u.st, e);
	case FT_COMMIT: return msg_commit_decode(p, n, &d->u.commit, e);
	case FT_ERROR: return msg_error_decode(p, n, &d->u.text, e);
	case FT_RESUME: return msg_resume_decode(p, n, &d->u.resume, e);
	case FT_RESUMED: return msg_resumed_decode(p, n, &d->u.resumed, e);
	case FT_DOMAIN: return msg_domain_decode(p, n, &d->u.domain, e);
	case FT_CHECKS: return msg_checks_decode(p, n, &d->u.checks, e);
	case FT_QSTREAM: return decode_qstream(v, p, n, d, e);
	case FT_QRETURN: return msg_qreturn_decode(p, n, &d->u.qret, e);
	case FT_HAVE: return msg_have_decode(p, n, &d->u.have, e);
	default: return ferr_set(e, FERR_INTERNAL, "test: no decoder for type %u", d->h.type);
	}
}

static void
emit_fields(const struct decoded *d, struct outs *os)
{
	uint32_t i;

	OUT_NUM(os, d->h.type, "type");
	OUT_NUM(os, d->h.len, "length");
	switch (d->h.type) {
	case FT_HELLO:
		OUT_NUM(os, d->u.hello.version, "version");
		OUT_NUM(os, d->u.hello.caps, "caps");
		OUT_NUM(os, d->u.hello.max_frame, "max_frame");
		OUT_NUM(os, d->u.hello.hash_seed, "hash_seed");
		break;
	case FT_WELCOME:
		OUT_NUM(os, d->u.welcome.version, "version");
		OUT_NUM(os, d->u.welcome.caps, "caps");
		OUT_NUM(os, d->u.welcome.max_frame, "max_frame");
		out_blob(os, O_BYTES, d->u.welcome.session_id, sizeof(d->u.welcome.session_id),
		    "session_id");
		break;
	case FT_MANIFEST: {
		const struct msg_manifest *m = &d->u.man;

		OUT_NUM(os, m->ndev, "ndev");
		OUT_NUM(os, m->state_size, "state_size");
		out_blob(os, O_STR, m->state_name, strlen(m->state_name), "state_name");
		for (i = 0; i < m->ndev && i < FERRY_MAX_DEVICES; i++) {
			const struct dev_desc *dv = &m->dev[i];
			char k[32];

			OUT_NUM(os, dv->id, "dev[%u].id", i);
			OUT_NUM(os, dv->kind, "dev[%u].kind", i);
			snprintf(k, sizeof(k), "dev[%u].name", i);
			out_blob(os, O_STR, dv->name, strlen(dv->name), k);
			OUT_NUM(os, dv->unit, "dev[%u].unit", i);
			OUT_NUM(os, dv->size, "dev[%u].size", i);
			OUT_NUM(os, dv->src_dev, "dev[%u].src_dev", i);
			OUT_NUM(os, dv->src_ino, "dev[%u].src_ino", i);
		}
		break;
	}
	case FT_ACCEPT:
		OUT_NUM(os, d->u.acc.next_seq, "next_seq");
		break;
	case FT_REFUSE:
	case FT_ERROR:
		OUT_NUM(os, d->u.text.code, "code");
		if (d->h.type == FT_REFUSE)
			OUT_NUM(os, d->u.text.device, "device");
		out_blob(os, O_STR, d->u.text.text, strlen(d->u.text.text), "text");
		break;
	case FT_PAGES:
		OUT_NUM(os, d->ph.seq, "seq");
		OUT_NUM(os, d->ph.device, "device");
		OUT_NUM(os, d->ph.round, "round");
		OUT_NUM(os, d->ph.count, "count");
		for (i = 0; i < d->npe; i++) {
			const struct page_entry *pe = &d->pe[i];
			char k[48];

			OUT_NUM(os, pe->index, "entry[%u].index", i);
			OUT_NUM(os, pe->kind, "entry[%u].kind", i);
			OUT_NUM(os, pe->len, "entry[%u].len", i);
			switch (pe->kind) {
			case PK_REF:
				OUT_NUM(os, pe->src_device, "entry[%u].src_device", i);
				OUT_NUM(os, pe->src_index, "entry[%u].src_index", i);
				snprintf(k, sizeof(k), "entry[%u].hash", i);
				out_blob(os, O_BYTES, pe->hash, FERRY_HASH_LEN, k);
				break;
			case PK_LZ4:
				OUT_NUM(os, pe->data_len, "entry[%u].clen", i);
				OUT_NUM(os, fnv1a64(pe->data, pe->data_len), "entry[%u].data_fnv1a64", i);
				OUT_NUM(os, d->unit_fnv[i], "entry[%u].unit_fnv1a64", i);
				break;
			case PK_RAW:
				OUT_NUM(os, fnv1a64(pe->data, pe->data_len), "entry[%u].data_fnv1a64", i);
				break;
			default:
				break;
			}
		}
		break;
	case FT_ACK:
	case FT_COMMITTED:
		OUT_NUM(os, d->u.seq.seq, "seq");
		break;
	case FT_PING:
	case FT_PONG:
		OUT_NUM(os, d->u.seq.seq, "nonce");
		break;
	case FT_STATE:
		OUT_NUM(os, d->u.st.offset, "offset");
		OUT_NUM(os, d->u.st.len, "len");
		out_blob(os, O_BYTES, d->u.st.data, d->u.st.len, "data");
		break;
	case FT_COMMIT:
		OUT_NUM(os, d->u.commit.seq, "seq");
		OUT_NUM(os, d->u.commit.ndev, "ndev");
		for (i = 0; i < d->u.commit.ndev && i < FERRY_MAX_DEVICES; i++) {
			char k[32];

			OUT_NUM(os, d->u.commit.dev[i].id, "dev[%u].id", i);
			snprintf(k, sizeof(k), "dev[%u].digest", i);
			out_blob(os, O_BYTES, d->u.commit.dev[i].digest, FERRY_HASH_LEN, k);
		}
		out_blob(os, O_BYTES, d->u.commit.state_digest, FERRY_HASH_LEN, "state_digest");
		break;
	case FT_RESUME:
		OUT_NUM(os, d->u.resume.version, "version");
		OUT_NUM(os, d->u.resume.max_frame, "max_frame");
		out_blob(os, O_BYTES, d->u.resume.session_id, FERRY_SESSION_ID_LEN, "session_id");
		out_blob(os, O_BYTES, d->u.resume.proof, FERRY_PROOF_LEN, "proof");
		break;
	case FT_RESUMED:
		OUT_NUM(os, d->u.resumed.status, "status");
		OUT_NUM(os, d->u.resumed.next_seq, "next_seq");
		OUT_NUM(os, d->u.resumed.state_offset, "state_offset");
		break;
	case FT_DOMAIN: {
		const struct msg_domain *m = &d->u.domain;

		OUT_NUM(os, m->flags, "flags");
		out_blob(os, O_STR, m->arch, strlen(m->arch), "arch");
		out_blob(os, O_STR, m->model, strlen(m->model), "model");
		out_blob(os, O_STR, m->uuid, strlen(m->uuid), "uuid");
		OUT_NUM(os, m->nwaive, "nwaive");
		for (i = 0; i < m->nwaive && i < FERRY_WAIVE_MAX; i++) {
			char k[32];

			snprintf(k, sizeof(k), "waive[%u]", i);
			out_blob(os, O_STR, m->waive[i], strlen(m->waive[i]), k);
		}
		OUT_NUM(os, m->xml_len, "xml_len");
		out_blob(os, O_STR, m->xml, m->xml_len, "xml");
		break;
	}
	case FT_CHECKS:
		OUT_NUM(os, d->u.checks.n, "nrows");
		for (i = 0; i < d->u.checks.n && i < FERRY_CHECKS_MAX; i++) {
			const struct check_row *c = &d->u.checks.row[i];
			char k[48];

			OUT_NUM(os, c->status, "row[%u].status", i);
			OUT_NUM(os, c->code, "row[%u].code", i);
			snprintf(k, sizeof(k), "row[%u].name", i);
			out_blob(os, O_STR, c->name, strlen(c->name), k);
			snprintf(k, sizeof(k), "row[%u].source", i);
			out_blob(os, O_STR, c->src, strlen(c->src), k);
			snprintf(k, sizeof(k), "row[%u].destination", i);
			out_blob(os, O_STR, c->dst, strlen(c->dst), k);
			snprintf(k, sizeof(k), "row[%u].why", i);
			out_blob(os, O_STR, c->why, strlen(c->why), k);
		}
		break;
	case FT_QSTREAM:
		OUT_NUM(os, d->qh.seq, "seq");
		OUT_NUM(os, d->qh.stream_off, "stream_off");
		OUT_NUM(os, d->qh.count, "count");
		for (i = 0; i < d->nqi; i++) {
			const struct qitem *it = &d->qi[i];
			char k[64];
			uint32_t j;

			OUT_NUM(os, it->type, "item[%u].type", i);
			switch (it->type) {
			case QI_OPAQUE:
				OUT_NUM(os, it->len, "item[%u].len", i);
				snprintf(k, sizeof(k), "item[%u].data", i);
				out_blob(os, O_BYTES, it->data, it->len, k);
				break;
			case QI_BLOCKS:
				OUT_NUM(os, it->nblocks, "item[%u].nblocks", i);
				for (j = 0; j < it->nblocks; j++) {
					snprintf(k, sizeof(k), "item[%u].block[%u].id", i, j);
					out_blob(os, O_STR, d->qtab[j].id, d->qtab[j].id_len, k);
					OUT_NUM(os, d->qtab[j].len, "item[%u].block[%u].len", i, j);
				}
				break;
			case QI_PAGE:
				OUT_NUM(os, it->rec, "item[%u].rec", i);
				OUT_NUM(os, it->block, "item[%u].block", i);
				OUT_NUM(os, it->offset, "item[%u].offset", i);
				OUT_NUM(os, it->kind, "item[%u].kind", i);
				OUT_NUM(os, it->len, "item[%u].len", i);
				if (it->kind == PK_REF) {
					OUT_NUM(os, it->src_block, "item[%u].src_block", i);
					OUT_NUM(os, it->src_offset, "item[%u].src_offset", i);
					snprintf(k, sizeof(k), "item[%u].hash", i);
					out_blob(os, O_BYTES, it->hash, FERRY_HASH_LEN, k);
				} else if (it->kind == PK_LZ4) {
					OUT_NUM(os, it->payload_len, "item[%u].clen", i);
					OUT_NUM(os, fnv1a64(it->payload, it->payload_len), "item[%u].data_fnv1a64", i);
					OUT_NUM(os, d->qpage_fnv[i], "item[%u].page_fnv1a64", i);
				} else if (it->kind == PK_RAW) {
					OUT_NUM(os, fnv1a64(it->payload, it->payload_len), "item[%u].data_fnv1a64", i);
				}
				break;
			default:
				break;
			}
		}
		break;
	case FT_QRETURN:
		OUT_NUM(os, d->u.qret.offset, "offset");
		OUT_NUM(os, d->u.qret.len, "len");
		out_blob(os, O_BYTES, d->u.qret.data, d->u.qret.len, "data");
		break;
	case FT_HAVE:
		OUT_NUM(os, d->u.have.device, "device");
		OUT_NUM(os, d->u.have.first, "first");
		OUT_NUM(os, d->u.have.count, "count");
		out_blob(os, O_BYTES, d->u.have.hashes, (size_t)d->u.have.count * FERRY_HASH_LEN,
		    "hashes");
		break;
	default:
		break;
	}
}

/* Re-encode the decoded message with ferry's encoders. */
static int
reencode(const struct decoded *d, struct wr *w)
{
	uint32_t i;
	size_t at;

	switch (d->h.type) {
	case FT_HELLO: return msg_hello_encode(w, &d->u.hello);
	case FT_WELCOME: return msg_welcome_encode(w, &d->u.welcome);
	case FT_MANIFEST: return msg_manifest_encode(w, &d->u.man);
	case FT_ACCEPT: return msg_accept_encode(w, &d->u.acc);
	case FT_REFUSE: return msg_refuse_encode(w, &d->u.text);
	case FT_ERROR: return msg_error_encode(w, &d->u.text);
	case FT_ACK:
	case FT_COMMITTED:
	case FT_PING:
	case FT_PONG: return msg_seq_encode(w, d->h.type, &d->u.seq);
	case FT_STATE: return msg_state_encode(w, &d->u.st);
	case FT_COMMIT: return msg_commit_encode(w, &d->u.commit);
	case FT_RESUME: return msg_resume_encode(w, &d->u.resume);
	case FT_RESUMED: return msg_resumed_encode(w, &d->u.resumed);
	case FT_DOMAIN: return msg_domain_encode(w, &d->u.domain);
	case FT_CHECKS: return msg_checks_encode(w, &d->u.checks);
	case FT_QRETURN: return msg_qreturn_encode(w, &d->u.qret);
	case FT_HAVE: return msg_have_encode(w, &d->u.have);
	case FT_QSTREAM:
		at = msg_qstream_begin(w, &d->qh);
		if (at == SIZE_MAX)
			return -1;
		for (i = 0; i < d->nqi; i++) {
			const struct qitem *it = &d->qi[i];
			int rc = it->type == QI_OPAQUE ? msg_qitem_put_opaque(w, it->data, it->len)
			    : it->type == QI_BLOCKS ? msg_qitem_put_blocks(w, d->qtab, it->nblocks)
			    : msg_qitem_put_page(w, it);

			if (rc != 0)
				return -1;
		}
		msg_qstream_end(w, at, d->qh.count);
		return w->err ? -1 : 0;
	case FT_PAGES:
		at = msg_pages_begin(w, &d->ph);
		if (at == SIZE_MAX)
			return -1;
		for (i = 0; i < d->npe; i++)
			if (msg_page_put(w, &d->pe[i]) != 0)
				return -1;
		msg_pages_end(w, at, d->ph.count);
		return w->err ? -1 : 0;
	default:
		return -1;
	}
}

/* Run one vector; 0 when it behaves as listed, else 1 with r filled. */
static int
check_vector(struct vec *v, struct report *r)
{
	struct decoded *d;
	struct ferr e;
	struct outs os = { 0 };
	int rc;

	if (v->perr[0] != '\0') {
		rep(r, "%s: malformed vector: %s", v->file, v->perr);
		return 1;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		abort();
	memset(&e, 0, sizeof(e));
	rc = frame_decode_hdr(v->bytes, v->n, v->max_payload, (uint8_t)v->dir, &d->h, &e);
	if (rc == 0) {
		size_t have = v->n - FERRY_FRAME_HDR_LEN;

		if (have > d->h.len) {
			rep(r, "%s: malformed vector: %zu bytes after a header of length %u", v->file, have,
			    d->h.len);
			goto out;
		}
		if (have < d->h.len) {
			rc = FERR_NEED_MORE;    /* an incomplete frame (section 5.3) */
		} else if (d->h.type == FT_PAGES && v->nctx == 0) {
			rep(r, "%s: malformed vector: PAGES without a context device", v->file);
			goto out;
		} else {
			rc = decode_payload(v, v->bytes + FERRY_FRAME_HDR_LEN, d->h.len, d, &e);
		}
	}

	if (!v->valid) {
		if (rc == 0)
			rep(r, "decoded, but the vector expects %s", ferr_name(v->err_code));
		else if (rc != v->err_code)
			rep(r, "failed with %s (\"%s\"), the vector expects %s", ferr_name(rc), e.msg,
			    ferr_name(v->err_code));
		else if (rc != FERR_NEED_MORE && e.code != rc)
			rep(r, "returned %s but the ferr holds %s (\"%s\")", ferr_name(rc),
			    ferr_name(e.code), e.msg);
		else if (v->contains != NULL && strstr(e.msg, v->contains) == NULL)
			rep(r, "failed with %s as expected, but the message \"%s\" lacks \"%s\"",
			    ferr_name(rc), e.msg, v->contains);
		goto out;
	}
	if (rc != 0) {
		rep(r, "a valid vector failed with %s (\"%s\")", ferr_name(rc), e.msg);
		goto out;
	}
	emit_fields(d, &os);
	compare_fields(v, &os, r);
	if (v->reencode) {
		size_t cap = v->n + 64;
		uint8_t *buf = malloc(cap);
		struct wr w;

		if (buf == NULL)
			abort();
		wr_init(&w, buf, cap);
		if (reencode(d, &w) != 0) {
			rep(r, "re-encoding failed (%zu-byte buffer)", cap);
		} else if (w.off != v->n || memcmp(buf, v->bytes, v->n) != 0) {
			size_t k = 0;

			while (k < w.off && k < v->n && buf[k] == v->bytes[k])
				k++;
			rep(r, "re-encoded to %zu bytes, differing from the vector's %zu at offset %zu",
			    w.off, v->n, k);
		}
		free(buf);
	}
out:
	outs_free(&os);
	free(d->pe);
	free(d->unit_fnv);
	free(d->qi);
	free(d->qpage_fnv);
	free(d->qtab);
	free(d);
	return r->bad;
}

static void
print_report(const struct report *r)
{
	const char *s = r->buf, *nl;

	while (*s && (nl = strchr(s, '\n')) != NULL) {
		print_message("# %.*s\n", (int)(nl - s), s);
		s = nl + 1;
	}
	if (r->lines > 24)
		print_message("# ... and %u more\n", r->lines - 24);
}

static void
run_vector(void **state)
{
	struct vec *v = *state;
	struct report *r = calloc(1, sizeof(*r));

	if (r == NULL)
		abort();
	if (check_vector(v, r) != 0) {
		print_report(r);
		free(r);
		fail_msg("vector %s (%s) does not behave as listed", v->stem, v->file);
	}
	free(r);
}

/* ---- whole-set checks ---- */

static void
test_count(void **state)
{
	(void)state;
	if (g_nvec < MIN_VECTORS)
		fail_msg("%zu vectors in %s, at least %d wanted", g_nvec, VEC_DIR, MIN_VECTORS);
}

static const struct field *
find_field(const struct vec *v, const char *key)
{
	size_t i;

	for (i = 0; i < v->nf; i++)
		if (strcmp(v->f[i].key, key) == 0)
			return &v->f[i];
	return NULL;
}

static void
test_types_covered(void **state)
{
	int seen[FT_COUNT] = { 0 };
	size_t i;
	unsigned t;
	int missing = 0;

	(void)state;
	for (i = 0; i < g_nvec; i++)
		if (g_vecs[i]->valid == 1 && g_vecs[i]->perr[0] == '\0' && g_vecs[i]->n > 0 &&
		    g_vecs[i]->bytes[0] < FT_COUNT)
			seen[g_vecs[i]->bytes[0]]++;
	for (t = 1; t < FT_COUNT; t++) {
		if (!seen[t]) {
			print_message("# no valid vector of type %u (%s)\n", t, frame_name((uint8_t)t));
			missing++;
		}
	}
	if (missing)
		fail_msg("%d frame types without a valid vector", missing);
}

/* Every entry kind in a valid PAGES vector, and an entry for a short last
 * unit (entry len below the context device's unit). */
static void
test_page_kinds_covered(void **state)
{
	int seen[5] = { 0 }, short_unit = 0, missing = 0;
	size_t i, j;
	unsigned k;

	(void)state;
	for (i = 0; i < g_nvec; i++) {
		const struct vec *v = g_vecs[i];

		if (v->valid != 1 || v->perr[0] != '\0' || v->n == 0 || v->bytes[0] != FT_PAGES)
			continue;
		for (j = 0; j < v->nf; j++) {
			const char *key = v->f[j].key, *dot = strrchr(key, '.');
			uint64_t x;

			if (strncmp(key, "entry[", 6) != 0 || dot == NULL)
				continue;
			if (strcmp(dot, ".kind") == 0 &&
			    (sym_value(key, v->f[j].val, &x) == 0 || parse_u64(v->f[j].val, &x) == 0) &&
			    x < 5)
				seen[x]++;
			if (strcmp(dot, ".len") == 0 && parse_u64(v->f[j].val, &x) == 0) {
				const struct field *dev = find_field(v, "device");
				uint64_t id;
				const struct dev_desc *dd;

				if (dev && parse_u64(dev->val, &id) == 0 &&
				    (dd = ctx_device(v, (uint32_t)id)) != NULL && x < dd->unit)
					short_unit++;
			}
		}
	}
	for (k = PK_ZERO; k <= PK_RAW; k++)
		if (!seen[k]) {
			print_message("# no valid PAGES vector with an entry of kind %u\n", k);
			missing++;
		}
	if (!short_unit) {
		print_message("# no valid PAGES vector with a short last unit\n");
		missing++;
	}
	if (missing)
		fail_msg("%d PAGES entry cases not covered", missing);
}

/* Every QSTREAM item type and every page kind of a PAGE item in a valid
 * vector, and a PAGE with each rec value. */
static void
test_qstream_items_covered(void **state)
{
	int types[4] = { 0 }, kinds[5] = { 0 }, recs[4] = { 0 }, missing = 0;
	size_t i, j;
	unsigned k;

	(void)state;
	for (i = 0; i < g_nvec; i++) {
		const struct vec *v = g_vecs[i];

		if (v->valid != 1 || v->perr[0] != '\0' || v->n == 0 || v->bytes[0] != FT_QSTREAM)
			continue;
		for (j = 0; j < v->nf; j++) {
			const char *key = v->f[j].key, *dot = strrchr(key, '.');
			uint64_t x;

			if (strncmp(key, "item[", 5) != 0 || dot == NULL || strchr(dot, ']') != NULL)
				continue;
			if (sym_value(key, v->f[j].val, &x) != 0 && parse_u64(v->f[j].val, &x) != 0)
				continue;
			if (strcmp(dot, ".type") == 0 && x < 4)
				types[x]++;
			else if (strcmp(dot, ".kind") == 0 && x < 5)
				kinds[x]++;
			else if (strcmp(dot, ".rec") == 0 && x < 4)
				recs[x]++;
		}
	}
	for (k = QI_OPAQUE; k <= QI_PAGE; k++)
		if (!types[k]) {
			print_message("# no valid QSTREAM vector with an item of type %u\n", k);
			missing++;
		}
	for (k = PK_ZERO; k <= PK_RAW; k++)
		if (!kinds[k]) {
			print_message("# no valid QSTREAM vector with a PAGE of kind %u\n", k);
			missing++;
		}
	for (k = 0; k < 4; k++)
		if (!recs[k]) {
			print_message("# no valid QSTREAM vector with a PAGE of rec %u\n", k);
			missing++;
		}
	if (missing)
		fail_msg("%d QSTREAM item cases not covered", missing);
}

/* ---- main ---- */

static int
vec_file(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return n > 4 && de->d_name[0] != '.' && strcmp(de->d_name + n - 4, ".vec") == 0;
}

int
main(int argc, char **argv)
{
	const char *dir = getenv("FERRY_VECTORS_DIR");
	struct dirent **list = NULL;
	struct CMUnitTest *tests;
	char alt[4096];
	int n, i, rc;

	if (dir == NULL)
		dir = VEC_DIR;
	n = scandir(dir, &list, vec_file, alphasort);
	if (n < 0 && getenv("FERRY_VECTORS_DIR") == NULL && argc > 0) {
		/* Run from elsewhere: build/tests/test_vectors -> ../../proto/vectors */
		const char *slash = strrchr(argv[0], '/');

		snprintf(alt, sizeof(alt), "%.*s/../../%s", slash ? (int)(slash - argv[0]) : 1,
		    slash ? argv[0] : ".", VEC_DIR);
		dir = alt;
		n = scandir(dir, &list, vec_file, alphasort);
	}
	if (n < 0) {
		fprintf(stderr, "test_vectors: cannot read %s: %s\n", dir, strerror(errno));
		printf("not ok 1 - read the vector directory %s\n", dir);
		return 1;
	}
	g_nvec = (size_t)n;
	g_vecs = calloc(g_nvec ? g_nvec : 1, sizeof(*g_vecs));
	tests = calloc(g_nvec + 4, sizeof(*tests));
	if (g_vecs == NULL || tests == NULL)
		abort();
	for (i = 0; i < n; i++) {
		g_vecs[i] = load_vector(dir, list[i]->d_name);
		tests[i].name = g_vecs[i]->stem;
		tests[i].test_func = run_vector;
		tests[i].initial_state = g_vecs[i];
		free(list[i]);
	}
	free(list);
	tests[n].name = "vectors_count";
	tests[n].test_func = test_count;
	tests[n + 1].name = "vectors_cover_every_frame_type";
	tests[n + 1].test_func = test_types_covered;
	tests[n + 2].name = "vectors_cover_every_page_kind";
	tests[n + 2].test_func = test_page_kinds_covered;
	tests[n + 3].name = "vectors_cover_every_qstream_item";
	tests[n + 3].test_func = test_qstream_items_covered;

	rc = _cmocka_run_group_tests("vectors", tests, g_nvec + 4, NULL, NULL);

	for (i = 0; i < n; i++)
		free_vector(g_vecs[i]);
	free(g_vecs);
	free(tests);
	return rc;
}
