/* libvirt XML as ferry needs it: a domain's live XML and a host's
 * capabilities XML parsed into plain structs, and a domain XML with its
 * disks pointed at new files.
 *
 * Pure functions over bytes (libxml2 + XPath): no libvirt, no I/O.  The
 * XML is untrusted (a domain's XML crosses the wire to the receiver), so
 * every count and length is bounded by the limits below, every name and
 * path is checked, a document with a DOCTYPE is refused (no entities, no
 * network), and errors are FERR_VIRT_XML with a message naming the
 * element, the disk and the value. */
#ifndef FERRY_DOMXML_H
#define FERRY_DOMXML_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define DOMXML_MAX_BYTES   (1u << 20)  /* larger XML is refused unparsed */
#define DOMXML_MAX_DISKS   64u         /* <disk> elements, cdroms included */
#define DOMXML_NAME_MAX    255u        /* domain name, bytes */
#define DOMXML_TARGET_MAX  32u         /* disk target dev ("vda"), bytes */
#define DOMXML_PATH_MAX    4095u       /* disk source path, bytes */
#define DOMXML_TOKEN_MAX   31u         /* arch, cache mode, format, types */
#define DOMXML_MODEL_MAX   63u         /* CPU model name */
#define DOMXML_DESC_MAX    127u        /* hostdev description */
#define DOMXML_UUID_LEN    36u         /* canonical 8-4-4-4-12 form */
#define DOMXML_VCPUS_MAX   16384u

enum domxml_disk_device {
	DD_INVALID = 0,
	DD_DISK = 1,
	DD_CDROM = 2,
	DD_FLOPPY = 3,
	DD_LUN = 4,
};

enum domxml_source {
	DS_INVALID = 0,
	DS_FILE = 1,
	DS_BLOCK = 2,
	DS_NETWORK = 3,
	DS_OTHER = 4,         /* dir, volume, nvme, vhostuser...: src_type says which */
};

struct domxml_disk {
	char target[DOMXML_TARGET_MAX + 1];   /* <target dev=>, required */
	enum domxml_disk_device device;       /* <disk device=>, default disk */
	enum domxml_source source;            /* <disk type=>, default file */
	char src_type[DOMXML_TOKEN_MAX + 1];  /* <disk type=> as written */
	/* file= (file), dev= (block), dir= (dir), name= (network),
	 * pool/volume (volume); "" when there is no <source>.  file and
	 * block paths are absolute. */
	char path[DOMXML_PATH_MAX + 1];
	char cache[DOMXML_TOKEN_MAX + 1];     /* <driver cache=>, "" = default */
	char format[DOMXML_TOKEN_MAX + 1];    /* <driver type=> ("raw"), or "" */
	int shareable;                        /* <shareable/> */
	int readonly;                         /* <readonly/> */
	int has_media;                        /* cdrom/floppy with a source */
};

struct domxml {
	char name[DOMXML_NAME_MAX + 1];
	char uuid[DOMXML_UUID_LEN + 1];       /* lower case, with dashes */
	uint64_t memory_bytes;                /* <memory>, at most FERRY_DEVICE_SIZE_MAX */
	uint32_t vcpus;                       /* <vcpu>: maximum vCPUs, 1..DOMXML_VCPUS_MAX */
	char arch[DOMXML_TOKEN_MAX + 1];      /* <os><type arch=>, "" if absent */
	char cpu_mode[DOMXML_TOKEN_MAX + 1];  /* <cpu mode=>: custom, host-model,
					       * host-passthrough...; "" = no <cpu> */
	char cpu_model[DOMXML_MODEL_MAX + 1]; /* <cpu><model>, "" if none */
	uint32_t ndisks;
	struct domxml_disk disk[DOMXML_MAX_DISKS];
	uint32_t nhostdevs;                   /* <hostdev> + <interface type='hostdev'> */
	char hostdev[DOMXML_DESC_MAX + 1];    /* the first: "pci 0000:06:02.0" */
};

/* A host, from virConnectGetCapabilities' XML (arch, model, uuid) and
 * from libvirt node calls (the rest; see virt_host_facts). */
struct domxml_host {
	char arch[DOMXML_TOKEN_MAX + 1];      /* /capabilities/host/cpu/arch, required */
	char model[DOMXML_MODEL_MAX + 1];     /* /capabilities/host/cpu/model, "" if none */
	char uuid[DOMXML_UUID_LEN + 1];       /* /capabilities/host/uuid, "" if none */
	uint32_t cpus;                        /* host CPUs (virNodeGetInfo) */
	uint64_t free_mem;                    /* bytes */
	int free_mem_known;                   /* 0: free_mem is not known */
	char free_mem_how[48];                /* where free_mem came from */
};

/* Parse a domain's XML (len bytes, no NUL needed).  On success *out is a
 * new struct (free with domxml_free).  FERR_VIRT_XML when malformed or
 * over a limit, FERR_NOMEM. */
int domxml_parse(const char *xml, size_t len, struct domxml **out, struct ferr *e) FERRY_MUST_CHECK;
void domxml_free(struct domxml *d);

/* Disks that migrate: device disk or lun (cdroms and floppies do not). */
int domxml_disk_migrates(const struct domxml_disk *k);
const char *domxml_device_name(enum domxml_disk_device d);

/* Parse capabilities XML into h's arch, model and uuid (other fields
 * untouched).  FERR_VIRT_XML, FERR_NOMEM. */
int domxml_caps_parse(const char *xml, size_t len, struct domxml_host *h, struct ferr *e) FERRY_MUST_CHECK;

/* One disk's new source: the disk whose <target dev=> is target gets
 * <source file=path>. */
struct domxml_path_map {
	const char *target;
	const char *path;
};

/* Rewrite a domain XML so each mapped disk's source file is the new path,
 * and return the new XML in *out (NUL-terminated, *outlen bytes without
 * the NUL; free with free()).  Every disk that migrates must be mapped,
 * each exactly once, and each mapped disk must be a file disk; the new
 * path must be absolute and within the limits.  Nothing else changes.
 * FERR_VIRT_XML (naming the disk), FERR_NOMEM. */
int domxml_rewrite_disks(const char *xml, size_t len, const struct domxml_path_map *map, size_t n,
    char **out, size_t *outlen, struct ferr *e) FERRY_MUST_CHECK;

#endif
