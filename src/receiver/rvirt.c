/* ferry-recv's libvirt side (--libvirt-uri): the destination checks of a
 * domain at pre-flight (DOMAIN -> CHECKS, proto/PROTOCOL.md 4.15), and
 * after the images are committed, the after-copy check, the domain
 * defined from the transferred XML with its disks pointed at the
 * destination files, and started.  Any failure there undoes the commit
 * (rsessions.c), so the sender resumes its source: either the domain runs
 * here, or nothing of it is left. */
#include "rvirt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domcheck.h"
#include "domxml.h"
#include "rlog.h"
#include "virt.h"

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

/* The manifest index of the disk device that carries this disk's image:
 * the device named after the image file.  -1 if none. */
static int
manifest_disk(const struct msg_manifest *m, const struct domxml_disk *k)
{
	uint32_t i;

	for (i = 0; i < m->ndev; i++)
		if (m->dev[i].kind == DK_DISK && strcmp(m->dev[i].name, base_name(k->path)) == 0)
			return (int)i;
	return -1;
}

/* One dc_disk per migrated disk of the domain, at the paths where the
 * images land (final, or staged under dest_dir before commit).  Returns
 * the count, or a negative code with the refusal in e. */
static int
collect_disks(const struct recvd *d, const struct msg_manifest *m, const struct domxml *dom,
    const struct staging *stg, struct dc_disk *disks, char (*paths)[4096], struct ferr *e)
{
	uint32_t i, n = 0;
	int rc;

	for (i = 0; i < dom->ndisks; i++) {
		const struct domxml_disk *k = &dom->disk[i];
		struct dc_disk *dk = &disks[n];
		int di;

		if (!domxml_disk_migrates(k))
			continue;
		if ((di = manifest_disk(m, k)) < 0)
			return ferr_set(e, FERR_VIRT_IMAGES, "disk %s ('%s'): no device '%s' in the "
			    "manifest", k->target, k->path, base_name(k->path));
		memset(dk, 0, sizeof(*dk));
		if (stg != NULL)
			snprintf(paths[n], sizeof(paths[n]), "%s", staging_final_path(stg, (uint32_t)di));
		else
			snprintf(paths[n], sizeof(paths[n]), "%s/%s", d->o.dest_dir, m->dev[di].name);
		dk->target = k->target;
		dk->src_path = k->path;
		dk->dst_path = paths[n];
		dk->size = m->dev[di].size;
		dk->src_dev = m->dev[di].src_dev;
		dk->src_ino = m->dev[di].src_ino;
		if ((rc = dc_disk_stat_dest(dk, e)) != 0)
			return rc;
		n++;
	}
	return (int)n;
}

/* Defining the domain after commit would fail (or replace another) when
 * one of that name is defined here already. */
static int
name_check(struct recvd *d, struct dc_table *t, const struct domxml *x, struct ferr *e)
{
	enum virt_state st = VS_INVALID;
	int exists = 0, rc;

	if ((rc = virt_domain_exists(d->virt, x->name, &exists, e)) != 0)
		return rc;
	if (exists && (rc = virt_state(d->virt, x->name, &st, e)) != 0)
		return rc;
	domcheck_name_free(t, x, exists, exists ? virt_state_name(st) : "");
	return 0;
}

int
rvirt_check(struct rsession *rs, const struct msg_manifest *m, const struct msg_domain *dom,
    struct msg_checks *out, struct msg_text *refusal)
{
	struct recvd *d = rs->d;
	struct domxml *x = NULL;
	struct domxml_host src, dst;
	struct dc_table *t = calloc(1, sizeof(*t));
	struct dc_disk *disks = calloc(DOMXML_MAX_DISKS, sizeof(*disks));
	char (*paths)[4096] = calloc(DOMXML_MAX_DISKS, sizeof(*paths));
	struct ferr e = { 0 };
	uint32_t i;
	int rc, n;

