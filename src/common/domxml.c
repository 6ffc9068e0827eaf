#include "domxml.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "ferry_proto.h"

/* A parsed document and its XPath context. */
struct xdoc {
	xmlDocPtr doc;
	xmlXPathContextPtr xp;
	const char *what;             /* "domain XML", for messages */
};

static void
xdoc_fini(struct xdoc *x)
{
	if (x->xp != NULL)
		xmlXPathFreeContext(x->xp);
	if (x->doc != NULL)
		xmlFreeDoc(x->doc);
	x->xp = NULL;
	x->doc = NULL;
}

static int
has_bytes(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	return len >= n && memmem(p, len, needle, n) != NULL;
}

/* Why a document failed to parse, from libxml2's record of it. */
static int
parse_failed(xmlParserCtxtPtr ctxt, const char *what, struct ferr *e)
{
	const xmlError *le = ctxt != NULL ? xmlCtxtGetLastError(ctxt) : NULL;
	char msg[160] = "not well-formed";
	size_t n;

	if (le != NULL && le->message != NULL) {
		snprintf(msg, sizeof(msg), "%s", le->message);
		n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		return ferr_set(e, FERR_VIRT_XML, "%s: line %d: %s", what, le->line, msg);
	}
	return ferr_set(e, FERR_VIRT_XML, "%s: %s", what, msg);
}

/* Parse untrusted XML: bounded size, no DOCTYPE (so no entities), no
 * network access, libxml2 prints nothing; the root must be <root>. */
static int
xdoc_open(struct xdoc *x, const char *xml, size_t len, const char *root, const char *what,
    struct ferr *e)
{
	xmlParserCtxtPtr ctxt;
	xmlNodePtr top;
	int rc;

	memset(x, 0, sizeof(*x));
	x->what = what;
	if (xml == NULL || len == 0)
		return ferr_set(e, FERR_VIRT_XML, "%s: empty", what);
	if (len > DOMXML_MAX_BYTES)
		return ferr_set(e, FERR_VIRT_XML, "%s: %zu bytes > limit %u", what, len,
		    DOMXML_MAX_BYTES);
	if (has_bytes(xml, len, "<!DOCTYPE") || has_bytes(xml, len, "<!ENTITY"))
		return ferr_set(e, FERR_VIRT_XML, "%s: DOCTYPE and entity declarations are not allowed",
		    what);
	xmlInitParser();
	if ((ctxt = xmlNewParserCtxt()) == NULL)
		return ferr_set(e, FERR_NOMEM, "%s: parser", what);
	x->doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (x->doc == NULL || !ctxt->wellFormed) {
		rc = parse_failed(ctxt, what, e);
		xmlFreeParserCtxt(ctxt);
		xdoc_fini(x);
		return rc;
	}
	xmlFreeParserCtxt(ctxt);
	top = xmlDocGetRootElement(x->doc);
	if (x->doc->intSubset != NULL || x->doc->extSubset != NULL) {
		xdoc_fini(x);
		return ferr_set(e, FERR_VIRT_XML, "%s: DOCTYPE is not allowed", what);
	}
	if (top == NULL || top->ns != NULL || xmlStrcmp(top->name, BAD_CAST root) != 0) {
		xdoc_fini(x);
		return ferr_set(e, FERR_VIRT_XML, "%s: root element is not <%s>", what, root);
	}
	if ((x->xp = xmlXPathNewContext(x->doc)) == NULL) {
		xdoc_fini(x);
		return ferr_set(e, FERR_NOMEM, "%s: XPath context", what);
	}
	return 0;
}

/* Evaluate expr with node as the context node (NULL: the document). */
static xmlXPathObjectPtr
xp_eval(struct xdoc *x, xmlNodePtr node, const char *expr)
{
	x->xp->node = node != NULL ? node : (xmlNodePtr)x->doc;
	return xmlXPathEvalExpression(BAD_CAST expr, x->xp);
}

/* The nodes expr selects; NULL with *e filled on failure.  Free the
 * result with xmlXPathFreeObject. */
static xmlXPathObjectPtr
xp_nodes(struct xdoc *x, xmlNodePtr node, const char *expr, struct ferr *e)
{
	xmlXPathObjectPtr o = xp_eval(x, node, expr);

	if (o == NULL || o->type != XPATH_NODESET) {
		xmlXPathFreeObject(o);
		ferr_set(e, FERR_NOMEM, "%s: evaluating %s", x->what, expr);
		return NULL;
	}
	return o;
}

