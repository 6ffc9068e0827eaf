#include "virt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

struct virt {
	virConnectPtr conn;
	char uri[256];
};

/* libvirt's default handler prints every error to stderr; ferry reports
 * errors itself, from virGetLastError. */
static void
virt_quiet(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/* Fill e from libvirt's last error on this thread, then reset it. */
static int FERRY_PRINTF(2, 3)
virt_fail(struct ferr *e, const char *fmt, ...)
{
	char what[FERR_MSG_MAX];
	virErrorPtr le = virGetLastError();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ferr_set(e, FERR_VIRT, "%s: %s", what,
	    le != NULL && le->message != NULL ? le->message : "libvirt gave no reason");
	virResetLastError();
	return FERR_VIRT;
}

int
virt_open(const char *uri, struct virt **out, struct ferr *e)
{
	struct virt *v;

	*out = NULL;
	if (uri == NULL || uri[0] == '\0' || strlen(uri) >= sizeof(v->uri))
		return ferr_set(e, FERR_USAGE, "libvirt URI empty or longer than %zu bytes",
		    sizeof(v->uri) - 1);
	if (virInitialize() < 0)
		return virt_fail(e, "libvirt: initialising");
	virSetErrorFunc(NULL, virt_quiet);
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return ferr_set(e, FERR_NOMEM, "libvirt connection");
	snprintf(v->uri, sizeof(v->uri), "%s", uri);
	if ((v->conn = virConnectOpen(uri)) == NULL) {
		free(v);
		return virt_fail(e, "libvirt: connecting to '%s'", uri);
	}
	*out = v;
	return 0;
}

void
virt_free(struct virt *v)
{
	if (v == NULL)
		return;
	if (v->conn != NULL)
		virConnectClose(v->conn);
	free(v);
}

const char *
virt_uri(const struct virt *v)
{
	return v->uri;
}

static int
lookup(struct virt *v, const char *name, virDomainPtr *dom, struct ferr *e)
{
	if (name == NULL || name[0] == '\0')
		return ferr_set(e, FERR_USAGE, "libvirt: empty domain name");
	if ((*dom = virDomainLookupByName(v->conn, name)) == NULL)
		return virt_fail(e, "libvirt %s: domain '%s'", v->uri, name);
	return 0;
}

/* A string libvirt allocated (the caller frees it with free(), as
 * libvirt's documentation says), or the failure of the call that gave
 * none. */
static int
take_string(char *s, const char *what, char **out, struct ferr *e)
{
	if (s == NULL)
		return virt_fail(e, "%s", what);
	*out = s;
	return 0;
}

int
virt_domain_xml(struct virt *v, const char *name, int migratable, char **xml, struct ferr *e)
{
	virDomainPtr dom;
	char what[FERR_MSG_MAX];
	int rc;

	*xml = NULL;
	if ((rc = lookup(v, name, &dom, e)) != 0)
		return rc;
	snprintf(what, sizeof(what), "libvirt virDomainGetXMLDesc: domain '%s'", name);
	rc = take_string(virDomainGetXMLDesc(dom, migratable ? VIR_DOMAIN_XML_MIGRATABLE : 0), what,
	    xml, e);
	virDomainFree(dom);
	return rc;
}

int
virt_caps_xml(struct virt *v, char **xml, struct ferr *e)
{
	*xml = NULL;
	return take_string(virConnectGetCapabilities(v->conn), "libvirt virConnectGetCapabilities",
	    xml, e);
}

/* Memory running domains may use, in KiB (their maximum, not current). */
static int
running_domains_kib(struct virt *v, unsigned long long *kib, struct ferr *e)
{
	virDomainPtr *doms = NULL;
	virDomainInfo info;
	int i, n;

	*kib = 0;
	n = virConnectListAllDomains(v->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0)
		return virt_fail(e, "libvirt virConnectListAllDomains");
	for (i = 0; i < n; i++) {
		if (virDomainGetInfo(doms[i], &info) == 0)
			*kib += info.maxMem;
		virDomainFree(doms[i]);
	}
	free(doms);
	return 0;
}

static int
free_memory(struct virt *v, const virNodeInfo *ni, struct domxml_host *h, struct ferr *e)
{
	unsigned long long bytes = virNodeGetFreeMemory(v->conn), used;
	int rc;

	if (bytes != 0) {
		h->free_mem = bytes;
		h->free_mem_known = 1;
		snprintf(h->free_mem_how, sizeof(h->free_mem_how), "virNodeGetFreeMemory");
		return 0;
	}
	/* 0 is libvirt's error value here: the driver cannot tell. */
	virResetLastError();
	if ((rc = running_domains_kib(v, &used, e)) != 0)
		return rc;
	h->free_mem = ni->memory > used ? (uint64_t)(ni->memory - used) * 1024 : 0;
	h->free_mem_known = 1;
	snprintf(h->free_mem_how, sizeof(h->free_mem_how), "node memory minus running domains");
	return 0;
}

/* virNodeGetInfo's model is the CPU model on some drivers and only the
 * architecture on others (QEMU): use it when it says more. */
static void
model_from_nodeinfo(const virNodeInfo *ni, struct domxml_host *h)
{
	size_t n = strnlen(ni->model, sizeof(ni->model)), i;

	if (h->model[0] != '\0' || n == 0 || n >= sizeof(h->model) || n >= sizeof(ni->model))
		return;
	for (i = 0; i < n; i++)
		if ((unsigned char)ni->model[i] < 0x21 || (unsigned char)ni->model[i] > 0x7e)
			return;
	if (strncmp(ni->model, h->arch, n) == 0 && h->arch[n] == '\0')
		return;
	memcpy(h->model, ni->model, n);
	h->model[n] = '\0';
}

int
virt_host_facts(struct virt *v, struct domxml_host *h, struct ferr *e)
{
	virNodeInfo ni;
	char *caps = NULL;
	int rc;

	memset(h, 0, sizeof(*h));
	if ((rc = virt_caps_xml(v, &caps, e)) != 0)
		return rc;
	rc = domxml_caps_parse(caps, strlen(caps), h, e);
	free(caps);
	if (rc != 0)
		return rc;
	if (virNodeGetInfo(v->conn, &ni) < 0)
		return virt_fail(e, "libvirt virNodeGetInfo");
	h->cpus = ni.cpus;
	model_from_nodeinfo(&ni, h);
	return free_memory(v, &ni, h, e);
}

/* One domain call: look the domain up, call fn, name both on failure. */
static int
domain_call(struct virt *v, const char *name, int (*fn)(virDomainPtr), const char *call,
    struct ferr *e)
{
	virDomainPtr dom;
	int rc;

	if ((rc = lookup(v, name, &dom, e)) != 0)
		return rc;
	if (fn(dom) < 0)
		rc = virt_fail(e, "libvirt %s: domain '%s'", call, name);
	virDomainFree(dom);
	return rc;
}

int
virt_suspend(struct virt *v, const char *name, struct ferr *e)
{
	return domain_call(v, name, virDomainSuspend, "virDomainSuspend", e);
}

int
virt_resume(struct virt *v, const char *name, struct ferr *e)
{
	return domain_call(v, name, virDomainResume, "virDomainResume", e);
}

int
virt_start(struct virt *v, const char *name, struct ferr *e)
{
	return domain_call(v, name, virDomainCreate, "virDomainCreate", e);
}

int
virt_destroy(struct virt *v, const char *name, struct ferr *e)
{
	return domain_call(v, name, virDomainDestroy, "virDomainDestroy", e);
}

static int
undefine_all(virDomainPtr dom)
{
	return virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
	    VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA);
}

