/* Fuzz target: the libvirt XML parsers (src/common/domxml.c) and the
 * source checks over what they accept (src/common/domcheck.c).
 *
 * Input: the XML bytes, as a domain's XML would arrive from the peer.
 * Run through domxml_parse, domxml_caps_parse and, when the domain
 * parses, domcheck_source and domxml_rewrite_disks.  Checked:
 * - errors are FERR_VIRT_XML (or FERR_NOMEM) with a message, and leave no
 *   struct behind;
 * - a parsed domain keeps its promises: counts within the limits, every
 *   string NUL-terminated inside its array, targets unique tokens, file
 *   and block paths absolute, vCPUs and memory in range, media only on
 *   cdroms and floppies;
 * - the source checks fill one row per check with a known status and the
 *   check's code;
 * - rewriting every migrated file disk to "/new/<target>" either fails
 *   with FERR_VIRT_XML (a non-file disk to migrate) or gives XML that
 *   parses to the same domain with only those paths changed. */
#include "fuzz_common.h"

#include "domcheck.h"
#include "domxml.h"
#include "ferry_proto.h"

static int
nul_inside(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void
check_domain(const struct domxml *d)
{
	uint32_t i, j;

	FZ_CHECK(nul_inside(d->name, sizeof(d->name)) && d->name[0] != '\0');
	FZ_CHECK(strchr(d->name, '/') == NULL);
	FZ_CHECK(strlen(d->uuid) == DOMXML_UUID_LEN);
	FZ_CHECK(d->memory_bytes > 0 && d->memory_bytes <= FERRY_DEVICE_SIZE_MAX);
	FZ_CHECK(d->vcpus >= 1 && d->vcpus <= DOMXML_VCPUS_MAX);
	FZ_CHECK(nul_inside(d->arch, sizeof(d->arch)) && nul_inside(d->cpu_mode, sizeof(d->cpu_mode)));
	FZ_CHECK(nul_inside(d->cpu_model, sizeof(d->cpu_model)));
	FZ_CHECK(nul_inside(d->hostdev, sizeof(d->hostdev)));
	FZ_CHECK((d->nhostdevs == 0) == (d->hostdev[0] == '\0'));
	FZ_CHECK(d->ndisks <= DOMXML_MAX_DISKS);
	for (i = 0; i < d->ndisks; i++) {
		const struct domxml_disk *k = &d->disk[i];

		FZ_CHECK(nul_inside(k->target, sizeof(k->target)) && k->target[0] != '\0');
		FZ_CHECK(strspn(k->target, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") ==
		    strlen(k->target));
		FZ_CHECK(k->device >= DD_DISK && k->device <= DD_LUN);
		FZ_CHECK(k->source >= DS_FILE && k->source <= DS_OTHER);
		FZ_CHECK(nul_inside(k->path, sizeof(k->path)));
		FZ_CHECK(nul_inside(k->cache, sizeof(k->cache)) && nul_inside(k->format, sizeof(k->format)));
		if ((k->source == DS_FILE || k->source == DS_BLOCK) && k->path[0] != '\0')
			FZ_CHECK(k->path[0] == '/');
		if (k->has_media)
			FZ_CHECK((k->device == DD_CDROM || k->device == DD_FLOPPY) && k->path[0] != '\0');
		for (j = 0; j < i; j++)
			FZ_CHECK(strcmp(d->disk[j].target, k->target) != 0);
	}
}

static void
check_rows(const struct domxml *d)
{
	struct dc_table t;
	uint32_t i;

	dc_table_init(&t);
	domcheck_source(&t, d);
	FZ_CHECK(t.n == 6);
	for (i = 0; i < t.n; i++) {
		FZ_CHECK(t.row[i].status == DC_PASS || t.row[i].status == DC_FAIL);
		FZ_CHECK(t.row[i].code == dc_check_code(t.row[i].check));
		FZ_CHECK((t.row[i].status == DC_FAIL) == (t.row[i].why[0] != '\0'));
	}
}

static void
check_rewrite(const uint8_t *data, size_t size, const struct domxml *d)
{
	struct domxml_path_map map[DOMXML_MAX_DISKS];
	char paths[DOMXML_MAX_DISKS][DOMXML_TARGET_MAX + 8];
	struct domxml *back = NULL;
	struct ferr e = { 0 };
	char *out = NULL;
	size_t n = 0, len = 0;
	uint32_t i;
	int rc, all_files = 1;

	for (i = 0; i < d->ndisks; i++) {
		if (!domxml_disk_migrates(&d->disk[i]))
			continue;
		all_files = all_files && d->disk[i].source == DS_FILE;
		snprintf(paths[n], sizeof(paths[n]), "/new/%s", d->disk[i].target);
		map[n].target = d->disk[i].target;
		map[n].path = paths[n];
		n++;
	}
	rc = domxml_rewrite_disks((const char *)data, size, map, n, &out, &len, &e);
	if (rc != 0) {
		FZ_CHECK((rc == FERR_VIRT_XML && !all_files) || rc == FERR_NOMEM);
		FZ_CHECK(out == NULL && e.msg[0] != '\0');
		return;
	}
	FZ_CHECK(all_files && out != NULL && strlen(out) == len);
	rc = domxml_parse(out, len, &back, &e);
	/* The output may exceed the size limit only when paths grew. */
	if (rc == FERR_VIRT_XML && len > DOMXML_MAX_BYTES) {
		free(out);
		return;
	}
	FZ_CHECK(rc == 0);
	FZ_CHECK(strcmp(back->name, d->name) == 0 && strcmp(back->uuid, d->uuid) == 0);
	FZ_CHECK(back->memory_bytes == d->memory_bytes && back->vcpus == d->vcpus);
	FZ_CHECK(back->ndisks == d->ndisks && back->nhostdevs == d->nhostdevs);
	for (i = 0; i < d->ndisks; i++) {
		const struct domxml_disk *a = &d->disk[i], *b = &back->disk[i];

		FZ_CHECK(strcmp(a->target, b->target) == 0 && a->device == b->device);
		FZ_CHECK(a->shareable == b->shareable && a->readonly == b->readonly);
		FZ_CHECK(strcmp(a->cache, b->cache) == 0);
		if (domxml_disk_migrates(a))
			FZ_CHECK(strncmp(b->path, "/new/", 5) == 0 && strcmp(b->path + 5, a->target) == 0);
		else
			FZ_CHECK(strcmp(a->path, b->path) == 0);
	}
	domxml_free(back);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = fz_dup(data, size);
	struct domxml *d = NULL;
	struct domxml_host h;
	struct ferr e = { 0 };
	int rc;

	rc = domxml_parse((const char *)copy, size, &d, &e);
	if (rc != 0) {
		FZ_CHECK(rc == FERR_VIRT_XML || rc == FERR_NOMEM);
		FZ_CHECK(d == NULL && e.code == rc && e.msg[0] != '\0');
	} else {
		FZ_CHECK(d != NULL);
		check_domain(d);
		check_rows(d);
		check_rewrite(copy, size, d);
		domxml_free(d);
	}
	memset(&h, 0, sizeof(h));
	memset(&e, 0, sizeof(e));
	rc = domxml_caps_parse((const char *)copy, size, &h, &e);
	if (rc == 0)
		FZ_CHECK(h.arch[0] != '\0' && nul_inside(h.model, sizeof(h.model)) &&
		    (h.uuid[0] == '\0' || strlen(h.uuid) == DOMXML_UUID_LEN));
	else
		FZ_CHECK((rc == FERR_VIRT_XML || rc == FERR_NOMEM) && e.msg[0] != '\0');
	free(copy);
	return 0;
}