static int
nodes_count(const xmlXPathObject *o)
{
	return o->nodesetval != NULL ? o->nodesetval->nodeNr : 0;
}

/* How many nodes expr selects, or -1 with *e filled. */
static int
xp_count(struct xdoc *x, xmlNodePtr node, const char *expr, struct ferr *e)
{
	xmlXPathObjectPtr o = xp_nodes(x, node, expr, e);
	int n;

	if (o == NULL)
		return -1;
	n = nodes_count(o);
	xmlXPathFreeObject(o);
	return n;
}

static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* The string value of expr (for example "string(./target/@dev)") into
 * buf: "" when the node is absent.  Refused when longer than size - 1
 * bytes or when it holds control characters.  what names the field in
 * messages. */
static int
xp_text(struct xdoc *x, xmlNodePtr node, const char *expr, const char *what, char *buf,
    size_t size, struct ferr *e)
{
	xmlXPathObjectPtr o = xp_eval(x, node, expr);
	size_t n;

	buf[0] = '\0';
	if (o == NULL || o->type != XPATH_STRING || o->stringval == NULL) {
		xmlXPathFreeObject(o);
		return ferr_set(e, FERR_NOMEM, "%s: evaluating %s", x->what, expr);
	}
	n = strlen((const char *)o->stringval);
	if (n >= size) {
		xmlXPathFreeObject(o);
		return ferr_set(e, FERR_VIRT_XML, "%s: %s: %zu bytes > limit %zu", x->what, what, n,
		    size - 1);
	}
	memcpy(buf, o->stringval, n + 1);
	xmlXPathFreeObject(o);
	if (has_control(buf)) {
		buf[0] = '\0';
		return ferr_set(e, FERR_VIRT_XML, "%s: %s: control characters", x->what, what);
	}
	return 0;
}

/* A token such as an arch, a cache mode or a target dev: letters,
 * digits and "_.+-" only.  Empty is allowed (absent); callers that need
 * a value check for "". */
static int
check_token(struct xdoc *x, const char *s, const char *what, struct ferr *e)
{
	const char *p;

	for (p = s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("_.+-", *p) == NULL)
			return ferr_set(e, FERR_VIRT_XML, "%s: %s '%s': only letters, digits and _.+- allowed",
			    x->what, what, s);
	return 0;
}

static int
xp_token(struct xdoc *x, xmlNodePtr node, const char *expr, const char *what, char *buf,
    size_t size, struct ferr *e)
{
	int rc;

	if ((rc = xp_text(x, node, expr, what, buf, size, e)) != 0)
		return rc;
	return check_token(x, buf, what, e);
}

/* Elements that may appear at most once (max 1) or exactly once (min 1). */
static int
xp_expect(struct xdoc *x, xmlNodePtr node, const char *expr, int min, int max, const char *what,
    struct ferr *e)
{
	int n = xp_count(x, node, expr, e);

	if (n < 0)
		return e->code;
	if (n < min)
		return ferr_set(e, FERR_VIRT_XML, "%s: %s missing", x->what, what);
	if (n > max)
		return ferr_set(e, FERR_VIRT_XML, "%s: %s appears %d times", x->what, what, n);
	return 0;
}

/* ---- domain: scalars --------------------------------------------------- */