	out->n = 0;
	if (t == NULL || disks == NULL || paths == NULL) {
		rc = ferr_set(&e, FERR_NOMEM, "domain checks");
		goto done;
	}
	if ((rc = domxml_parse((const char *)dom->xml, dom->xml_len, &x, &e)) != 0)
		goto done;
	snprintf(rs->domain, sizeof(rs->domain), "%s", x->name);
	dc_table_init(t);
	for (i = 0; i < dom->nwaive; i++) {
		if ((rc = dc_table_waive(t, dom->waive[i], &e)) != 0) {
			rc = FERR_REFUSED;
			goto done;
		}
	}
	memset(&src, 0, sizeof(src));
	snprintf(src.arch, sizeof(src.arch), "%s", dom->arch);
	snprintf(src.model, sizeof(src.model), "%s", dom->model);
	snprintf(src.uuid, sizeof(src.uuid), "%s", dom->uuid);
	memset(&dst, 0, sizeof(dst));
	if ((rc = virt_host_facts(d->virt, &dst, &e)) != 0)
		goto done;
	if ((n = collect_disks(d, m, x, NULL, disks, paths, &e)) < 0) {
		rc = n;
		goto done;
	}
	domcheck_destination(t, x, &src, &dst, disks, (uint32_t)n);
	if ((rc = name_check(d, t, x, &e)) != 0)
		goto done;
	dc_table_to_checks(t, out);
	for (i = 0; i < t->n; i++)
		if (t->row[i].status == DC_WAIVED)
			rs_log(rs, EV_WARN, "session %.16s: domain '%s': check %s FAILED but is waived by the "
			    "sender's operator (--force-check): %s", rs->idhex, x->name, t->row[i].check,
			    t->row[i].why);
	rc = dc_table_result(t, &e);
done:
	if (rc != 0)
		snprintf(refusal->text, sizeof(refusal->text), "domain '%s': %s",
		    x != NULL ? x->name : "?", e.msg);
	domxml_free(x);
	free(t);
	free(disks);
	free(paths);
	return rc;
}

int
rvirt_commit(struct rsession *rs, struct ferr *e)
{
	struct recvd *d = rs->d;
	const struct msg_manifest *m = rsess_manifest(rs->sess);
	struct msg_domain dom;
	struct domxml *x = NULL;
	struct dc_table *t = calloc(1, sizeof(*t));
	struct dc_disk *disks = calloc(DOMXML_MAX_DISKS, sizeof(*disks));
	char (*paths)[4096] = calloc(DOMXML_MAX_DISKS, sizeof(*paths));
	struct domxml_path_map map[DOMXML_MAX_DISKS];
	enum virt_state st = VS_INVALID;
	const uint8_t *p;
	char *xml2 = NULL;
	size_t len, len2;
	int rc, n, defined = 0, i;

	p = rsess_domain(rs->sess, &len);
	if (t == NULL || disks == NULL || paths == NULL) {
		rc = ferr_set(e, FERR_NOMEM, "domain commit");
		goto done;
	}
	if ((rc = msg_domain_decode(p, len, &dom, e)) != 0 ||
	    (rc = domxml_parse((const char *)dom.xml, dom.xml_len, &x, e)) != 0)
		goto done;
	if ((n = collect_disks(d, m, x, rs->stg, disks, paths, e)) < 0) {
		rc = n;
		goto done;
	}
	dc_table_init(t);
	domcheck_after_copy(t, x, disks, (uint32_t)n);
	if ((rc = dc_table_result(t, e)) != 0)
		goto done;
	for (i = 0; i < n; i++) {
		map[i].target = disks[i].target;
		map[i].path = disks[i].dst_path;
	}
	if ((rc = domxml_rewrite_disks((const char *)dom.xml, dom.xml_len, map, (size_t)n, &xml2,
	    &len2, e)) != 0)
		goto done;
	if ((rc = virt_define(d->virt, xml2, NULL, 0, e)) != 0)
		goto done;
	defined = 1;
	if ((rc = virt_start(d->virt, x->name, e)) != 0)
		goto done;
	if ((rc = virt_state(d->virt, x->name, &st, e)) != 0)
		goto done;
	snprintf(rs->domain_state, sizeof(rs->domain_state), "%s", virt_state_name(st));
	rs_log(rs, EV_INFO, "session %.16s: domain '%s' defined from the transferred XML and %s (%s)",
	    rs->idhex, x->name, st == VS_RUNNING ? "started" : "start reported", virt_state_name(st));
done:
	if (rc != 0 && defined) {
		struct ferr e2 = { 0 };

		if (virt_undefine(d->virt, x->name, &e2) != 0)
			rs_log(rs, EV_WARN, "session %.16s: undefining '%s' after the failure: %s", rs->idhex,
			    x->name, e2.msg);
	}
	if (rc != 0)
		ferr_wrap(e, "domain '%s'", x != NULL ? x->name : "?");
	free(xml2);
	domxml_free(x);
	free(t);
	free(disks);
	free(paths);
	return rc;
}
