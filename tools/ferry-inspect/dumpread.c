/* Source: a frame dump file written by --dump-frames (dumpfmt.h).  The
 * file is mapped read-only and walked with the pure record reader; a bad
 * record is reported at its offset and the reader skips to the next good
 * one. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dumpfmt.h"
#include "err.h"
#include "inspect.h"

static void
note_header(struct inspector *in, const struct where *w, const struct dump_file_hdr *h)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_uint64(h->version));
	json_object_object_add(o, "role", json_object_new_string(dump_role_name(h->role)));
	json_object_object_add(o, "pid", json_object_new_uint64(h->pid));
	json_object_object_add(o, "conn", json_object_new_uint64(h->conn));
	json_object_object_add(o, "start_us", json_object_new_uint64(h->start_us));
	insp_note(in, w, "file", o);
}

static void
check_end(struct inspector *in, const struct where *w, const struct dump_rec *r,
    const struct dump_end *seen)
{
	struct json_object *o = json_object_new_object();
	struct dump_end end;
	struct ferr e = { 0 };

	if (dump_end_decode(r, &end, &e) != 0) {
		json_object_put(o);
		insp_error(in, w, "%s", e.msg);
		return;
	}
	json_object_object_add(o, "frames_sent", json_object_new_uint64(end.frames_sent));
	json_object_object_add(o, "frames_received", json_object_new_uint64(end.frames_received));
	json_object_object_add(o, "bytes_sent", json_object_new_uint64(end.bytes_sent));
	json_object_object_add(o, "bytes_received", json_object_new_uint64(end.bytes_received));
	insp_note(in, w, "end", o);
	if (end.frames_sent != seen->frames_sent || end.frames_received != seen->frames_received ||
	    end.bytes_sent != seen->bytes_sent || end.bytes_received != seen->bytes_received)
		insp_error(in, w, "END counts %llu+%llu frames, %llu+%llu bytes; the file holds "
		    "%llu+%llu frames, %llu+%llu bytes (records lost or damaged)",
		    (unsigned long long)end.frames_sent, (unsigned long long)end.frames_received,
		    (unsigned long long)end.bytes_sent, (unsigned long long)end.bytes_received,
		    (unsigned long long)seen->frames_sent, (unsigned long long)seen->frames_received,
		    (unsigned long long)seen->bytes_sent, (unsigned long long)seen->bytes_received);
}

static void
one_record(struct inspector *in, struct flow *f, const struct where *w, const struct dump_rec *r,
    struct dump_end *seen)
{
	switch (r->kind) {
	case DUMP_REC_FRAME:
		if (r->dir == DUMP_DIR_SENT) {
			seen->frames_sent++;
			seen->bytes_sent += r->len;
		} else {
			seen->frames_received++;
			seen->bytes_received += r->len;
		}
		insp_frame(in, f, w, dump_frame_dir(r->role, r->dir),
		    r->dir == DUMP_DIR_SENT ? "sent" : "recv", r->time_us, r->body, r->len,
		    (r->flags & DUMP_FLAG_PARTIAL) != 0);
		return;
	case DUMP_REC_SESSION:
		insp_session(in, f, w, r->time_us, r->body);
		return;
	case DUMP_REC_END:
		check_end(in, w, r, seen);
		return;
	}
}

/* Walk every record of the mapped file. */
static void
walk(struct inspector *in, const char *path, const uint8_t *p, size_t n)
{
	struct where w = { path, 0, 0, 0, 0 };
	struct flow f;
	struct dump_reader dr;
	struct dump_rec r;
	struct dump_end seen = { 0, 0, 0, 0 };
	struct ferr e = { 0 };
	int rc, ended = 0;

	memset(&f, 0, sizeof(f));
	if (dump_reader_init(&dr, p, n, &e) != 0) {
		insp_error(in, &w, "%s", e.msg);
		if (n < DUMP_FILE_HDR_LEN)
			return;
	} else {
		f.t0_us = dr.hdr.start_us;
		f.writer_role = dr.hdr.role;
		note_header(in, &w, &dr.hdr);
	}
	while ((rc = dump_reader_next(&dr, &r, &e)) != 0) {
		w.offset = r.at;
		if (rc < 0) {
			insp_error(in, &w, "%s%s", e.msg, dr.off < n ? "" : " (no record after it)");
			if (dr.off < n) {
				struct where to = w;

				to.offset = dr.off;
				insp_note(in, &to, "resync", json_object_new_object());
			}
			continue;
		}
		if (f.t0_us == 0)
			f.t0_us = r.time_us;
		ended |= r.kind == DUMP_REC_END;
		one_record(in, &f, &w, &r, &seen);
	}
	if (!ended) {
		struct json_object *o = json_object_new_object();

		w.offset = n;
		json_object_object_add(o, "note", json_object_new_string("no END record: the writer "
		    "stopped early (killed, or its dump failed) or the file was copied while written"));
		insp_note(in, &w, "eof", o);
	}
}

int
inspect_dump_file(struct inspector *in, const char *path)
{
	struct stat sb;
	void *map = NULL;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
		fprintf(stderr, "ferry-inspect: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "ferry-inspect: %s: not a regular file\n", path);
		close(fd);
		return -1;
	}
	if (sb.st_size > 0) {
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			fprintf(stderr, "ferry-inspect: %s: mmap: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	walk(in, path, map, (size_t)sb.st_size);
	if (map != NULL)
		munmap(map, (size_t)sb.st_size);
	return 0;
}