static int
parse_name(struct xdoc *x, struct domxml *d, struct ferr *e)
{
	int rc;

	if ((rc = xp_expect(x, NULL, "/domain/name", 1, 1, "<name>", e)) != 0)
		return rc;
	if ((rc = xp_text(x, NULL, "string(/domain/name)", "<name>", d->name, sizeof(d->name), e)) != 0)
		return rc;
	if (d->name[0] == '\0' || strchr(d->name, '/') != NULL)
		return ferr_set(e, FERR_VIRT_XML, "%s: <name> '%s': empty or holds '/'", x->what, d->name);
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 32 hex digits, dashes allowed between them; stored 8-4-4-4-12. */
static int
parse_uuid_text(struct xdoc *x, const char *s, const char *what, char out[DOMXML_UUID_LEN + 1],
    struct ferr *e)
{
	static const char hex[] = "0123456789abcdef";
	int digits = 0, o = 0;
	const char *p;

	for (p = s; *p != '\0'; p++) {
		if (*p == '-')
			continue;
		if (hexval((unsigned char)*p) < 0 || digits == 32)
			return ferr_set(e, FERR_VIRT_XML, "%s: %s '%s' is not a UUID", x->what, what, s);
		if (digits == 8 || digits == 12 || digits == 16 || digits == 20)
			out[o++] = '-';
		out[o++] = hex[hexval((unsigned char)*p)];
		digits++;
	}
	out[o] = '\0';
	if (digits != 32)
		return ferr_set(e, FERR_VIRT_XML, "%s: %s '%s' is not a UUID", x->what, what, s);
	return 0;
}

static int
parse_uuid(struct xdoc *x, struct domxml *d, struct ferr *e)
{
	char buf[80];
	int rc;

	if ((rc = xp_expect(x, NULL, "/domain/uuid", 1, 1, "<uuid>", e)) != 0)
		return rc;
	if ((rc = xp_text(x, NULL, "string(/domain/uuid)", "<uuid>", buf, sizeof(buf), e)) != 0)
		return rc;
	return parse_uuid_text(x, buf, "<uuid>", d->uuid, e);
}

/* A decimal number without sign or spaces, at most max. */
static int
parse_decimal(struct xdoc *x, const char *s, uint64_t max, const char *what, uint64_t *out,
    struct ferr *e)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p == '\0')
		return ferr_set(e, FERR_VIRT_XML, "%s: %s: no value", x->what, what);
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return ferr_set(e, FERR_VIRT_XML, "%s: %s '%s' is not a number", x->what, what, s);
		if (v > (max - (uint64_t)(*p - '0')) / 10)
			return ferr_set(e, FERR_VIRT_XML, "%s: %s '%s' > limit %llu", x->what, what, s,
			    (unsigned long long)max);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* libvirt's scaled units ("KiB", "M", "GB", ...); the default is KiB. */
static int
unit_scale(const char *unit, uint64_t *scale)
{
	static const struct {
		const char *name;
		uint64_t scale;
	} units[] = {
		{ "", 1024 }, { "b", 1 }, { "bytes", 1 },
		{ "k", 1ull << 10 }, { "kib", 1ull << 10 }, { "kb", 1000ull },
		{ "m", 1ull << 20 }, { "mib", 1ull << 20 }, { "mb", 1000000ull },
		{ "g", 1ull << 30 }, { "gib", 1ull << 30 }, { "gb", 1000000000ull },
		{ "t", 1ull << 40 }, { "tib", 1ull << 40 }, { "tb", 1000000000000ull },
	};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(unit, units[i].name) == 0) {
			*scale = units[i].scale;
			return 0;
		}
	}
	return -1;
}

static int
parse_memory(struct xdoc *x, struct domxml *d, struct ferr *e)
{
	char text[32], unit[DOMXML_TOKEN_MAX + 1];
	uint64_t v, scale;
	int rc;

	if ((rc = xp_expect(x, NULL, "/domain/memory", 1, 1, "<memory>", e)) != 0 ||
	    (rc = xp_text(x, NULL, "normalize-space(/domain/memory)", "<memory>", text, sizeof(text), e)) != 0 ||
	    (rc = xp_token(x, NULL, "string(/domain/memory/@unit)", "<memory unit=>", unit, sizeof(unit), e)) != 0)
		return rc;
	if (unit_scale(unit, &scale) != 0)
		return ferr_set(e, FERR_VIRT_XML, "%s: <memory unit='%s'>: unknown unit", x->what, unit);
	if ((rc = parse_decimal(x, text, FERRY_DEVICE_SIZE_MAX / scale, "<memory>", &v, e)) != 0)
		return rc;
	if (v == 0)
		return ferr_set(e, FERR_VIRT_XML, "%s: <memory> is 0", x->what);
	d->memory_bytes = v * scale;
	return 0;
}

