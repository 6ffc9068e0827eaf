/* Errors as values: a negative code plus a message naming the frame, field
 * or file where the error was found.
 *
 * Codes come in classes (need more bytes; peer protocol error, fatal to the
 * session; refusal at pre-flight; local failure).  The wire form of a code
 * is its negation (a positive u32), see proto/PROTOCOL.md section 7. */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

#include <stddef.h>

#define FERRY_MUST_CHECK __attribute__((warn_unused_result))
#define FERRY_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum ferr_code {
	FERR_OK = 0,
	FERR_NEED_MORE = -1,      /* not an error: feed more bytes */

	/* the peer broke the protocol: fatal to the session */
	FERR_PROTO = -10,         /* malformed field */
	FERR_PROTO_TYPE = -11,    /* unknown or misdirected frame type */
	FERR_PROTO_LENGTH = -12,  /* length out of bounds */
	FERR_PROTO_STATE = -13,   /* frame not allowed in this state */
	FERR_PROTO_RANGE = -14,   /* index or offset outside its object */
	FERR_PROTO_CODEC = -15,   /* lz4 payload does not decode to one unit */
	FERR_PROTO_HASH = -16,    /* reference hash does not match */
	FERR_PROTO_VERSION = -17, /* bad magic or unsupported version */
	FERR_PROTO_RESUME = -18,  /* resume refused: unknown session, bad proof */
	FERR_PROTO_FLOOD = -19,   /* too many control frames */

	/* pre-flight refusals (manifest) */
	FERR_REFUSED = -20,       /* generic refusal */
	FERR_REFUSE_SIZE = -21,   /* existing destination has another size */
	FERR_REFUSE_COUNT = -22,  /* device count differs from expected */
	FERR_REFUSE_SAMEFILE = -23, /* destination is the source file */
	FERR_REFUSE_SPACE = -24,  /* not enough free space */
	FERR_REFUSE_UNIT = -25,   /* unsupported page or block size */
	FERR_REFUSE_NAME = -26,   /* device name not acceptable */
	FERR_REFUSE_BUSY = -27,   /* too many concurrent migrations */
	FERR_REFUSE_DIR = -28,    /* destination directory unusable */

	/* local failures and outcomes */
	FERR_IO = -30,            /* file I/O failed */
	FERR_NOMEM = -31,
	FERR_TLS = -32,           /* TLS handshake or record failure */
	FERR_NET = -33,           /* connection failed or dropped */
	FERR_VERIFY = -34,        /* digest mismatch at commit */
	FERR_TIMEOUT = -35,
	FERR_ABORTED = -36,
	FERR_USAGE = -37,         /* bad command line or config value */
	FERR_INDOUBT = -38,       /* COMMIT sent, outcome never learned */
	FERR_TLS_INTEGRITY = -39, /* a TLS record failed authentication */
	FERR_INTERNAL = -40,

	/* libvirt (src/common/virt.c, domxml.c, domcheck.c) */
	FERR_VIRT = -50,          /* a libvirt call failed */
	/* libvirt pre-flight refusals: one per check of domcheck.h; the
	 * same-file and free-space checks use REFUSE_SAMEFILE, REFUSE_SPACE */
	FERR_VIRT_XML = -51,      /* domain or capabilities XML malformed, over a limit */
	FERR_VIRT_CDROM = -52,    /* removable media attached (cdrom, floppy) */
	FERR_VIRT_HOSTDEV = -53,  /* host device passthrough */
	FERR_VIRT_SHAREABLE = -54, /* shareable disk */
	FERR_VIRT_READONLY = -55, /* read-only disk among those to migrate */
	FERR_VIRT_NOTFILE = -56,  /* disk not backed by a file (block, network...) */
	FERR_VIRT_CACHE = -57,    /* disk cache mode not 'none' */
	FERR_VIRT_ARCH = -58,     /* destination CPU architecture differs */
	FERR_VIRT_CPU_MODEL = -59, /* destination CPU model differs */
	FERR_VIRT_CPUS = -60,     /* fewer host CPUs than the domain's vCPUs */
	FERR_VIRT_MEMORY = -61,   /* not enough free memory on the destination */
	FERR_VIRT_IMAGES = -62,   /* after the copy: disk images' count or sizes differ */
	FERR_VIRT_EXISTS = -63,   /* a domain of that name is already defined at the destination */
	/* QEMU streams (proto/QEMU.md): refusals, then failures */
	FERR_QEMU_CAP = -64,      /* a QEMU migration capability ferry cannot carry is on */
	FERR_QEMU_STATE = -65,    /* QEMU is not in a state to migrate (or to receive one) */
	FERR_QEMU = -70,          /* QEMU failed a migration step, or its QMP socket did */
};

#define FERR_MSG_MAX 512

/* An error value: code plus a human message.  Zero-initialise before use. */
struct ferr {
	int code;
	char msg[FERR_MSG_MAX];
};

/* Fill e (if not NULL) and return code, so callers can write
 * `return ferr_set(e, FERR_PROTO, "PAGES: count %u > %u", n, max);` */
int ferr_set(struct ferr *e, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);

/* Prefix an existing message: "ctx: old message". Returns e->code. */
int ferr_wrap(struct ferr *e, const char *fmt, ...) FERRY_PRINTF(2, 3);

void ferr_clear(struct ferr *e);

/* Short stable name of a code ("PROTO_RANGE", "REFUSE_SIZE", ...). */
const char *ferr_name(int code);

/* Error class helpers. */
static inline int ferr_is_proto(int code) { return code <= -10 && code > -20; }
static inline int
ferr_is_refusal(int code)
{
	return (code <= -20 && code > -30) || (code <= -51 && code > -70);
}

#endif
