/* ferry-send's libvirt side (--libvirt-uri, --domain): read the domain's
 * XML, run the source checks, name the disks to migrate, and keep the
 * check table that the receiver's CHECKS complete (svirt.c). */
#ifndef FERRY_SVIRT_H
#define FERRY_SVIRT_H

#include <stdio.h>

#include "domcheck.h"
#include "domxml.h"
#include "err.h"
#include "msg.h"

struct send_opts;
struct events;
struct virt;

struct svirt {
	struct virt *v;
	struct domxml *dom;
	char *xml;                  /* migratable XML, sent in DOMAIN */
	size_t xml_len;
	struct domxml_host host;    /* this host */
	struct dc_table table;      /* source rows, then the receiver's */
	int have_dest;              /* CHECKS arrived */
	char paths[DOMXML_MAX_DISKS][4096];
};

/* Open o->libvirt_uri, read domain o->domain, run the source checks
 * (waiving o->force_checks), and add each disk to migrate to o->disks.
 * *out: free with svirt_free.  Returns 0, or the code of a failure: a
 * libvirt or XML error, a bad --force-check, or (unless o->check_only)
 * the first failed source check, with e naming it. */
int svirt_open(struct send_opts *o, struct events *ev, struct svirt **out,
    struct ferr *e) FERRY_MUST_CHECK;
void svirt_free(struct svirt *s);

/* The DOMAIN message for this migration (points into s). */
void svirt_domain_msg(const struct svirt *s, const struct send_opts *o, struct msg_domain *m);
/* The receiver's CHECKS: merge its rows into the table. */
void svirt_add_checks(struct svirt *s, const struct msg_checks *c, struct events *ev);
/* 0 when every row passed or was waived, else the first failure. */
int svirt_result(const struct svirt *s, struct ferr *e) FERRY_MUST_CHECK;
/* --check-only output: the table for people, or one "checks" JSON event. */
void svirt_report(const struct svirt *s, struct events *ev, int json);

#endif