static int
parse_vcpus(struct xdoc *x, struct domxml *d, struct ferr *e)
{
	char text[32];
	uint64_t v;
	int rc;

	if ((rc = xp_expect(x, NULL, "/domain/vcpu", 1, 1, "<vcpu>", e)) != 0 ||
	    (rc = xp_text(x, NULL, "normalize-space(/domain/vcpu)", "<vcpu>", text, sizeof(text), e)) != 0 ||
	    (rc = parse_decimal(x, text, DOMXML_VCPUS_MAX, "<vcpu>", &v, e)) != 0)
		return rc;
	if (v == 0)
		return ferr_set(e, FERR_VIRT_XML, "%s: <vcpu> is 0", x->what);
	d->vcpus = (uint32_t)v;
	return 0;
}

static int
parse_cpu(struct xdoc *x, struct domxml *d, struct ferr *e)
{
	int rc, n;

	if ((rc = xp_expect(x, NULL, "/domain/os/type", 0, 1, "<os><type>", e)) != 0 ||
	    (rc = xp_token(x, NULL, "string(/domain/os/type/@arch)", "<os><type arch=>", d->arch,
	    sizeof(d->arch), e)) != 0 ||
	    (rc = xp_expect(x, NULL, "/domain/cpu", 0, 1, "<cpu>", e)) != 0 ||
	    (rc = xp_expect(x, NULL, "/domain/cpu/model", 0, 1, "<cpu><model>", e)) != 0)
		return rc;
	if ((n = xp_count(x, NULL, "/domain/cpu", e)) < 0)
		return e->code;
	if (n == 0)
		return 0;
	if ((rc = xp_token(x, NULL, "string(/domain/cpu/@mode)", "<cpu mode=>", d->cpu_mode,
	    sizeof(d->cpu_mode), e)) != 0 ||
	    (rc = xp_token(x, NULL, "normalize-space(/domain/cpu/model)", "<cpu><model>", d->cpu_model,
	    sizeof(d->cpu_model), e)) != 0)
		return rc;
	if (d->cpu_mode[0] == '\0')
		snprintf(d->cpu_mode, sizeof(d->cpu_mode), "custom");
	return 0;
}

/* ---- domain: host devices ----------------------------------------------- */

/* A hex number as libvirt writes PCI and USB ids ("0x06", "06"). */
static int
hex_attr(struct xdoc *x, xmlNodePtr node, const char *expr, unsigned max, unsigned *out)
{
	char buf[16], *end;
	unsigned long v;
	struct ferr ignore = { 0 };

	if (xp_text(x, node, expr, "id", buf, sizeof(buf), &ignore) != 0 || buf[0] == '\0' ||
	    !isxdigit((unsigned char)buf[0]))
		return -1;
	v = strtoul(buf, &end, 16);
	if (*end != '\0' || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void
describe_pci(struct xdoc *x, xmlNodePtr n, char *out, size_t size)
{
	unsigned dom, bus, slot, fn;

	if (hex_attr(x, n, "string(./source/address/@domain)", 0xffff, &dom) == 0 &&
	    hex_attr(x, n, "string(./source/address/@bus)", 0xff, &bus) == 0 &&
	    hex_attr(x, n, "string(./source/address/@slot)", 0x1f, &slot) == 0 &&
	    hex_attr(x, n, "string(./source/address/@function)", 7, &fn) == 0)
		snprintf(out, size, "pci %04x:%02x:%02x.%x", dom, bus, slot, fn);
	else
		snprintf(out, size, "pci (address not given)");
}

static void
describe_usb(struct xdoc *x, xmlNodePtr n, char *out, size_t size)
{
	unsigned vendor, product;
	char bus[8], dev[8];
	struct ferr ignore = { 0 };

	if (hex_attr(x, n, "string(./source/vendor/@id)", 0xffff, &vendor) == 0 &&
	    hex_attr(x, n, "string(./source/product/@id)", 0xffff, &product) == 0) {
		snprintf(out, size, "usb %04x:%04x", vendor, product);
		return;
	}
	if (xp_text(x, n, "string(./source/address/@bus)", "bus", bus, sizeof(bus), &ignore) == 0 &&
	    xp_text(x, n, "string(./source/address/@device)", "device", dev, sizeof(dev), &ignore) == 0 &&
	    check_token(x, bus, "bus", &ignore) == 0 && check_token(x, dev, "device", &ignore) == 0 &&
	    bus[0] != '\0' && dev[0] != '\0') {
		snprintf(out, size, "usb bus %s device %s", bus, dev);
		return;
	}
	snprintf(out, size, "usb (device not given)");
}

/* "pci 0000:06:02.0", "usb 046d:c52b", "interface pci 0000:...", "scsi". */
static void
describe_hostdev(struct xdoc *x, xmlNodePtr n, char *out, size_t size)
{
	char type[DOMXML_TOKEN_MAX + 1], inner[DOMXML_DESC_MAX + 1];
	struct ferr ignore = { 0 };
	int iface = xmlStrcmp(n->name, BAD_CAST "interface") == 0;

	if (iface)
		snprintf(type, sizeof(type), "pci");
	else if (xp_token(x, n, "string(./@type)", "type", type, sizeof(type), &ignore) != 0 ||
	    type[0] == '\0')
		snprintf(type, sizeof(type), "hostdev");
	if (strcmp(type, "pci") == 0)
		describe_pci(x, n, inner, sizeof(inner));
	else if (strcmp(type, "usb") == 0)
		describe_usb(x, n, inner, sizeof(inner));
	else
		snprintf(inner, sizeof(inner), "%s", type);
	snprintf(out, size, "%s%s", iface ? "interface type hostdev, " : "", inner);
}

static int
parse_hostdevs(struct xdoc *x, struct domxml *d, struct ferr *e)
{
	xmlXPathObjectPtr o;

	o = xp_nodes(x, NULL, "/domain/devices/hostdev | /domain/devices/interface[@type='hostdev']", e);
	if (o == NULL)
		return e->code;
	d->nhostdevs = (uint32_t)nodes_count(o);
	if (d->nhostdevs > 0)
		describe_hostdev(x, o->nodesetval->nodeTab[0], d->hostdev, sizeof(d->hostdev));
	xmlXPathFreeObject(o);
	return 0;
}

/* ---- domain: disks -------------------------------------------------------- */

static int
disk_device(const char *s, enum domxml_disk_device *out)
{
	static const char *const names[] = { "", "disk", "cdrom", "floppy", "lun" };
	size_t i;

	if (s[0] == '\0') {
		*out = DD_DISK;
		return 0;
	}
	for (i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum domxml_disk_device)i;
			return 0;
		}
	}
	return -1;
}

