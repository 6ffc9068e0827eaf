#include "svirt.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "migrate.h"
#include "virt.h"

void
svirt_free(struct svirt *s)
{
	if (s == NULL)
		return;
	domxml_free(s->dom);
	free(s->xml);
	virt_free(s->v);
	free(s);
}

/* Every disk that migrates, by its real path, as a --disk of o. */
static int
add_disks(struct svirt *s, struct send_opts *o, struct ferr *e)
{
	uint32_t i;

	for (i = 0; i < s->dom->ndisks; i++) {
		const struct domxml_disk *k = &s->dom->disk[i];

		if (!domxml_disk_migrates(k) || k->source != DS_FILE)
			continue;   /* the file-backed check refuses the others */
		if (o->ndisks >= FERRY_MAX_DEVICES - 1)
			return ferr_set(e, FERR_USAGE, "domain '%s': more than %u disks", s->dom->name,
			    FERRY_MAX_DEVICES - 1);
		if (realpath(k->path, s->paths[i]) == NULL)
			snprintf(s->paths[i], sizeof(s->paths[i]), "%s", k->path);
		o->disks[o->ndisks++] = s->paths[i];
	}
	if (o->ndisks == 0 && o->mem == NULL)
		return ferr_set(e, FERR_USAGE, "domain '%s': no disk image to migrate and no --mem",
		    s->dom->name);
	return 0;
}

int
svirt_open(struct send_opts *o, struct events *ev, struct svirt **out, struct ferr *e)
{
	struct svirt *s = calloc(1, sizeof(*s));
	uint32_t i;
	int rc;

	*out = NULL;
	if (s == NULL)
		return ferr_set(e, FERR_NOMEM, "libvirt state");
	dc_table_init(&s->table);
	for (i = 0; i < o->nforce; i++)
		if ((rc = dc_table_waive(&s->table, o->force_checks[i], e)) != 0)
			goto fail;
	if ((rc = virt_open(o->libvirt_uri, &s->v, e)) != 0 ||
	    (rc = virt_domain_xml(s->v, o->domain, 1, &s->xml, e)) != 0)
		goto fail;
	s->xml_len = strlen(s->xml);
	if ((rc = domxml_parse(s->xml, s->xml_len, &s->dom, e)) != 0 ||
	    (rc = virt_host_facts(s->v, &s->host, e)) != 0)
		goto fail;
	domcheck_source(&s->table, s->dom);
	for (i = 0; i < s->table.n; i++)
		if (s->table.row[i].status == DC_WAIVED)
			ev_warn(ev, "WARNING: check %s failed and is waived (--force-check): %s",
			    s->table.row[i].check, s->table.row[i].why);
	if (!o->check_only && (rc = dc_table_result(&s->table, e)) != 0) {
		ferr_wrap(e, "domain '%s'", s->dom->name);
		goto fail;
	}
	if ((rc = add_disks(s, o, e)) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	svirt_free(s);
	return rc;
}

void
svirt_domain_msg(const struct svirt *s, const struct send_opts *o, struct msg_domain *m)
{
	uint32_t i;

	memset(m, 0, sizeof(*m));
	m->flags = o->check_only ? FERRY_DOMAIN_CHECK_ONLY : 0;
	snprintf(m->arch, sizeof(m->arch), "%s", s->host.arch);
	snprintf(m->model, sizeof(m->model), "%s", s->host.model);
	snprintf(m->uuid, sizeof(m->uuid), "%s", s->host.uuid);
	for (i = 0; i < o->nforce && i < FERRY_WAIVE_MAX; i++)
		snprintf(m->waive[i], sizeof(m->waive[i]), "%s", o->force_checks[i]);
	m->nwaive = i;
	m->xml = (const uint8_t *)s->xml;
	m->xml_len = (uint32_t)s->xml_len;
}

void
svirt_add_checks(struct svirt *s, const struct msg_checks *c, struct events *ev)
{
	unsigned skipped = dc_table_add_checks(&s->table, c);
	uint32_t i;

	s->have_dest = 1;
	if (skipped > 0)
		ev_warn(ev, "the receiver reported %u check(s) this version does not know", skipped);
	for (i = 0; i < c->n; i++)
		if (c->row[i].status == CS_FAIL)
			ev_warn(ev, "destination check %s failed: %s", c->row[i].name, c->row[i].why);
		else if (c->row[i].status == CS_WAIVED)
			ev_warn(ev, "WARNING: destination check %s failed and is waived: %s",
			    c->row[i].name, c->row[i].why);
}

int
svirt_result(const struct svirt *s, struct ferr *e)
{
	return dc_table_result(&s->table, e);
}

void
svirt_report(const struct svirt *s, struct events *ev, int json)
{
	if (json) {
		struct json_object *o = dc_table_json(&s->table);

		if (o == NULL)
			return;
		json_object_object_add(o, "domain", json_object_new_string(s->dom->name));
		json_object_object_add(o, "destination_checked", json_object_new_boolean(s->have_dest));
		ev_json(ev, "checks", o);
		return;
	}
	dc_table_print(&s->table, stdout);
	fflush(stdout);
}
