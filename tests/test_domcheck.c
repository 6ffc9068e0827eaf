/* domcheck.c: every check passes on a clean domain and fails alone, with
 * its own code and a message naming the device or value, on a domain
 * broken in that one way; waivers by name, never for same-file; the
 * table as text and JSON; the file-system fact helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "domcheck.h"
#include "domxml.h"
#include "err.h"

#define GIB (1ull << 30)

static const char clean_xml[] =
	"<domain><name>vm1</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	"<memory unit='GiB'>2</memory><vcpu>2</vcpu>"
	"<os><type arch='x86_64'>hvm</type></os>"
	"<cpu mode='custom'><model>Skylake-Client</model></cpu><devices>"
	"<disk type='file' device='disk'><driver cache='none'/><source file='/src/a.img'/><target dev='vda'/></disk>"
	"<disk type='file' device='disk'><driver cache='none'/><source file='/src/b.img'/><target dev='vdb'/></disk>"
	"<disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>"
	"</devices></domain>";

static struct domxml *
clean(void)
{
	struct domxml *d = NULL;
	struct ferr e = { 0 };

	if (domxml_parse(clean_xml, strlen(clean_xml), &d, &e) != 0)
		fail_msg("%s", e.msg);
	return d;
}

static const struct domxml_host src_host = {
	"x86_64", "Skylake-Client", "aaaaaaaa-0000-0000-0000-000000000001", 16, 64 * GIB, 1, "test",
};
static const struct domxml_host dst_host = {
	"x86_64", "Skylake-Client", "aaaaaaaa-0000-0000-0000-000000000002", 4, 8 * GIB, 1, "test",
};

/* Two disks in different file systems, plenty of room, destinations
 * absent. */
static void
plan(struct dc_disk k[2])
{
	memset(k, 0, 2 * sizeof(*k));
	k[0] = (struct dc_disk){ "vda", "/src/a.img", "/dst/a.img", GIB, 1, 10, 0, 0, 0, 0, 100, 4 * GIB };
	k[1] = (struct dc_disk){ "vdb", "/src/b.img", "/dst2/b.img", GIB, 1, 11, 0, 0, 0, 0, 101, 4 * GIB };
}

static void
run_all(struct dc_table *t, const struct domxml *d, const struct domxml_host *dst,
    const struct dc_disk *k, uint32_t n)
{
	domcheck_source(t, d);
	domcheck_destination(t, d, &src_host, dst, k, n);
}

/* Exactly `check` is not a pass (status st); its why holds word. */
static void
expect_only(const struct dc_table *t, const char *check, enum dc_status st, const char *word)
{
	uint32_t i;
	int seen = 0;

	assert_int_equal(t->n, 12);
	for (i = 0; i < t->n; i++) {
		const struct dc_row *r = &t->row[i];

		assert_int_equal(r->code, dc_check_code(r->check));
		if (check != NULL && strcmp(r->check, check) == 0) {
			seen = 1;
			if (r->status != st)
				fail_msg("%s: %s, want %s (%s)", r->check, dc_status_name(r->status),
				    dc_status_name(st), r->why);
			if (word != NULL && strstr(r->why, word) == NULL)
				fail_msg("%s: '%s' does not name '%s'", r->check, r->why, word);
		} else if (r->status != DC_PASS) {
			fail_msg("%s also failed: %s", r->check, r->why);
		}
	}
	assert_true(check == NULL || seen);
}

static void
test_clean_passes(void **state)
{
	struct domxml *d = clean();
	struct dc_disk k[2];
	struct dc_table t;
	struct ferr e = { 0 };

	(void)state;
	plan(k);
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, NULL, DC_PASS, NULL);
	assert_int_equal(dc_table_result(&t, &e), 0);
	assert_string_equal(dc_table_find(&t, "cache")->src, "vda=none vdb=none");
	assert_string_equal(dc_table_find(&t, "cpu-model")->dst, "Skylake-Client");
	assert_string_equal(dc_table_find(&t, "cdrom")->src, "1 drive(s), no media");
	/* Running again replaces the rows. */
	run_all(&t, d, &dst_host, k, 2);
	assert_int_equal(t.n, 12);
	domxml_free(d);
}