const char *
domxml_device_name(enum domxml_disk_device d)
{
	switch (d) {
	case DD_DISK: return "disk";
	case DD_CDROM: return "cdrom";
	case DD_FLOPPY: return "floppy";
	case DD_LUN: return "lun";
	default: return "invalid";
	}
}

int
domxml_disk_migrates(const struct domxml_disk *k)
{
	return k->device == DD_DISK || k->device == DD_LUN;
}

static enum domxml_source
disk_source_kind(const char *type)
{
	if (type[0] == '\0' || strcmp(type, "file") == 0)
		return DS_FILE;
	if (strcmp(type, "block") == 0)
		return DS_BLOCK;
	if (strcmp(type, "network") == 0)
		return DS_NETWORK;
	return DS_OTHER;
}

/* The <source> of a disk as one string (see struct domxml_disk). */
static int
disk_source_path(struct xdoc *x, xmlNodePtr n, struct domxml_disk *k, const char *what,
    struct ferr *e)
{
	char pool[DOMXML_NAME_MAX + 1], vol[DOMXML_NAME_MAX + 1];
	const char *expr = NULL;
	int rc;

	if ((rc = xp_expect(x, n, "./source", 0, 1, "<source>", e)) != 0)
		return ferr_wrap(e, "%s", what);
	if (strcmp(k->src_type, "volume") == 0) {
		if ((rc = xp_text(x, n, "string(./source/@pool)", "<source pool=>", pool, sizeof(pool), e)) != 0 ||
		    (rc = xp_text(x, n, "string(./source/@volume)", "<source volume=>", vol, sizeof(vol), e)) != 0)
			return ferr_wrap(e, "%s", what);
		if (pool[0] != '\0' || vol[0] != '\0')
			snprintf(k->path, sizeof(k->path), "%s/%s", pool, vol);
		return 0;
	}
	if (k->source == DS_FILE)
		expr = "string(./source/@file)";
	else if (k->source == DS_BLOCK)
		expr = "string(./source/@dev)";
	else if (k->source == DS_NETWORK)
		expr = "string(./source/@name)";
	else if (strcmp(k->src_type, "dir") == 0)
		expr = "string(./source/@dir)";
	if (expr == NULL)
		return 0;
	if ((rc = xp_text(x, n, expr, "<source>", k->path, sizeof(k->path), e)) != 0)
		return ferr_wrap(e, "%s", what);
	if ((k->source == DS_FILE || k->source == DS_BLOCK) && k->path[0] != '\0' && k->path[0] != '/')
		return ferr_set(e, FERR_VIRT_XML, "%s: %s: source '%s' is not an absolute path", x->what,
		    what, k->path);
	return 0;
}

