/* virt.c against libvirt's in-process test driver, with the checks of
 * domcheck.c on what it reads.
 *
 * tests/data/libvirt/src-node.xml and dst-node.xml stand for the source
 * and destination hosts; their @DIR@ is replaced by a temporary
 * directory, where the test creates the disk images (sparse).  Every
 * source domain but pass-all breaks exactly one check; each must fail
 * that check alone, with its code and a message naming the device or
 * value.  Then waivers, the XML rewrite through a define on the
 * destination, and suspend / resume / define / start / destroy /
 * undefine.  Each test opens its own connections: the test driver gives
 * every connection to a file its own fresh state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domcheck.h"
#include "domxml.h"
#include "err.h"
#include "virt.h"

#define DATA "tests/data/libvirt"
#define IMG_SIZE (1u << 20)
#define HUGE_SIZE (8ull << 40)    /* sparse; more than any test machine has free */

struct env {
	char dir[64];
	char src_uri[PATH_MAX + 16];
	char dst_uri[PATH_MAX + 16];
};

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		fail_msg("%s: %s (run from the repository root)", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Write template with every @DIR@ replaced by dir into dir/name. */
static void
instantiate(const char *template, const char *dir, const char *name, char *uri, size_t urisize)
{
	char *t = read_file(template), *p, path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	for (p = t; *p != '\0';) {
		char *at = strstr(p, "@DIR@");

		if (at == NULL) {
			fputs(p, f);
			break;
		}
		fwrite(p, 1, (size_t)(at - p), f);
		fputs(dir, f);
		p = at + 5;
	}
	assert_int_equal(fclose(f), 0);
	free(t);
	snprintf(uri, urisize, "test://%s", path);
}

static int
setup(void **state)
{
	struct env *v = calloc(1, sizeof(*v));
	char sub[96];

	assert_non_null(v);
	snprintf(v->dir, sizeof(v->dir), "/tmp/ferry-virt-XXXXXX");
	assert_non_null(mkdtemp(v->dir));
	snprintf(sub, sizeof(sub), "%s/src", v->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/dst", v->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	instantiate(DATA "/src-node.xml", v->dir, "src-node.xml", v->src_uri, sizeof(v->src_uri));
	instantiate(DATA "/dst-node.xml", v->dir, "dst-node.xml", v->dst_uri, sizeof(v->dst_uri));
	*state = v;
	return 0;
}

static int
teardown(void **state)
{
	struct env *v = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", v->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", v->dir);
	free(v);
	return 0;
}

static struct virt *
open_ok(const char *uri)
{
	struct virt *c = NULL;
	struct ferr e = { 0 };

	if (virt_open(uri, &c, &e) != 0)
		fail_msg("virt_open %s: %s", uri, e.msg);
	return c;
}

static struct domxml *
domain(struct virt *c, const char *name)
{
	struct domxml *d = NULL;
	struct ferr e = { 0 };
	char *xml = NULL;

	if (virt_domain_xml(c, name, 1, &xml, &e) != 0)
		fail_msg("%s", e.msg);
	if (domxml_parse(xml, strlen(xml), &d, &e) != 0)
		fail_msg("%s", e.msg);
	free(xml);
	return d;
}

static void
make_image(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0600);

	if (fd < 0)
		fail_msg("%s: %s", path, strerror(errno));
	if (ftruncate(fd, (off_t)size) != 0)
		fail_msg("%s: ftruncate %llu: %s", path, (unsigned long long)size, strerror(errno));
	close(fd);
}

/* The plan for a domain's file disks: images created in src/, destinations
 * in dst/ (or the source files themselves), facts from the file system. */
struct plan {
	uint32_t n;
	struct dc_disk k[DOMXML_MAX_DISKS];
	char dst[DOMXML_MAX_DISKS][PATH_MAX];
};

static void
plan_disks(const struct env *v, const struct domxml *d, int onto_self, uint64_t vdb_size,
    struct plan *p)
{
	struct ferr e = { 0 };
	uint32_t i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < d->ndisks; i++) {
		const struct domxml_disk *dk = &d->disk[i];
		struct dc_disk *k = &p->k[p->n];

		if (!domxml_disk_migrates(dk) || dk->source != DS_FILE)
			continue;
		make_image(dk->path, strcmp(dk->target, "vdb") == 0 ? vdb_size : IMG_SIZE);
		snprintf(p->dst[p->n], PATH_MAX, "%s/dst/%s", v->dir, strrchr(dk->path, '/') + 1);
		k->target = dk->target;
		k->src_path = dk->path;
		k->dst_path = onto_self ? dk->path : p->dst[p->n];
		if (dc_disk_stat_source(k, &e) != 0 || dc_disk_stat_dest(k, &e) != 0)
			fail_msg("%s", e.msg);
		p->n++;
	}
}