/* One source-domain breakage per case: edit the parsed struct. */
static void
test_source_checks(void **state)
{
	struct dc_disk k[2];
	struct dc_table t;
	struct ferr e = { 0 };
	struct domxml *d;

	(void)state;
	plan(k);

	d = clean();
	d->disk[2].has_media = 1;
	snprintf(d->disk[2].path, sizeof(d->disk[2].path), "/iso/x.iso");
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "cdrom", DC_FAIL, "cdrom hdc has media '/iso/x.iso' attached: eject it first");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_CDROM);
	assert_non_null(strstr(e.msg, "check cdrom: cdrom hdc"));
	domxml_free(d);

	d = clean();
	d->nhostdevs = 2;
	snprintf(d->hostdev, sizeof(d->hostdev), "pci 0000:06:02.0");
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "hostdev", DC_FAIL, "pci 0000:06:02.0 (and more)");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_HOSTDEV);
	domxml_free(d);

	d = clean();
	d->disk[1].shareable = 1;
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "shareable", DC_FAIL, "disk vdb is shareable");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_SHAREABLE);
	domxml_free(d);

	d = clean();
	d->disk[0].readonly = 1;
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "readonly", DC_FAIL, "disk vda is read-only");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_READONLY);
	domxml_free(d);

	d = clean();
	d->disk[1].source = DS_BLOCK;
	snprintf(d->disk[1].src_type, sizeof(d->disk[1].src_type), "block");
	snprintf(d->disk[1].path, sizeof(d->disk[1].path), "/dev/sdb");
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "file-backed", DC_FAIL, "disk vdb is backed by block '/dev/sdb', not by a file");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_NOTFILE);
	domxml_free(d);

	/* Both disks bad: the first named, the other listed. */
	d = clean();
	snprintf(d->disk[0].cache, sizeof(d->disk[0].cache), "writeback");
	d->disk[1].cache[0] = '\0';
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "cache", DC_FAIL, "disk vda cache mode is 'writeback', must be 'none'");
	assert_non_null(strstr(dc_table_find(&t, "cache")->why, "; also vdb"));
	assert_string_equal(dc_table_find(&t, "cache")->src, "vda=writeback vdb=default");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_CACHE);
	domxml_free(d);
}

static void
test_destination_checks(void **state)
{
	struct domxml_host h;
	struct dc_disk k[2];
	struct dc_table t;
	struct ferr e = { 0 };
	struct domxml *d = clean();

	(void)state;
	plan(k);

	h = dst_host;
	snprintf(h.arch, sizeof(h.arch), "aarch64");
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, "cpu-arch", DC_FAIL, "domain 'vm1' is x86_64, destination host is aarch64");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_ARCH);

	h = dst_host;
	snprintf(h.model, sizeof(h.model), "EPYC");
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, "cpu-model", DC_FAIL, "Skylake-Client (from <cpu><model>), destination host EPYC");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_CPU_MODEL);

	/* host-passthrough: the model is the source host's. */
	d->cpu_model[0] = '\0';
	snprintf(d->cpu_mode, sizeof(d->cpu_mode), "host-passthrough");
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, "cpu-model", DC_FAIL, "(from the source host)");
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, NULL, DC_PASS, NULL);
	dc_table_init(&t);
	domcheck_destination(&t, d, NULL, &dst_host, k, 2);
	assert_int_equal(dc_table_find(&t, "cpu-model")->status, DC_FAIL);
	assert_non_null(strstr(dc_table_find(&t, "cpu-model")->why, "CPU model unknown"));
	snprintf(d->cpu_model, sizeof(d->cpu_model), "Skylake-Client");

	/* vCPUs: equal passes, one more fails. */
	h = dst_host;
	h.cpus = 2;
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, NULL, DC_PASS, NULL);
	h.cpus = 1;
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, "host-cpus", DC_FAIL, "domain 'vm1' has 2 vCPUs, destination host 1 CPUs");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_CPUS);

	/* Memory: exactly enough passes, one byte short fails, unknown fails. */
	h = dst_host;
	h.free_mem = 2 * GIB;
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, NULL, DC_PASS, NULL);
	h.free_mem = 2 * GIB - 1;
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, "memory", DC_FAIL, "needs 2147483648 bytes of memory, destination has 2147483647 free");
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_MEMORY);
	h.free_mem_known = 0;
	dc_table_init(&t);
	run_all(&t, d, &h, k, 2);
	expect_only(&t, "memory", DC_FAIL, "free memory on the destination unknown");
	domxml_free(d);
}