int
virt_undefine(struct virt *v, const char *name, struct ferr *e)
{
	return domain_call(v, name, undefine_all, "virDomainUndefineFlags", e);
}

int
virt_define(struct virt *v, const char *xml, char *name_out, size_t size, struct ferr *e)
{
	virDomainPtr dom;
	const char *name;

	if (xml == NULL || xml[0] == '\0')
		return ferr_set(e, FERR_USAGE, "libvirt virDomainDefineXML: empty XML");
	if ((dom = virDomainDefineXML(v->conn, xml)) == NULL)
		return virt_fail(e, "libvirt virDomainDefineXML on %s", v->uri);
	name = virDomainGetName(dom);
	if (name_out != NULL && size > 0)
		snprintf(name_out, size, "%s", name != NULL ? name : "");
	virDomainFree(dom);
	return 0;
}

static enum virt_state
state_from(int s)
{
	switch (s) {
	case VIR_DOMAIN_RUNNING: return VS_RUNNING;
	case VIR_DOMAIN_PAUSED: return VS_PAUSED;
	case VIR_DOMAIN_SHUTOFF: return VS_SHUTOFF;
	default: return VS_OTHER;
	}
}

int
virt_state(struct virt *v, const char *name, enum virt_state *st, struct ferr *e)
{
	virDomainPtr dom;
	int s = 0, reason = 0, rc;

	*st = VS_INVALID;
	if ((rc = lookup(v, name, &dom, e)) != 0)
		return rc;
	if (virDomainGetState(dom, &s, &reason, 0) < 0)
		rc = virt_fail(e, "libvirt virDomainGetState: domain '%s'", name);
	else
		*st = state_from(s);
	virDomainFree(dom);
	return rc;
}

const char *
virt_state_name(enum virt_state s)
{
	switch (s) {
	case VS_RUNNING: return "running";
	case VS_PAUSED: return "paused";
	case VS_SHUTOFF: return "shut off";
	case VS_OTHER: return "other";
	default: return "invalid";
	}
}

int
virt_domain_exists(struct virt *v, const char *name, int *exists, struct ferr *e)
{
	virDomainPtr dom;
	virErrorPtr le;

	*exists = 0;
	if (name == NULL || name[0] == '\0')
		return ferr_set(e, FERR_USAGE, "libvirt: empty domain name");
	if ((dom = virDomainLookupByName(v->conn, name)) != NULL) {
		*exists = 1;
		virDomainFree(dom);
		return 0;
	}
	le = virGetLastError();
	if (le != NULL && le->code == VIR_ERR_NO_DOMAIN) {
		virResetLastError();
		return 0;
	}
	return virt_fail(e, "libvirt %s: looking up domain '%s'", v->uri, name);
}