static void
host_facts(struct virt *c, struct domxml_host *h)
{
	struct ferr e = { 0 };

	if (virt_host_facts(c, h, &e) != 0)
		fail_msg("%s", e.msg);
}

/* All checks on one source domain against the destination host. */
static void
check_domain(const struct env *v, struct dc_table *t, const char *name)
{
	struct virt *src = open_ok(v->src_uri), *dst = open_ok(v->dst_uri);
	struct domxml_host sh, dh;
	struct domxml *d = domain(src, name);
	struct plan *p = malloc(sizeof(*p));

	assert_non_null(p);
	plan_disks(v, d, strcmp(name, "same-file") == 0,
	    strcmp(name, "disk-space") == 0 ? HUGE_SIZE : IMG_SIZE, p);
	host_facts(src, &sh);
	host_facts(dst, &dh);
	domcheck_source(t, d);
	domcheck_destination(t, d, &sh, &dh, p->k, p->n);
	free(p);
	domxml_free(d);
	virt_free(src);
	virt_free(dst);
}

static void
test_host_facts(void **state)
{
	struct env *v = *state;
	struct virt *src = open_ok(v->src_uri), *dst = open_ok(v->dst_uri);
	struct domxml_host h;

	host_facts(dst, &h);
	assert_string_equal(h.arch, "i686");                 /* the test driver's, always */
	assert_string_equal(h.model, "Skylake-Client");      /* from virNodeGetInfo */
	assert_int_equal(h.cpus, 4);
	assert_true(h.free_mem_known);
	assert_true(h.free_mem == 8ull << 30);               /* no domain runs there */
	assert_string_equal(h.free_mem_how, "node memory minus running domains");
	host_facts(src, &h);
	assert_int_equal(h.cpus, 8);
	/* 32 GiB less the 13 running domains' memory (one of 16 GiB, 12 of 1 GiB). */
	assert_true(h.free_mem == (32ull - 16 - 12) << 30);
	assert_string_equal(virt_uri(dst), v->dst_uri);
	virt_free(src);
	virt_free(dst);
}

static void
test_each_domain_fails_its_check(void **state)
{
	static const struct {
		const char *domain, *check;
		int code;
		const char *word;
	} cases[] = {
		{ "pass-all", NULL, 0, NULL },
		{ "cdrom", "cdrom", FERR_VIRT_CDROM, "cdrom hdc has media" },
		{ "hostdev", "hostdev", FERR_VIRT_HOSTDEV, "pci 0000:06:02.0" },
		{ "shareable", "shareable", FERR_VIRT_SHAREABLE, "disk vdb is shareable" },
		{ "readonly", "readonly", FERR_VIRT_READONLY, "disk vdb is read-only" },
		{ "blockdev", "file-backed", FERR_VIRT_NOTFILE, "disk vdb is backed by block '/dev/ferry-test-sdb'" },
		{ "cache", "cache", FERR_VIRT_CACHE, "disk vdb cache mode is 'writeback'" },
		{ "vcpus", "host-cpus", FERR_VIRT_CPUS, "domain 'vcpus' has 8 vCPUs, destination host 4 CPUs" },
		{ "memory", "memory", FERR_VIRT_MEMORY, "domain 'memory' needs 17179869184 bytes of memory, destination has 8589934592 free" },
		{ "cpumodel", "cpu-model", FERR_VIRT_CPU_MODEL, "CPU model EPYC (from <cpu><model>), destination host Skylake-Client" },
		{ "arch", "cpu-arch", FERR_VIRT_ARCH, "domain 'arch' is x86_64, destination host is i686" },
		{ "same-file", "same-file", FERR_REFUSE_SAMEFILE, "disk vda: destination '" },
		{ "disk-space", "disk-space", FERR_REFUSE_SPACE, "destination directory of vda, vdb" },
	};
	struct env *v = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc_table t;
		struct ferr e = { 0 };
		uint32_t r;
		int rc;

		dc_table_init(&t);
		check_domain(v, &t, cases[i].domain);
		assert_int_equal(t.n, 12);
		for (r = 0; r < t.n; r++) {
			const struct dc_row *row = &t.row[r];
			int want_fail = cases[i].check != NULL && strcmp(row->check, cases[i].check) == 0;

			if (want_fail != (row->status == DC_FAIL))
				fail_msg("domain %s: check %s is %s: %s", cases[i].domain, row->check,
				    dc_status_name(row->status), row->why);
			if (want_fail && strstr(row->why, cases[i].word) == NULL)
				fail_msg("domain %s: '%s' does not name '%s'", cases[i].domain, row->why,
				    cases[i].word);
		}
		rc = dc_table_result(&t, &e);
		if (rc != cases[i].code)
			fail_msg("domain %s: result %s, want %s (%s)", cases[i].domain, ferr_name(rc),
			    ferr_name(cases[i].code), e.msg);
		if (cases[i].code != 0)
			assert_non_null(strstr(e.msg, cases[i].check));
	}
}