static void
test_space_and_same_file(void **state)
{
	struct domxml_host same;
	struct dc_disk k[2];
	struct dc_table t;
	struct ferr e = { 0 };
	struct domxml *d = clean();

	(void)state;
	/* Two disks in one file system share its free space. */
	plan(k);
	k[1].dir_dev = k[0].dir_dev;
	k[0].dir_free = k[1].dir_free = 2 * GIB;
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, NULL, DC_PASS, NULL);
	assert_string_equal(dc_table_find(&t, "disk-space")->src, "vda, vdb needs 2 GiB");
	k[0].dir_free = k[1].dir_free = 2 * GIB - 1;
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "disk-space", DC_FAIL, "of vda, vdb ('/dst/a.img'): needs 2147483648 bytes, 2147483647 free");
	assert_int_equal(dc_table_result(&t, &e), FERR_REFUSE_SPACE);

	/* Same device and inode. */
	plan(k);
	k[1].dst_exists = 1;
	k[1].dst_dev = k[1].src_dev;
	k[1].dst_ino = k[1].src_ino;
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "same-file", DC_FAIL, "disk vdb: destination '/dst2/b.img' is the source file itself (device 1 inode 11)");
	assert_int_equal(dc_table_result(&t, &e), FERR_REFUSE_SAMEFILE);
	/* An existing destination that is another file is fine. */
	k[1].dst_ino = 12;
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, NULL, DC_PASS, NULL);

	/* One host (same UUID) and the same path. */
	plan(k);
	k[0].dst_path = "/src/a.img";
	dc_table_init(&t);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, NULL, DC_PASS, NULL);   /* other hosts: the same path is another file */
	same = dst_host;
	snprintf(same.uuid, sizeof(same.uuid), "%s", src_host.uuid);
	dc_table_init(&t);
	run_all(&t, d, &same, k, 2);
	expect_only(&t, "same-file", DC_FAIL, "disk vda: destination '/src/a.img' is the source file itself (same host");
	domxml_free(d);
}

static void
test_waivers(void **state)
{
	struct dc_disk k[2];
	struct dc_table t;
	struct ferr e = { 0 };
	struct domxml *d = clean();
	unsigned i;

	(void)state;
	plan(k);
	snprintf(d->disk[1].cache, sizeof(d->disk[1].cache), "unsafe");
	dc_table_init(&t);
	assert_int_equal(dc_table_waive(&t, "cache", &e), 0);
	run_all(&t, d, &dst_host, k, 2);
	expect_only(&t, "cache", DC_WAIVED, "disk vdb cache mode is 'unsafe'");
	assert_int_equal(dc_table_result(&t, &e), 0);

	/* Unknown names and same-file are refused. */
	assert_int_equal(dc_table_waive(&t, "caches", &e), FERR_USAGE);
	assert_non_null(strstr(e.msg, "'caches': no such check (checks: cdrom, hostdev,"));
	assert_int_equal(dc_table_waive(&t, NULL, &e), FERR_USAGE);
	assert_int_equal(dc_table_waive(&t, "same-file", &e), FERR_USAGE);
	assert_non_null(strstr(e.msg, "never waived"));

	/* Every other check can be waived; same-file fails even if its bit is set. */
	dc_table_init(&t);
	for (i = 0; i < dc_check_count; i++)
		if (strcmp(dc_check_names[i], "same-file") != 0)
			assert_int_equal(dc_table_waive(&t, dc_check_names[i], &e), 0);
	t.waive = ~0u;
	k[0].dst_exists = 1;
	k[0].dst_dev = k[0].src_dev;
	k[0].dst_ino = k[0].src_ino;
	run_all(&t, d, &dst_host, k, 2);
	assert_int_equal(dc_table_find(&t, "same-file")->status, DC_FAIL);
	assert_int_equal(dc_table_result(&t, &e), FERR_REFUSE_SAMEFILE);
	domxml_free(d);
}

static void
test_after_copy(void **state)
{
	struct dc_disk k[2];
	struct dc_table t;
	struct ferr e = { 0 };
	struct domxml *d = clean();

	(void)state;
	plan(k);
	k[0].dst_exists = k[1].dst_exists = 1;
	k[0].dst_size = k[1].dst_size = GIB;
	dc_table_init(&t);
	domcheck_after_copy(&t, d, k, 2);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.row[0].status, DC_PASS);
	assert_string_equal(t.row[0].src, "2 image(s): vda=1073741824 vdb=1073741824");

	k[1].dst_size = GIB - 512;
	domcheck_after_copy(&t, d, k, 2);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.row[0].status, DC_FAIL);
	assert_non_null(strstr(t.row[0].why, "disk vdb: destination '/dst2/b.img' has another size, source image is 1073741824 bytes (destination 1073741312 bytes)"));
	assert_int_equal(dc_table_result(&t, &e), FERR_VIRT_IMAGES);

	domcheck_after_copy(&t, d, k, 1);
	assert_non_null(strstr(t.row[0].why, "domain 'vm1' has 2 disks to migrate, destination has 1 images"));
	k[1].dst_size = GIB;
	k[1].dst_exists = 0;
	domcheck_after_copy(&t, d, k, 2);
	assert_non_null(strstr(t.row[0].why, "disk vdb: destination '/dst2/b.img' is missing"));
	k[1].dst_exists = 1;
	k[1].target = "hdc";
	domcheck_after_copy(&t, d, k, 2);
	assert_non_null(strstr(t.row[0].why, "image for disk hdc: domain 'vm1' has no such disk"));
	domxml_free(d);
}

