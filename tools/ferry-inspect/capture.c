/* Source: a packet capture (pcap or pcapng) of ferry's TLS traffic, with
 * the key log written by SSLKEYLOGFILE.  tshark decrypts it, in two
 * passes: one lists the TCP streams (and, from the SYN, which port is the
 * client: ferry-send is always the TLS client), then one
 * `-z follow,tls,yaml,N` per stream gives the decrypted bytes of each
 * direction, chunk by chunk, with packet numbers and times.  (The
 * per-packet `data.data` field was tried first: tshark 4.0 leaves out
 * records that share a packet with the end of a reassembled one.)  Each
 * direction is cut into frames as the daemons do. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dumpfmt.h"
#include "frame.h"
#include "framesplit.h"
#include "inspect.h"

extern char **environ;

#define MAX_STREAMS 256

struct stream;

struct half {                   /* one direction of a TCP stream */
	struct stream *s;
	uint8_t fdir;               /* FDIR_S2R or FDIR_R2S */
	struct fsplit split;
};

struct stream {
	struct inspector *in;
	struct where w;
	struct flow flow;
	uint64_t time_us;           /* of the chunk being fed */
	struct half half[2];        /* [0] S->R, [1] R->S */
	int sender_peer;            /* yaml peer id of ferry-send, -1 until known */
	uint64_t chunks;
};

/* What the first pass learned about one TCP stream. */
struct stream_info {
	uint32_t id;
	unsigned client_port;       /* from the SYN, 0 if none was captured */
};

struct run {                    /* a tshark process */
	FILE *out;
	FILE *errf;
	pid_t pid;
};

static void
on_frame(void *arg, const uint8_t *p, size_t n, int partial)
{
	struct half *h = arg;
	struct stream *s = h->s;

	insp_frame(s->in, &s->flow, &s->w, h->fdir, NULL, s->time_us, p, n, partial);
}

/* ---- running tshark ---- */

static int
run_start(struct run *r, const char *tshark, const char *const *args)
{
	const char *argv[24];
	posix_spawn_file_actions_t fa;
	int pfd[2], n = 0, ok;

	memset(r, 0, sizeof(*r));
	r->pid = -1;
	argv[n++] = tshark;
	while (*args != NULL && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	if ((r->errf = tmpfile()) == NULL || pipe2(pfd, O_CLOEXEC) != 0) {
		if (r->errf != NULL)
			fclose(r->errf);
		return -1;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		close(pfd[0]);
		close(pfd[1]);
		fclose(r->errf);
		return -1;
	}
	ok = posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO) == 0 &&
	    posix_spawn_file_actions_adddup2(&fa, fileno(r->errf), STDERR_FILENO) == 0 &&
	    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0) == 0 &&
	    posix_spawnp(&r->pid, tshark, &fa, NULL, (char *const *)argv, environ) == 0;
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (!ok || (r->out = fdopen(pfd[0], "r")) == NULL) {
		close(pfd[0]);
		fclose(r->errf);
		r->errf = NULL;
		return -1;
	}
	return 0;
}

/* Wait for tshark; 0 when it exited 0, else its stderr is shown. */
static int
run_end(struct run *r, const char *what)
{
	char buf[512];
	int status = 0;

	fclose(r->out);
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fclose(r->errf);
		return 0;
	}
	rewind(r->errf);
	while (fgets(buf, sizeof(buf), r->errf) != NULL)
		if (strstr(buf, "Running as user") == NULL)
			fprintf(stderr, "tshark: %s", buf);
	fprintf(stderr, "ferry-inspect: tshark failed %s (status %d)\n", what,
	    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fclose(r->errf);
	return -1;
}

/* ---- pass 1: the TCP streams ---- */

static int
is_true(const char *s)
{
	return strcmp(s, "1") == 0 || strcmp(s, "True") == 0 || strcmp(s, "true") == 0;
}

static struct stream_info *
info_get(struct stream_info *tab, size_t *n, uint32_t id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (tab[i].id == id)
			return &tab[i];
	if (*n >= MAX_STREAMS)
		return NULL;
	tab[*n].id = id;
	tab[*n].client_port = 0;
	return &tab[(*n)++];
}

/* "stream \t srcport \t syn \t ack" lines. */
static void
list_line(char *line, struct stream_info *tab, size_t *n, int *too_many)
{
	char *f[4];
	struct stream_info *si;
	int i;

	line[strcspn(line, "\r\n")] = '\0';
	for (i = 0; i < 4; i++) {
		f[i] = line;
		if (i < 3 && (line = strchr(line, '\t')) == NULL)
			return;
		if (i < 3)
			*line++ = '\0';
	}
	if (f[0][0] == '\0')
		return;
	if ((si = info_get(tab, n, (uint32_t)strtoul(f[0], NULL, 10))) == NULL) {
		*too_many = 1;
		return;
	}
	if (is_true(f[2]) && !is_true(f[3]) && si->client_port == 0)
		si->client_port = (unsigned)strtoul(f[1], NULL, 10);
}

