/* One migration from ferry-send's side: connect, negotiate, pre-copy
 * rounds, switchover and commit, driven by libevent.  The page work is in
 * pager.c, the decision to switch over in converge.c. */
#ifndef FERRY_MIGRATE_H
#define FERRY_MIGRATE_H

#include <stdint.h>

#include "err.h"
#include "events.h"
#include "ferry_proto.h"
#include "guestctl.h"
#include "result.h"

struct framedump_dir;
struct svirt;

struct send_opts {
	char to_host[256];
	uint16_t to_port;
	const char *bind_addr;          /* source address on the migration network */
	const char *cert, *key, *ca, *peer_name;
	const char *mem;                /* memory image, or NULL */
	const char *disks[FERRY_MAX_DEVICES];
	uint32_t ndisks;
	const char *state_file;
	uint32_t mem_unit;              /* bytes, default 4096 */
	uint32_t disk_unit;             /* bytes, default 65536 */
	uint64_t downtime_ms;           /* default 300 */
	uint32_t max_rounds;            /* default 30 */
	uint32_t threads;               /* scan workers (--threads), default the cores */
	const char *dirty_log;          /* --dirty-log FILE, or NULL */
	uint64_t connect_timeout_ms;    /* TCP connect and TLS handshake, default 10 s */
	const char *interface;          /* SO_BINDTODEVICE */
	const char *pins[2];            /* receiver public-key pins */
	const char *ctl_path;           /* control socket */
	const char *metrics_addr;       /* --metrics ADDR:PORT, or NULL */
	uint64_t metrics_linger_ms;     /* serve metrics this long after the end */
	const char *dump_dir;           /* --dump-frames DIR, or NULL */
	struct framedump_dir *dump;     /* made from dump_dir by main */
	uint64_t keepalive_ms;          /* PING interval, default 2 s */
	uint64_t dead_ms;               /* nothing received: link cut, default 10 s */
	uint64_t outage_ms;             /* give up reconnecting, default 60 s */
	uint64_t progress_ms;           /* nothing acknowledged, default 150 s */
	uint64_t completion_per_gib_ms; /* default 800 s per GiB */
	uint64_t completion_ms;         /* computed from the sizes */
	uint64_t bandwidth;             /* bytes/s on the wire, 0 = no cap */
	uint64_t rekey_bytes;           /* TLS key update period, default 4 GiB */
	struct guestctl guest;
	/* libvirt (--libvirt-uri, --domain): svirt is made by main from these */
	const char *libvirt_uri, *domain;
	const char *force_checks[FERRY_WAIVE_MAX];
	uint32_t nforce;
	int check_only;             /* run every check on both sides, migrate nothing */
	int undefine_source;
	struct svirt *virt;
	const char *qemu_qmp;           /* --qemu-qmp: migrate this QEMU instead of images */
	int qemu_cleanup;               /* --cleanup: quit the source QEMU after commit */
	int json;
	int progress;                   /* live progress line on stderr */
	int quiet;
};

struct migrate_result {
	enum result result;
	struct ferr err;
	uint64_t logical_bytes, wire_bytes, frame_bytes;
	uint32_t rounds;
	uint64_t downtime_ms, duration_ms;
	uint64_t pages_zero, pages_dedup, pages_lz4, pages_raw;
	uint64_t round1_logical, round1_frame_bytes;
	uint64_t units_reused;      /* units round 1 found at the destination (HAVE) */
	uint32_t cuts, rekeys;
};

/* Run a whole migration; fills *res and emits events.  Returns the result. */
enum result migrate_run(const struct send_opts *o, struct events *ev, struct migrate_result *res);

/* slog.c: while a migration runs, its log lines carry its session, peer,
 * state and failure (ev->ctx); detach before the migration is freed. */
struct mig;
void mig_log_attach(struct mig *m);
void mig_log_detach(struct mig *m);

#endif