static int
parse_disk(struct xdoc *x, xmlNodePtr n, uint32_t idx, struct domxml_disk *k, struct ferr *e)
{
	char what[DOMXML_TARGET_MAX + 32], device[DOMXML_TOKEN_MAX + 1];
	int rc, cnt;

	snprintf(what, sizeof(what), "disk %u", idx);
	if ((rc = xp_expect(x, n, "./target", 1, 1, "<target>", e)) != 0 ||
	    (rc = xp_token(x, n, "string(./target/@dev)", "<target dev=>", k->target,
	    sizeof(k->target), e)) != 0)
		return ferr_wrap(e, "%s", what);
	if (k->target[0] == '\0')
		return ferr_set(e, FERR_VIRT_XML, "%s: %s: <target dev=> missing", x->what, what);
	snprintf(what, sizeof(what), "disk %s", k->target);
	if ((rc = xp_token(x, n, "string(./@device)", "<disk device=>", device, sizeof(device), e)) != 0 ||
	    (rc = xp_token(x, n, "string(./@type)", "<disk type=>", k->src_type, sizeof(k->src_type), e)) != 0)
		return ferr_wrap(e, "%s", what);
	if (disk_device(device, &k->device) != 0)
		return ferr_set(e, FERR_VIRT_XML, "%s: %s: unknown device '%s'", x->what, what, device);
	if (k->src_type[0] == '\0')
		snprintf(k->src_type, sizeof(k->src_type), "file");
	k->source = disk_source_kind(k->src_type);
	if ((rc = disk_source_path(x, n, k, what, e)) != 0)
		return rc;
	if ((rc = xp_expect(x, n, "./driver", 0, 1, "<driver>", e)) != 0 ||
	    (rc = xp_token(x, n, "string(./driver/@cache)", "<driver cache=>", k->cache, sizeof(k->cache), e)) != 0 ||
	    (rc = xp_token(x, n, "string(./driver/@type)", "<driver type=>", k->format, sizeof(k->format), e)) != 0)
		return ferr_wrap(e, "%s", what);
	if ((cnt = xp_count(x, n, "./shareable", e)) < 0)
		return e->code;
	k->shareable = cnt > 0;
	if ((cnt = xp_count(x, n, "./readonly", e)) < 0)
		return e->code;
	k->readonly = cnt > 0;
	k->has_media = (k->device == DD_CDROM || k->device == DD_FLOPPY) && k->path[0] != '\0';
	return 0;
}

static int
parse_disks(struct xdoc *x, struct domxml *d, struct ferr *e)
{
	xmlXPathObjectPtr o = xp_nodes(x, NULL, "/domain/devices/disk", e);
	uint32_t i, j;
	int rc = 0, n;

	if (o == NULL)
		return e->code;
	n = nodes_count(o);
	if ((uint32_t)n > DOMXML_MAX_DISKS) {
		xmlXPathFreeObject(o);
		return ferr_set(e, FERR_VIRT_XML, "%s: %d disks > limit %u", x->what, n, DOMXML_MAX_DISKS);
	}
	for (i = 0; i < (uint32_t)n && rc == 0; i++) {
		rc = parse_disk(x, o->nodesetval->nodeTab[i], i, &d->disk[i], e);
		for (j = 0; j < i && rc == 0; j++)
			if (strcmp(d->disk[j].target, d->disk[i].target) == 0)
				rc = ferr_set(e, FERR_VIRT_XML, "%s: two disks with target '%s'", x->what,
				    d->disk[i].target);
	}
	xmlXPathFreeObject(o);
	d->ndisks = rc == 0 ? (uint32_t)n : 0;
	return rc;
}