static int
list_streams(const char *tshark, const char *cap, struct stream_info *tab, size_t *n,
    int *too_many)
{
	const char *args[] = { "-r", cap, "-n", "-Y", "tcp", "-T", "fields", "-E", "separator=/t",
		"-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack",
		NULL };
	struct run r;
	char *line = NULL;
	size_t cap_len = 0;

	if (run_start(&r, tshark, args) != 0) {
		fprintf(stderr, "ferry-inspect: cannot run '%s' (install tshark, or give --tshark PATH)\n",
		    tshark);
		return -1;
	}
	while (getline(&line, &cap_len, r.out) > 0)
		list_line(line, tab, n, too_many);
	free(line);
	return run_end(&r, "listing the TCP streams");
}

/* ---- pass 2: one stream's decrypted bytes (follow,tls,yaml) ---- */

static int
b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Append the base64 text of one line to *buf; -1 on a bad character. */
static int
b64_append(const char *t, uint8_t **buf, size_t *len, size_t *cap)
{
	uint32_t acc = 0;
	int bits = 0, v;

	if (*len + strlen(t) > *cap) {
		size_t nc = (*cap ? *cap * 2 : 65536) + strlen(t);
		uint8_t *nb = realloc(*buf, nc);

		if (nb == NULL)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	for (; *t != '\0' && *t != '\n' && *t != '\r'; t++) {
		if (*t == '=' || *t == ' ')
			continue;
		if ((v = b64val((unsigned char)*t)) < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			(*buf)[(*len)++] = (uint8_t)(acc >> bits);
		}
	}
	return 0;
}

/* "1795321056.518988843" -> microseconds, without floating point. */
static uint64_t
epoch_us(const char *s)
{
	uint64_t sec = 0, us = 0;
	int digits = 0;

	for (; *s >= '0' && *s <= '9'; s++)
		sec = sec * 10 + (uint64_t)(*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9' && digits < 6; s++, digits++)
			us = us * 10 + (uint64_t)(*s - '0');
	for (; digits < 6; digits++)
		us *= 10;
	return sec * 1000000u + us;
}

struct chunk {
	uint64_t packet;
	int peer;
	uint64_t time_us;
	uint8_t *data;
	size_t len, cap;
	int in_data;
};

/* Which yaml peer is ferry-send: the one whose stream starts with HELLO or
 * RESUME, or (the SYN pass found the client port) the peer on that port,
 * or else the one that spoke first. */
static void
pick_sender(struct stream *s, const struct chunk *c, int peer0_is_client)
{
	struct json_object *o;

	if (s->sender_peer >= 0)
		return;
	if (c->len > 0 && (c->data[0] == FT_HELLO || c->data[0] == FT_RESUME)) {
		s->sender_peer = c->peer;
		return;
	}
	if (peer0_is_client >= 0) {
		s->sender_peer = peer0_is_client ? 0 : 1;
		return;
	}
	s->sender_peer = c->peer;
	o = json_object_new_object();
	json_object_object_add(o, "note", json_object_new_string("the first bytes are not HELLO or "
	    "RESUME and no SYN was captured: taking the side that spoke first as the sender"));
	insp_note(s->in, &s->w, "stream", o);
}

static void
chunk_done(struct stream *s, struct chunk *c, int peer0_is_client)
{
	struct half *h;

	if (!c->in_data || c->len == 0)
		goto out;
	pick_sender(s, c, peer0_is_client);
	h = &s->half[c->peer == s->sender_peer ? 0 : 1];
	s->w.packet = c->packet;
	s->time_us = c->time_us;
	if (s->flow.t0_us == 0)
		s->flow.t0_us = c->time_us;
	s->chunks++;
	if (fsplit_feed(&h->split, c->data, c->len, on_frame, h) != 0)
		insp_error(s->in, &s->w, "out of memory: frames of this stream are lost");
out:
	c->in_data = 0;
	c->len = 0;
}

static void
yaml_line(struct stream *s, struct chunk *c, const char *line, unsigned client_port,
    int *peer0_is_client, int *peer, int *bad)
{
	if (strncmp(line, "      ", 6) == 0 && c->in_data) {
		if (b64_append(line + 6, &c->data, &c->len, &c->cap) != 0)
			*bad = 1;
		return;
	}
	if (strncmp(line, "  - packet: ", 12) == 0) {
		chunk_done(s, c, *peer0_is_client);
		c->packet = strtoull(line + 12, NULL, 10);
	} else if (strncmp(line, "  - peer: ", 10) == 0) {
		*peer = (int)strtol(line + 10, NULL, 10);
	} else if (strncmp(line, "    port: ", 10) == 0 && *peer == 0 && client_port != 0) {
		unsigned port = (unsigned)strtoul(line + 10, NULL, 10);

		if (port != 0)
			*peer0_is_client = port == client_port;
	} else if (strncmp(line, "    peer: ", 10) == 0) {
		c->peer = (int)strtol(line + 10, NULL, 10);
	} else if (strncmp(line, "    timestamp: ", 15) == 0) {
		c->time_us = epoch_us(line + 15);
	} else if (strncmp(line, "    data: ", 10) == 0) {
		c->in_data = 1;
		c->len = 0;
	} else {
		chunk_done(s, c, *peer0_is_client);
	}
}

static void
stream_init(struct stream *s, struct inspector *in, const char *cap, uint32_t id)
{
	memset(s, 0, sizeof(*s));
	s->in = in;
	s->w.src = cap;
	s->w.capture = 1;
	s->w.stream = id;
	s->sender_peer = -1;
	s->half[0].s = s->half[1].s = s;
	s->half[0].fdir = FDIR_S2R;
	s->half[1].fdir = FDIR_R2S;
	fsplit_init(&s->half[0].split, DUMP_FRAME_MAX);
	fsplit_init(&s->half[1].split, DUMP_FRAME_MAX);
}

static void
stream_end(struct stream *s)
{
	int k;

	for (k = 0; k < 2; k++) {
		fsplit_flush(&s->half[k].split, on_frame, &s->half[k]);
		if (s->half[k].split.lost > 0)
			insp_error(s->in, &s->w, "%s: %llu bytes after a frame length over the limit "
			    "could not be cut into frames", k == 0 ? "S->R" : "R->S",
			    (unsigned long long)s->half[k].split.lost);
		fsplit_fini(&s->half[k].split);
	}
}

static int
follow_stream(struct inspector *in, const char *tshark, const char *cap, const char *keyopt,
    const char *decode, const struct stream_info *si, uint64_t *chunks)
{
	char follow[64];
	const char *args[12];
	struct stream s;
	struct chunk c;
	struct run r;
	char *line = NULL;
	size_t cap_len = 0;
	int n = 0, peer = -1, peer0_is_client = -1, bad = 0, rc;

	snprintf(follow, sizeof(follow), "follow,tls,yaml,%u", si->id);
	args[n++] = "-r"; args[n++] = cap; args[n++] = "-n"; args[n++] = "-q";
	args[n++] = "-o"; args[n++] = keyopt;
	if (decode != NULL) {
		args[n++] = "-d";
		args[n++] = decode;
	}
	args[n++] = "-z"; args[n++] = follow;
	args[n] = NULL;
	if (run_start(&r, tshark, args) != 0)
		return -1;
	stream_init(&s, in, cap, si->id);
	memset(&c, 0, sizeof(c));
	while (getline(&line, &cap_len, r.out) > 0) {
		line[strcspn(line, "\r\n")] = '\0';
		yaml_line(&s, &c, line, si->client_port, &peer0_is_client, &peer, &bad);
	}
	chunk_done(&s, &c, peer0_is_client);
	free(line);
	free(c.data);
	if (bad)
		insp_error(in, &s.w, "tshark gave data that is not base64");
	stream_end(&s);
	*chunks += s.chunks;
	rc = run_end(&r, "following a TLS stream");
	return rc;
}

int
inspect_capture(struct inspector *in, const char *cap, const char *keylog, const char *tshark,
    unsigned port)
{
	struct stream_info *tab = calloc(MAX_STREAMS, sizeof(*tab));
	char keyopt[4096], decode[64];
	size_t n = 0, i;
	uint64_t chunks = 0;
	int too_many = 0, rc = 0;
	struct where w = { cap, 1, 0, 0, 0 };

	if (tab == NULL)
		return -1;
	snprintf(keyopt, sizeof(keyopt), "tls.keylog_file:%s", keylog);
	snprintf(decode, sizeof(decode), "tcp.port==%u,tls", port);
	if (list_streams(tshark, cap, tab, &n, &too_many) != 0) {
		free(tab);
		return -1;
	}
	if (too_many)
		insp_error(in, &w, "more than %d TCP streams: only the first %d are decoded",
		    MAX_STREAMS, MAX_STREAMS);
	for (i = 0; i < n && rc == 0; i++)
		rc = follow_stream(in, tshark, cap, keyopt, port != 0 ? decode : NULL, &tab[i], &chunks);
	free(tab);
	if (rc != 0)
		return -1;
	if (chunks == 0)
		insp_error(in, &w, "no decrypted TLS application data in the capture: is '%s' the key "
		    "log of these connections?  (TLS on an unusual port: give --port)", keylog);
	return 0;
}