static void
test_output(void **state)
{
	struct dc_disk k[2];
	struct dc_table t;
	struct ferr e = { 0 };
	struct domxml *d = clean();
	struct json_object *o, *arr, *row, *v;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	plan(k);
	d->disk[0].shareable = 1;
	d->disk[1].cache[0] = '\0';
	dc_table_init(&t);
	assert_int_equal(dc_table_waive(&t, "cache", &e), 0);
	run_all(&t, d, &dst_host, k, 2);

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	dc_table_print(&t, f);
	fclose(f);
	assert_non_null(strstr(buf, "CHECK"));
	assert_non_null(strstr(buf, "DESTINATION"));
	assert_non_null(strstr(buf, "fail   [VIRT_SHAREABLE] disk vda is shareable"));
	assert_non_null(strstr(buf, "waived [VIRT_CACHE] disk vdb cache mode is 'default'"));
	assert_non_null(strstr(buf, "Skylake-Client"));
	free(buf);

	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(dc_table_print_json(&t, f, &e), 0);
	fclose(f);
	assert_int_equal(buf[len - 1], '\n');
	assert_null(memchr(buf, '\n', len - 1));
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "ok", &v));
	assert_false(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "checks", &arr));
	assert_int_equal(json_object_array_length(arr), 12);
	row = json_object_array_get_idx(arr, 2);
	assert_true(json_object_object_get_ex(row, "check", &v));
	assert_string_equal(json_object_get_string(v), "shareable");
	assert_true(json_object_object_get_ex(row, "result", &v));
	assert_string_equal(json_object_get_string(v), "fail");
	assert_true(json_object_object_get_ex(row, "code", &v));
	assert_string_equal(json_object_get_string(v), "VIRT_SHAREABLE");
	assert_true(json_object_object_get_ex(row, "source", &v));
	assert_string_equal(json_object_get_string(v), "vda=shareable vdb=ok");
	row = json_object_array_get_idx(arr, 5);
	assert_true(json_object_object_get_ex(row, "result", &v));
	assert_string_equal(json_object_get_string(v), "waived");
	json_object_put(o);
	free(buf);
	domxml_free(d);
}

static void
test_stat_helpers(void **state)
{
	char dir[] = "/tmp/ferry-domcheck-XXXXXX", src[64], dst[80];
	struct dc_disk k;
	struct ferr e = { 0 };
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/a.img", dir);
	snprintf(dst, sizeof(dst), "%s/b.img", dir);
	fd = open(src, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 65536), 0);
	close(fd);

	memset(&k, 0, sizeof(k));
	k.target = "vda";
	k.src_path = src;
	k.dst_path = dst;
	assert_int_equal(dc_disk_stat_source(&k, &e), 0);
	assert_true(k.size == 65536 && k.src_ino != 0);
	assert_int_equal(dc_disk_stat_dest(&k, &e), 0);
	assert_false(k.dst_exists);
	assert_true(k.dir_free > 0);
	k.dst_path = src;
	assert_int_equal(dc_disk_stat_dest(&k, &e), 0);
	assert_true(k.dst_exists && k.dst_ino == k.src_ino && k.dst_size == 65536);

	k.src_path = dir;
	assert_int_equal(dc_disk_stat_source(&k, &e), FERR_IO);
	assert_non_null(strstr(e.msg, "is not a regular file"));
	k.src_path = "/nonexistent/ferry.img";
	assert_int_equal(dc_disk_stat_source(&k, &e), FERR_IO);
	assert_non_null(strstr(e.msg, "disk vda: source '/nonexistent/ferry.img'"));
	k.dst_path = "/nonexistent/dir/x.img";
	assert_int_equal(dc_disk_stat_dest(&k, &e), FERR_IO);
	assert_non_null(strstr(e.msg, "destination directory '/nonexistent/dir'"));
	snprintf(dst, sizeof(dst), "%s/a.img/x.img", dir);
	k.dst_path = dst;
	assert_int_equal(dc_disk_stat_dest(&k, &e), FERR_IO);
	assert_non_null(strstr(e.msg, "not a directory"));

	unlink(src);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_passes),
		cmocka_unit_test(test_source_checks),
		cmocka_unit_test(test_destination_checks),
		cmocka_unit_test(test_space_and_same_file),
		cmocka_unit_test(test_waivers),
		cmocka_unit_test(test_after_copy),
		cmocka_unit_test(test_output),
		cmocka_unit_test(test_stat_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