int
domxml_parse(const char *xml, size_t len, struct domxml **out, struct ferr *e)
{
	char what[DOMXML_NAME_MAX + 16];
	struct xdoc x;
	struct domxml *d;
	int rc;

	*out = NULL;
	if ((rc = xdoc_open(&x, xml, len, "domain", "domain XML", e)) != 0)
		return rc;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		xdoc_fini(&x);
		return ferr_set(e, FERR_NOMEM, "domain XML: %zu bytes", sizeof(*d));
	}
	if ((rc = parse_name(&x, d, e)) != 0)
		goto out;
	/* From here on messages name the domain. */
	snprintf(what, sizeof(what), "domain '%s'", d->name);
	x.what = what;
	if ((rc = parse_uuid(&x, d, e)) != 0 || (rc = parse_memory(&x, d, e)) != 0 ||
	    (rc = parse_vcpus(&x, d, e)) != 0 || (rc = parse_cpu(&x, d, e)) != 0 ||
	    (rc = parse_disks(&x, d, e)) != 0 || (rc = parse_hostdevs(&x, d, e)) != 0)
		goto out;
	*out = d;
	d = NULL;
out:
	domxml_free(d);
	xdoc_fini(&x);
	return rc;
}

void
domxml_free(struct domxml *d)
{
	free(d);
}

/* ---- capabilities -------------------------------------------------------- */

int
domxml_caps_parse(const char *xml, size_t len, struct domxml_host *h, struct ferr *e)
{
	struct xdoc x;
	char uuid[80];
	int rc;

	if ((rc = xdoc_open(&x, xml, len, "capabilities", "capabilities XML", e)) != 0)
		return rc;
	if ((rc = xp_expect(&x, NULL, "/capabilities/host", 1, 1, "<host>", e)) != 0 ||
	    (rc = xp_expect(&x, NULL, "/capabilities/host/cpu", 1, 1, "<host><cpu>", e)) != 0 ||
	    (rc = xp_expect(&x, NULL, "/capabilities/host/cpu/arch", 1, 1, "<host><cpu><arch>", e)) != 0 ||
	    (rc = xp_expect(&x, NULL, "/capabilities/host/cpu/model", 0, 1, "<host><cpu><model>", e)) != 0 ||
	    (rc = xp_expect(&x, NULL, "/capabilities/host/uuid", 0, 1, "<host><uuid>", e)) != 0 ||
	    (rc = xp_token(&x, NULL, "normalize-space(/capabilities/host/cpu/arch)", "<arch>", h->arch,
	    sizeof(h->arch), e)) != 0 ||
	    (rc = xp_token(&x, NULL, "normalize-space(/capabilities/host/cpu/model)", "<model>", h->model,
	    sizeof(h->model), e)) != 0 ||
	    (rc = xp_text(&x, NULL, "normalize-space(/capabilities/host/uuid)", "<uuid>", uuid,
	    sizeof(uuid), e)) != 0)
		goto out;
	if (h->arch[0] == '\0') {
		rc = ferr_set(e, FERR_VIRT_XML, "capabilities XML: <host><cpu><arch> is empty");
		goto out;
	}
	h->uuid[0] = '\0';
	if (uuid[0] != '\0')
		rc = parse_uuid_text(&x, uuid, "<host><uuid>", h->uuid, e);
out:
	xdoc_fini(&x);
	return rc;
}

/* ---- rewriting disk sources ------------------------------------------------ */

static int
check_map(const struct domxml_path_map *map, size_t n, struct ferr *e)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		const struct domxml_path_map *m = &map[i];

		if (m->target == NULL || m->target[0] == '\0' || strlen(m->target) > DOMXML_TARGET_MAX)
			return ferr_set(e, FERR_VIRT_XML, "disk map %zu: target empty or too long", i);
		if (m->path == NULL || m->path[0] != '/' || strlen(m->path) > DOMXML_PATH_MAX ||
		    has_control(m->path))
			return ferr_set(e, FERR_VIRT_XML,
			    "disk %s: new path '%s' is not an absolute path within %u bytes", m->target,
			    m->path != NULL ? m->path : "(null)", DOMXML_PATH_MAX);
		for (j = 0; j < i; j++)
			if (strcmp(map[j].target, m->target) == 0)
				return ferr_set(e, FERR_VIRT_XML, "disk %s: mapped twice", m->target);
	}
	return 0;
}

