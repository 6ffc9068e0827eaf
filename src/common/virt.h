/* Thin wrappers over libvirt's C API for the daemons: one connection, the
 * domain calls ferry's lifecycle needs, and the host facts the checks of
 * domcheck.h use.  Domains are named by name; each call looks the domain
 * up.  Errors are FERR_VIRT values whose message names the call, the
 * domain and libvirt's own message; libvirt itself prints nothing (a
 * silent error handler is installed, process-wide, by virt_open).
 *
 * The libvirt headers are included here only through virt.c: callers see
 * plain types.  Calls block (a remote URI talks to libvirtd). */
#ifndef FERRY_VIRT_H
#define FERRY_VIRT_H

#include <stddef.h>

#include "domxml.h"
#include "err.h"

struct virt;

enum virt_state {
	VS_INVALID = 0,
	VS_RUNNING = 1,
	VS_PAUSED = 2,
	VS_SHUTOFF = 3,
	VS_OTHER = 4,         /* blocked, shutting down, crashed, suspended to disk */
};

/* Open a connection ("qemu:///system", "test:///PATH/node.xml").
 * *out: free with virt_free.  FERR_VIRT. */
int virt_open(const char *uri, struct virt **out, struct ferr *e) FERRY_MUST_CHECK;
void virt_free(struct virt *v);                 /* closes; NULL is a no-op */
const char *virt_uri(const struct virt *v);

/* The domain's live XML; with migratable, as libvirt prepares it for a
 * migration (VIR_DOMAIN_XML_MIGRATABLE).  *xml: free().  FERR_VIRT. */
int virt_domain_xml(struct virt *v, const char *name, int migratable, char **xml,
    struct ferr *e) FERRY_MUST_CHECK;
/* virConnectGetCapabilities.  *xml: free().  FERR_VIRT. */
int virt_caps_xml(struct virt *v, char **xml, struct ferr *e) FERRY_MUST_CHECK;

/* Fill every field of h: arch, model, uuid from the capabilities XML
 * (model from virNodeGetInfo when the capabilities have none and the
 * driver gives one there), cpus from virNodeGetInfo, free_mem from
 * virNodeGetFreeMemory -- or, where the driver cannot tell, the node's
 * memory minus what its running domains may use (free_mem_how says
 * which).  FERR_VIRT, FERR_VIRT_XML. */
int virt_host_facts(struct virt *v, struct domxml_host *h, struct ferr *e) FERRY_MUST_CHECK;

/* Lifecycle.  Each FERR_VIRT naming the domain. */
int virt_suspend(struct virt *v, const char *name, struct ferr *e) FERRY_MUST_CHECK;
int virt_resume(struct virt *v, const char *name, struct ferr *e) FERRY_MUST_CHECK;
/* Define (persistently) from XML; the defined domain's name into
 * name_out (size bytes) when name_out is not NULL. */
int virt_define(struct virt *v, const char *xml, char *name_out, size_t size,
    struct ferr *e) FERRY_MUST_CHECK;
int virt_start(struct virt *v, const char *name, struct ferr *e) FERRY_MUST_CHECK;
int virt_destroy(struct virt *v, const char *name, struct ferr *e) FERRY_MUST_CHECK;
/* Undefine, with its managed-save image and snapshot metadata; a running
 * domain becomes transient and goes away when destroyed. */
int virt_undefine(struct virt *v, const char *name, struct ferr *e) FERRY_MUST_CHECK;

int virt_state(struct virt *v, const char *name, enum virt_state *st, struct ferr *e) FERRY_MUST_CHECK;
const char *virt_state_name(enum virt_state s);
/* *exists = 1 when a domain of that name is defined or running. */
int virt_domain_exists(struct virt *v, const char *name, int *exists, struct ferr *e) FERRY_MUST_CHECK;

#endif
