/* ferry-recv with --libvirt-uri: a domain's destination checks at
 * pre-flight and its definition after commit (rvirt.c). */
#ifndef FERRY_RVIRT_H
#define FERRY_RVIRT_H

#include "err.h"
#include "msg.h"
#include "recvd.h"

/* The rsess domain_check op for session rs: fill out with the check rows;
 * 0 when all passed or were waived, else the first failed check's code
 * (or FERR_VIRT / FERR_VIRT_XML) with refusal->text naming it. */
int rvirt_check(struct rsession *rs, const struct msg_manifest *m, const struct msg_domain *dom,
    struct msg_checks *out, struct msg_text *refusal);

/* After the staging commit renamed the images into place: check them,
 * define the domain with its disks at those paths, start it.  On failure
 * nothing is left defined; the caller removes the images. */
int rvirt_commit(struct rsession *rs, struct ferr *e) FERRY_MUST_CHECK;

#endif