/* Point one disk node at path: its <source file=> (created if absent). */
static int
set_source_file(xmlNodePtr disk, const char *target, const char *path, struct ferr *e)
{
	xmlNodePtr c, src = NULL;

	for (c = disk->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE && c->ns == NULL &&
		    xmlStrcmp(c->name, BAD_CAST "source") == 0)
			src = c;
	if (src == NULL && (src = xmlNewChild(disk, NULL, BAD_CAST "source", NULL)) == NULL)
		return ferr_set(e, FERR_NOMEM, "disk %s: new <source>", target);
	if (xmlSetProp(src, BAD_CAST "file", BAD_CAST path) == NULL)
		return ferr_set(e, FERR_NOMEM, "disk %s: setting <source file=>", target);
	return 0;
}

static const struct domxml_path_map *
map_find(const struct domxml_path_map *map, size_t n, const char *target)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(map[i].target, target) == 0)
			return &map[i];
	return NULL;
}

/* Rewrite every disk node, after domxml_parse has validated the same
 * document: d says what each node (in document order) is. */
static int
rewrite_nodes(struct xdoc *x, const struct domxml *d, const struct domxml_path_map *map, size_t n,
    struct ferr *e)
{
	xmlXPathObjectPtr o = xp_nodes(x, NULL, "/domain/devices/disk", e);
	size_t i, used = 0;
	int rc = 0;

	if (o == NULL)
		return e->code;
	for (i = 0; i < d->ndisks && rc == 0; i++) {
		const struct domxml_disk *k = &d->disk[i];
		const struct domxml_path_map *m = map_find(map, n, k->target);

		if (m == NULL) {
			if (domxml_disk_migrates(k))
				rc = ferr_set(e, FERR_VIRT_XML, "disk %s: no destination path given", k->target);
			continue;
		}
		used++;
		if (!domxml_disk_migrates(k))
			rc = ferr_set(e, FERR_VIRT_XML, "disk %s: a %s, not migrated: no path to rewrite",
			    k->target, domxml_device_name(k->device));
		else if (k->source != DS_FILE)
			rc = ferr_set(e, FERR_VIRT_XML, "disk %s: type '%s', not a file: cannot rewrite",
			    k->target, k->src_type);
		else
			rc = set_source_file(o->nodesetval->nodeTab[i], k->target, m->path, e);
	}
	xmlXPathFreeObject(o);
	if (rc == 0 && used != n) {
		for (i = 0; i < n; i++) {
			uint32_t j;

			for (j = 0; j < d->ndisks && strcmp(d->disk[j].target, map[i].target) != 0; j++)
				;
			if (j == d->ndisks)
				return ferr_set(e, FERR_VIRT_XML, "disk %s: no such disk in domain '%s'",
				    map[i].target, d->name);
		}
	}
	return rc;
}

static int
dump_root(struct xdoc *x, char **out, size_t *outlen, struct ferr *e)
{
	xmlBufferPtr buf = xmlBufferCreate();
	int n;

	if (buf == NULL)
		return ferr_set(e, FERR_NOMEM, "domain XML: output buffer");
	n = xmlNodeDump(buf, x->doc, xmlDocGetRootElement(x->doc), 0, 0);
	if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL) {
		xmlBufferFree(buf);
		return ferr_set(e, FERR_NOMEM, "domain XML: output of %d bytes", n);
	}
	memcpy(*out, xmlBufferContent(buf), (size_t)n);
	(*out)[n] = '\0';
	*outlen = (size_t)n;
	xmlBufferFree(buf);
	return 0;
}

int
domxml_rewrite_disks(const char *xml, size_t len, const struct domxml_path_map *map, size_t n,
    char **out, size_t *outlen, struct ferr *e)
{
	struct domxml *d = NULL;
	struct xdoc x;
	int rc;

	*out = NULL;
	*outlen = 0;
	if ((rc = check_map(map, n, e)) != 0)
		return rc;
	/* The same bytes parsed twice: once into the struct (validated),
	 * once into the tree that is edited. */
	if ((rc = domxml_parse(xml, len, &d, e)) != 0)
		return rc;
	if ((rc = xdoc_open(&x, xml, len, "domain", "domain XML", e)) != 0) {
		domxml_free(d);
		return rc;
	}
	if ((rc = rewrite_nodes(&x, d, map, n, e)) == 0)
		rc = dump_root(&x, out, outlen, e);
	xdoc_fini(&x);
	domxml_free(d);
	return rc;
}