static void
test_waivers(void **state)
{
	struct env *v = *state;
	struct dc_table t;
	struct ferr e = { 0 };

	dc_table_init(&t);
	assert_int_equal(dc_table_waive(&t, "cache", &e), 0);
	assert_int_equal(dc_table_waive(&t, "memory", &e), 0);
	check_domain(v, &t, "cache");
	assert_int_equal(dc_table_find(&t, "cache")->status, DC_WAIVED);
	assert_int_equal(dc_table_result(&t, &e), 0);
	check_domain(v, &t, "memory");
	assert_int_equal(dc_table_find(&t, "memory")->status, DC_WAIVED);
	assert_int_equal(dc_table_result(&t, &e), 0);

	assert_int_equal(dc_table_waive(&t, "same-file", &e), FERR_USAGE);
	t.waive = ~0u;   /* even forced, same-file is not waived */
	check_domain(v, &t, "same-file");
	assert_int_equal(dc_table_find(&t, "same-file")->status, DC_FAIL);
	assert_int_equal(dc_table_result(&t, &e), FERR_REFUSE_SAMEFILE);
}

static void
expect_state(struct virt *c, const char *name, enum virt_state want)
{
	enum virt_state st;
	struct ferr e = { 0 };

	if (virt_state(c, name, &st, &e) != 0)
		fail_msg("%s", e.msg);
	if (st != want)
		fail_msg("domain %s is %s, want %s", name, virt_state_name(st), virt_state_name(want));
}

static void
must(int rc, const struct ferr *e)
{
	if (rc != 0)
		fail_msg("%s", e->msg);
}

static void
test_suspend_resume(void **state)
{
	struct env *v = *state;
	struct virt *src = open_ok(v->src_uri);
	struct ferr e = { 0 };

	expect_state(src, "pass-all", VS_RUNNING);
	must(virt_suspend(src, "pass-all", &e), &e);
	expect_state(src, "pass-all", VS_PAUSED);
	/* A second suspend is libvirt's error, named. */
	assert_int_equal(virt_suspend(src, "pass-all", &e), FERR_VIRT);
	assert_non_null(strstr(e.msg, "virDomainSuspend: domain 'pass-all': "));
	must(virt_resume(src, "pass-all", &e), &e);
	expect_state(src, "pass-all", VS_RUNNING);
	assert_int_equal(virt_resume(src, "pass-all", &e), FERR_VIRT);
	assert_non_null(strstr(e.msg, "virDomainResume: domain 'pass-all'"));
	virt_free(src);
}

/* The migration's libvirt steps end to end: rewrite the source XML to
 * the destination files, define and start it there after the "copy",
 * check the images, destroy and undefine the source. */
static void
test_define_start_destroy_undefine(void **state)
{
	struct env *v = *state;
	struct virt *src = open_ok(v->src_uri), *dst = open_ok(v->dst_uri);
	struct domxml_path_map map[2];
	struct domxml_host h;
	struct dc_table t;
	struct domxml *d, *back;
	struct ferr e = { 0 };
	struct plan *p = malloc(sizeof(*p));
	char *xml = NULL, *moved = NULL, name[64];
	size_t len = 0;
	uint32_t i;
	int exists;

	assert_non_null(p);
	must(virt_domain_xml(src, "pass-all", 1, &xml, &e), &e);
	must(domxml_parse(xml, strlen(xml), &d, &e), &e);
	plan_disks(v, d, 0, IMG_SIZE, p);
	assert_int_equal(p->n, 2);
	for (i = 0; i < p->n; i++) {
		map[i].target = p->k[i].target;
		map[i].path = p->dst[i];
	}
	must(domxml_rewrite_disks(xml, strlen(xml), map, p->n, &moved, &len, &e), &e);

	/* The copy, then the after-copy check; one image cut short fails it. */
	for (i = 0; i < p->n; i++) {
		make_image(p->dst[i], IMG_SIZE);
		must(dc_disk_stat_dest(&p->k[i], &e), &e);
	}
	dc_table_init(&t);
	domcheck_after_copy(&t, d, p->k, p->n);
	must(dc_table_result(&t, &e), &e);
	make_image(p->dst[1], IMG_SIZE / 2);
	assert_int_equal(truncate(p->dst[1], IMG_SIZE / 2), 0);
	must(dc_disk_stat_dest(&p->k[1], &e), &e);
	domcheck_after_copy(&t, d, p->k, p->n);
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_IMAGES);
	assert_non_null(strstr(e.msg, "disk vdb"));

	/* Define and start on the destination: its XML has the new paths. */
	must(virt_domain_exists(dst, "pass-all", &exists, &e), &e);
	assert_false(exists);
	must(virt_define(dst, moved, name, sizeof(name), &e), &e);
	assert_string_equal(name, "pass-all");
	expect_state(dst, "pass-all", VS_SHUTOFF);
	must(virt_start(dst, "pass-all", &e), &e);
	expect_state(dst, "pass-all", VS_RUNNING);
	back = domain(dst, "pass-all");
	assert_string_equal(back->uuid, d->uuid);
	assert_string_equal(back->disk[0].path, p->dst[0]);
	assert_string_equal(back->disk[1].path, p->dst[1]);
	assert_true(back->memory_bytes == d->memory_bytes);
	domxml_free(back);
	/* Its memory now counts against the destination's free memory. */
	host_facts(dst, &h);
	assert_true(h.free_mem == 7ull << 30);

	/* --undefine-source: destroy and undefine the source domain. */
	must(virt_destroy(src, "pass-all", &e), &e);
	expect_state(src, "pass-all", VS_SHUTOFF);
	must(virt_undefine(src, "pass-all", &e), &e);
	must(virt_domain_exists(src, "pass-all", &exists, &e), &e);
	assert_false(exists);
	assert_int_equal(virt_state(src, "pass-all", &(enum virt_state){ 0 }, &e), FERR_VIRT);
	assert_non_null(strstr(e.msg, "domain 'pass-all'"));

	/* And the destination copy goes away the same way. */
	must(virt_destroy(dst, "pass-all", &e), &e);
	must(virt_undefine(dst, "pass-all", &e), &e);
	must(virt_domain_exists(dst, "pass-all", &exists, &e), &e);
	assert_false(exists);

	free(moved);
	free(xml);
	free(p);
	domxml_free(d);
	virt_free(src);
	virt_free(dst);
}

static void
test_errors_name_things(void **state)
{
	struct env *v = *state;
	struct virt *c = NULL;
	struct ferr e = { 0 };
	char *xml = (char *)(uintptr_t)1, uri[PATH_MAX + 32];

	snprintf(uri, sizeof(uri), "test://%s/missing-node.xml", v->dir);
	assert_int_equal(virt_open(uri, &c, &e), FERR_VIRT);
	assert_null(c);
	assert_non_null(strstr(e.msg, "missing-node.xml"));
	assert_int_equal(virt_open("", &c, &e), FERR_USAGE);

	c = open_ok(v->src_uri);
	assert_int_equal(virt_domain_xml(c, "no-such-vm", 0, &xml, &e), FERR_VIRT);
	assert_null(xml);
	assert_non_null(strstr(e.msg, "domain 'no-such-vm'"));
	assert_int_equal(virt_start(c, "no-such-vm", &e), FERR_VIRT);
	assert_non_null(strstr(e.msg, "no-such-vm"));
	assert_int_equal(virt_define(c, "<domain type='test'><name>x</name></domain>", NULL, 0, &e),
	    FERR_VIRT);
	assert_non_null(strstr(e.msg, "virDomainDefineXML"));
	assert_int_equal(virt_define(c, "", NULL, 0, &e), FERR_USAGE);
	virt_free(c);
	virt_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_facts),
		cmocka_unit_test(test_each_domain_fails_its_check),
		cmocka_unit_test(test_waivers),
		cmocka_unit_test(test_suspend_resume),
		cmocka_unit_test(test_define_start_destroy_undefine),
		cmocka_unit_test(test_errors_name_things),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
