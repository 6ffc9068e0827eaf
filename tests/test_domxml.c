/* domxml.c: domain and capabilities XML into structs, and disk sources
 * rewritten.  Every field is checked against the XML it came from; every
 * limit one under, at and one over; every refusal is FERR_VIRT_XML with a
 * message naming the element, the disk or the value. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml.h"
#include "err.h"
#include "ferry_proto.h"

#define HEAD "<domain type='kvm' id='7'>\n" \
	"  <name>vm1</name>\n" \
	"  <uuid>6695EB01-F6A4-8304-79AA-97F2502E193F</uuid>\n" \
	"  <memory unit='KiB'>2097152</memory>\n" \
	"  <currentMemory unit='KiB'>1048576</currentMemory>\n" \
	"  <vcpu placement='static' current='2'>4</vcpu>\n" \
	"  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>\n" \
	"  <cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Client</model></cpu>\n"

static const char good_xml[] =
	HEAD
	"  <devices>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='none'/>\n"
	"      <source file='/var/lib/vm1/vda.img' index='1'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='block' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='writeback'/>\n"
	"      <source dev='/dev/sdb'/>\n"
	"      <target dev='vdb' bus='virtio'/>\n"
	"      <shareable/>\n"
	"    </disk>\n"
	"    <disk type='network' device='disk'>\n"
	"      <source protocol='rbd' name='pool/img'/>\n"
	"      <target dev='vdc' bus='virtio'/>\n"
	"      <readonly/>\n"
	"    </disk>\n"
	"    <disk type='file' device='cdrom'>\n"
	"      <source file='/iso/install.iso'/>\n"
	"      <target dev='hdc' bus='sata'/>\n"
	"      <readonly/>\n"
	"    </disk>\n"
	"    <disk type='file' device='floppy'>\n"
	"      <target dev='fda'/>\n"
	"    </disk>\n"
	"    <disk type='volume' device='lun'>\n"
	"      <source pool='default' volume='data'/>\n"
	"      <target dev='sda' bus='scsi'/>\n"
	"    </disk>\n"
	"    <interface type='network'><source network='default'/></interface>\n"
	"    <hostdev mode='subsystem' type='usb'>\n"
	"      <source><vendor id='0x046d'/><product id='0xc52b'/></source>\n"
	"    </hostdev>\n"
	"    <interface type='hostdev'><source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>\n"
	"  </devices>\n"
	"</domain>\n";

static struct domxml *
parse_ok(const char *xml)
{
	struct domxml *d = NULL;
	struct ferr e = { 0 };

	if (domxml_parse(xml, strlen(xml), &d, &e) != 0)
		fail_msg("domxml_parse failed: %s\n%s", e.msg, xml);
	assert_non_null(d);
	return d;
}

/* Refused with FERR_VIRT_XML and a message holding each of the words. */
static void
parse_bad(const char *xml, size_t len, const char *word1, const char *word2)
{
	struct domxml *d = (struct domxml *)(uintptr_t)1;
	struct ferr e = { 0 };
	int rc = domxml_parse(xml, len, &d, &e);

	if (rc != FERR_VIRT_XML)
		fail_msg("domxml_parse returned %d (%s) for:\n%.300s", rc, e.msg, xml);
	assert_null(d);
	assert_int_equal(e.code, FERR_VIRT_XML);
	if (word1 != NULL && strstr(e.msg, word1) == NULL)
		fail_msg("message '%s' does not name '%s'", e.msg, word1);
	if (word2 != NULL && strstr(e.msg, word2) == NULL)
		fail_msg("message '%s' does not name '%s'", e.msg, word2);
}

static void
parse_bad_str(const char *xml, const char *word1, const char *word2)
{
	parse_bad(xml, strlen(xml), word1, word2);
}

/* HEAD (or a variant) plus one devices block. */
static char *
with_devices(const char *head, const char *devices)
{
	size_t n = strlen(head) + strlen(devices) + 64;
	char *s = malloc(n);

	assert_non_null(s);
	snprintf(s, n, "%s  <devices>\n%s  </devices>\n</domain>\n", head, devices);
	return s;
}

static void
test_scalars(void **state)
{
	struct domxml *d = parse_ok(good_xml);

	(void)state;
	assert_string_equal(d->name, "vm1");
	assert_string_equal(d->uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
	assert_true(d->memory_bytes == 2097152ull * 1024);
	assert_int_equal(d->vcpus, 4);
	assert_string_equal(d->arch, "x86_64");
	assert_string_equal(d->cpu_mode, "custom");
	assert_string_equal(d->cpu_model, "Skylake-Client");
	domxml_free(d);
}

static void
test_disks(void **state)
{
	struct domxml *d = parse_ok(good_xml);
	const struct domxml_disk *k = d->disk;

	(void)state;
	assert_int_equal(d->ndisks, 6);

	assert_string_equal(k[0].target, "vda");
	assert_int_equal(k[0].device, DD_DISK);
	assert_int_equal(k[0].source, DS_FILE);
	assert_string_equal(k[0].src_type, "file");
	assert_string_equal(k[0].path, "/var/lib/vm1/vda.img");
	assert_string_equal(k[0].cache, "none");
	assert_string_equal(k[0].format, "raw");
	assert_false(k[0].shareable || k[0].readonly || k[0].has_media);
	assert_true(domxml_disk_migrates(&k[0]));

	assert_int_equal(k[1].source, DS_BLOCK);
	assert_string_equal(k[1].path, "/dev/sdb");
	assert_string_equal(k[1].cache, "writeback");
	assert_true(k[1].shareable);
	assert_false(k[1].readonly);

	assert_int_equal(k[2].source, DS_NETWORK);
	assert_string_equal(k[2].path, "pool/img");
	assert_string_equal(k[2].cache, "");
	assert_string_equal(k[2].format, "");
	assert_true(k[2].readonly);

	assert_int_equal(k[3].device, DD_CDROM);
	assert_true(k[3].has_media);
	assert_string_equal(k[3].path, "/iso/install.iso");
	assert_false(domxml_disk_migrates(&k[3]));

	assert_int_equal(k[4].device, DD_FLOPPY);
	assert_false(k[4].has_media);
	assert_string_equal(k[4].path, "");

	assert_int_equal(k[5].device, DD_LUN);
	assert_int_equal(k[5].source, DS_OTHER);
	assert_string_equal(k[5].src_type, "volume");
	assert_string_equal(k[5].path, "default/data");
	assert_true(domxml_disk_migrates(&k[5]));
	assert_string_equal(domxml_device_name(DD_LUN), "lun");
	assert_string_equal(domxml_device_name(DD_INVALID), "invalid");
	domxml_free(d);
}

static void
test_hostdevs(void **state)
{
	static const char *const cases[][2] = {
		{ "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' "
		  "bus='0x06' slot='0x02' function='0x0'/></source></hostdev>", "pci 0000:06:02.0" },
		{ "<hostdev mode='subsystem' type='pci'><source><address bus='zz'/></source></hostdev>",
		  "pci (address not given)" },
		{ "<hostdev mode='subsystem' type='usb'><source><address bus='1' device='3'/></source></hostdev>",
		  "usb bus 1 device 3" },
		{ "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/></source></hostdev>",
		  "scsi" },
		{ "<hostdev mode='capabilities' type='storage'><source><block>/dev/sdf</block></source></hostdev>",
		  "storage" },
		{ "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' "
		  "bus='0x03' slot='0x10' function='0x1'/></source></interface>",
		  "interface type hostdev, pci 0000:03:10.1" },
	};
	struct domxml *d;
	size_t i;

	(void)state;
	d = parse_ok(good_xml);
	assert_int_equal(d->nhostdevs, 2);
	assert_string_equal(d->hostdev, "usb 046d:c52b");
	domxml_free(d);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *x = with_devices(HEAD, cases[i][0]);

		d = parse_ok(x);
		assert_int_equal(d->nhostdevs, 1);
		assert_string_equal(d->hostdev, cases[i][1]);
		domxml_free(d);
		free(x);
	}
}

static void
test_defaults(void **state)
{
	/* No cpu, no arch, no disk type or device, no driver. */
	static const char xml[] =
		"<domain><name>a</name><uuid>00112233445566778899aabbccddeeff</uuid>"
		"<memory>4</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
		"<devices><disk><source file='/x'/><target dev='vda'/></disk></devices></domain>";
	struct domxml *d = parse_ok(xml);

	(void)state;
	assert_string_equal(d->uuid, "00112233-4455-6677-8899-aabbccddeeff");
	assert_true(d->memory_bytes == 4096);
	assert_string_equal(d->arch, "");
	assert_string_equal(d->cpu_mode, "");
	assert_string_equal(d->cpu_model, "");
	assert_int_equal(d->ndisks, 1);
	assert_int_equal(d->disk[0].device, DD_DISK);
	assert_int_equal(d->disk[0].source, DS_FILE);
	assert_string_equal(d->disk[0].cache, "");
	assert_int_equal(d->nhostdevs, 0);
	assert_string_equal(d->hostdev, "");
	domxml_free(d);
}

static void
memory_case(const char *mem, uint64_t want)
{
	char xml[512];
	struct domxml *d;

	snprintf(xml, sizeof(xml), "<domain><name>m</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	    "%s<vcpu>1</vcpu></domain>", mem);
	if (want == 0) {
		parse_bad_str(xml, "memory", NULL);
		return;
	}
	d = parse_ok(xml);
	if (d->memory_bytes != want)
		fail_msg("%s: %llu, want %llu", mem, (unsigned long long)d->memory_bytes,
		    (unsigned long long)want);
	domxml_free(d);
}

static void
test_memory_units(void **state)
{
	(void)state;
	memory_case("<memory>1</memory>", 1024);
	memory_case("<memory unit='b'>4097</memory>", 4097);
	memory_case("<memory unit='bytes'>1</memory>", 1);
	memory_case("<memory unit='KB'>3</memory>", 3000);
	memory_case("<memory unit='MiB'>512</memory>", 512ull << 20);
	memory_case("<memory unit='M'>2</memory>", 2ull << 20);
	memory_case("<memory unit='GiB'>8</memory>", 8ull << 30);
	memory_case("<memory unit='GB'>1</memory>", 1000000000ull);
	memory_case("<memory unit='TiB'>64</memory>", 64ull << 40);   /* = FERRY_DEVICE_SIZE_MAX */
	memory_case("<memory unit='KiB'> 1024 </memory>", 1ull << 20);
	/* Refused: over FERRY_DEVICE_SIZE_MAX by one unit, zero, junk, units. */
	memory_case("<memory unit='TiB'>65</memory>", 0);
	memory_case("<memory unit='b'>70368744177665</memory>", 0);
	memory_case("<memory unit='KiB'>99999999999999999999999</memory>", 0);
	memory_case("<memory>0</memory>", 0);
	memory_case("<memory>-1</memory>", 0);
	memory_case("<memory>1e6</memory>", 0);
	memory_case("<memory></memory>", 0);
	memory_case("<memory unit='parsecs'>1</memory>", 0);
	memory_case("", 0);
	memory_case("<memory>1</memory><memory>2</memory>", 0);
}

static void
test_vcpus(void **state)
{
	char xml[512];
	struct domxml *d;

	(void)state;
	snprintf(xml, sizeof(xml), "<domain><name>c</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	    "<memory>1</memory><vcpu>%u</vcpu></domain>", DOMXML_VCPUS_MAX);
	d = parse_ok(xml);
	assert_int_equal(d->vcpus, DOMXML_VCPUS_MAX);
	domxml_free(d);
	snprintf(xml, sizeof(xml), "<domain><name>c</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	    "<memory>1</memory><vcpu>%u</vcpu></domain>", DOMXML_VCPUS_MAX + 1);
	parse_bad_str(xml, "<vcpu>", "16385");
	parse_bad_str("<domain><name>c</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	    "<memory>1</memory><vcpu>0</vcpu></domain>", "<vcpu>", NULL);
	parse_bad_str("<domain><name>c</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	    "<memory>1</memory></domain>", "<vcpu> missing", NULL);
}

static void
test_names_and_uuid(void **state)
{
	char xml[1024], name[DOMXML_NAME_MAX + 2];
	struct domxml *d;

	(void)state;
	memset(name, 'n', sizeof(name));
	name[DOMXML_NAME_MAX] = '\0';
	snprintf(xml, sizeof(xml), "<domain><name>%s</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	    "<memory>1</memory><vcpu>1</vcpu></domain>", name);
	d = parse_ok(xml);
	assert_int_equal(strlen(d->name), DOMXML_NAME_MAX);
	domxml_free(d);
	name[DOMXML_NAME_MAX] = 'n';
	name[DOMXML_NAME_MAX + 1] = '\0';
	snprintf(xml, sizeof(xml), "<domain><name>%s</name><uuid>00112233-4455-6677-8899-aabbccddeeff</uuid>"
	    "<memory>1</memory><vcpu>1</vcpu></domain>", name);
	parse_bad_str(xml, "<name>", "256 bytes > limit 255");
	parse_bad_str("<domain><name>a/b</name></domain>", "<name> 'a/b'", NULL);
	parse_bad_str("<domain><name></name></domain>", "<name>", "empty");
	parse_bad_str("<domain><name>x&#9;y</name></domain>", "<name>", "control");
	parse_bad_str("<domain><name>a</name><name>b</name></domain>", "<name> appears 2 times", NULL);
	parse_bad_str("<domain><uuid>x</uuid></domain>", "<name> missing", NULL);
	parse_bad_str("<domain><name>u</name><uuid>0011223344556677889aabbccddeeff</uuid></domain>",
	    "domain 'u'", "is not a UUID");
	parse_bad_str("<domain><name>u</name><uuid>00112233445566778899aabbccddeeff0</uuid></domain>",
	    "is not a UUID", NULL);
	parse_bad_str("<domain><name>u</name><uuid>0011223344556677889Xaabbccddeeff</uuid></domain>",
	    "is not a UUID", NULL);
}

static void
test_document_refusals(void **state)
{
	static const char bomb[] =
		"<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY a 'aaaaaaaaaa'>"
		"<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>]><domain><name>&b;</name></domain>";
	static const char ext[] =
		"<!DOCTYPE domain SYSTEM 'http://example.invalid/x.dtd'><domain><name>x</name></domain>";
	char *big;

	(void)state;
	parse_bad("", 0, "empty", NULL);
	parse_bad_str(bomb, "DOCTYPE", NULL);
	parse_bad_str(ext, "DOCTYPE", NULL);
	parse_bad_str("<domain><name>x</name>", "domain XML: line", NULL);
	parse_bad_str("not xml at all", "domain XML", NULL);
	parse_bad_str("<capabilities/>", "root element is not <domain>", NULL);
	parse_bad_str("<domain xmlns='urn:x'><name>x</name></domain>", "root element", NULL);
	/* One byte over the limit is refused before parsing. */
	big = malloc(DOMXML_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, ' ', DOMXML_MAX_BYTES + 1);
	memcpy(big, "<domain>", 8);
	parse_bad(big, DOMXML_MAX_BYTES + 1, "1048577 bytes > limit 1048576", NULL);
	free(big);
}

static void
test_disk_refusals(void **state)
{
	static const struct {
		const char *devices;
		const char *word1, *word2;
	} cases[] = {
		{ "<disk><source file='/a'/></disk>", "disk 0", "<target> missing" },
		{ "<disk><target dev=''/></disk>", "disk 0", "<target dev=> missing" },
		{ "<disk><target dev='vda'/><target dev='vdb'/></disk>", "disk 0", "appears 2 times" },
		{ "<disk><target dev='v da'/></disk>", "<target dev=> 'v da'", NULL },
		{ "<disk><target dev='../x'/></disk>", "'../x'", NULL },
		{ "<disk><source file='rel/a.img'/><target dev='vda'/></disk>", "disk vda",
		  "'rel/a.img' is not an absolute path" },
		{ "<disk type='block'><source dev='sdb'/><target dev='vdb'/></disk>", "disk vdb",
		  "absolute" },
		{ "<disk><source file='/a'/><source file='/b'/><target dev='vda'/></disk>", "disk vda",
		  "<source> appears 2 times" },
		{ "<disk device='tape'><target dev='st0'/></disk>", "disk st0", "unknown device 'tape'" },
		{ "<disk><driver cache='no ne'/><target dev='vda'/></disk>", "disk vda", "'no ne'" },
		{ "<disk><driver/><driver/><target dev='vda'/></disk>", "disk vda", "<driver>" },
		{ "<disk><source file='/a&#10;b'/><target dev='vda'/></disk>", "disk vda", "control" },
		{ "<disk><target dev='vda'/></disk><disk><target dev='vda'/></disk>",
		  "two disks with target 'vda'", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *x = with_devices(HEAD, cases[i].devices);

		parse_bad_str(x, cases[i].word1, cases[i].word2);
		parse_bad_str(x, "domain 'vm1'", NULL);
		free(x);
	}
}

/* n disks of one line each. */
static char *
n_disks(unsigned n)
{
	size_t cap = 64 * (n + 1);
	char *s = calloc(1, cap);
	unsigned i;

	assert_non_null(s);
	for (i = 0; i < n; i++)
		snprintf(s + strlen(s), cap - strlen(s), "<disk><source file='/d/%u'/><target dev='vd%u'/></disk>\n",
		    i, i);
	return s;
}

static void
test_disk_limits(void **state)
{
	char *devs, *x, path[DOMXML_PATH_MAX + 2], *dev;
	struct domxml *d;

	(void)state;
	devs = n_disks(DOMXML_MAX_DISKS);
	x = with_devices(HEAD, devs);
	d = parse_ok(x);
	assert_int_equal(d->ndisks, DOMXML_MAX_DISKS);
	assert_string_equal(d->disk[63].target, "vd63");
	domxml_free(d);
	free(x);
	free(devs);
	devs = n_disks(DOMXML_MAX_DISKS + 1);
	x = with_devices(HEAD, devs);
	parse_bad_str(x, "65 disks > limit 64", NULL);
	free(x);
	free(devs);

	/* A path of exactly DOMXML_PATH_MAX bytes, then one more. */
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[DOMXML_PATH_MAX] = '\0';
	dev = malloc(sizeof(path) + 128);
	assert_non_null(dev);
	snprintf(dev, sizeof(path) + 128, "<disk><source file='%s'/><target dev='vda'/></disk>", path);
	x = with_devices(HEAD, dev);
	d = parse_ok(x);
	assert_int_equal(strlen(d->disk[0].path), DOMXML_PATH_MAX);
	domxml_free(d);
	free(x);
	path[DOMXML_PATH_MAX] = 'p';
	path[DOMXML_PATH_MAX + 1] = '\0';
	snprintf(dev, sizeof(path) + 128, "<disk><source file='%s'/><target dev='vda'/></disk>", path);
	x = with_devices(HEAD, dev);
	parse_bad_str(x, "disk vda", "4096 bytes > limit 4095");
	free(x);
	free(dev);
}

static int
caps_parse(const char *xml, struct domxml_host *h, struct ferr *e)
{
	return domxml_caps_parse(xml, strlen(xml), h, e);
}

static void
test_caps(void **state)
{
	static const char caps[] =
		"<capabilities><host><uuid>11111111-2222-3333-4444-555555555555</uuid>"
		"<cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model><vendor>Intel</vendor>"
		"<topology sockets='1' cores='4' threads='2'/></cpu></host>"
		"<guest><arch name='x86_64'/></guest></capabilities>";
	struct domxml_host h;
	struct ferr e = { 0 };

	(void)state;
	memset(&h, 0, sizeof(h));
	h.cpus = 7;
	assert_int_equal(domxml_caps_parse(caps, strlen(caps), &h, &e), 0);
	assert_string_equal(h.arch, "x86_64");
	assert_string_equal(h.model, "Skylake-Client-IBRS");
	assert_string_equal(h.uuid, "11111111-2222-3333-4444-555555555555");
	assert_int_equal(h.cpus, 7);   /* untouched */

	memset(&h, 0, sizeof(h));
	assert_int_equal(caps_parse("<capabilities><host><cpu><arch>i686</arch></cpu></host></capabilities>",
	    &h, &e), 0);
	assert_string_equal(h.arch, "i686");
	assert_string_equal(h.model, "");
	assert_string_equal(h.uuid, "");

	assert_int_equal(caps_parse("<capabilities><host><cpu/></host></capabilities>", &h, &e),
	    FERR_VIRT_XML);
	assert_non_null(strstr(e.msg, "<arch> missing"));
	assert_int_equal(caps_parse("<domain/>", &h, &e), FERR_VIRT_XML);
	assert_non_null(strstr(e.msg, "root element is not <capabilities>"));
	assert_int_equal(caps_parse("<capabilities><host><cpu><arch>i 6</arch></cpu></host></capabilities>",
	    &h, &e), FERR_VIRT_XML);
	assert_non_null(strstr(e.msg, "'i 6'"));
}

/* ---- rewrite ---- */

static const char rw_xml[] =
	HEAD
	"  <devices>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='none'/>\n"
	"      <source file='/src/vda.img'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='none'/>\n"
	"      <target dev='vdb' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>\n"
	"    <!-- a comment &amp; text stay -->\n"
	"  </devices>\n"
	"</domain>\n";

static void
test_rewrite_round_trip(void **state)
{
	const struct domxml_path_map map[] = {
		{ "vdb", "/dst/b & b.img" },
		{ "vda", "/dst/vda.img" },
	};
	struct domxml *a = parse_ok(rw_xml), *b;
	struct ferr e = { 0 };
	char *out = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	uint32_t i;

	(void)state;
	assert_int_equal(domxml_rewrite_disks(rw_xml, strlen(rw_xml), map, 2, &out, &len, &e), 0);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	assert_non_null(strstr(out, "<source file=\"/dst/b &amp; b.img\"/>"));
	assert_null(strstr(out, "/src/vda.img"));
	assert_non_null(strstr(out, "a comment &amp; text stay"));
	b = parse_ok(out);
	/* Everything but the two paths is the same. */
	assert_string_equal(b->disk[0].path, "/dst/vda.img");
	assert_string_equal(b->disk[1].path, "/dst/b & b.img");
	snprintf(a->disk[0].path, sizeof(a->disk[0].path), "/dst/vda.img");
	snprintf(a->disk[1].path, sizeof(a->disk[1].path), "/dst/b & b.img");
	for (i = 0; i < a->ndisks; i++)
		assert_memory_equal(&a->disk[i], &b->disk[i], sizeof(a->disk[i]));
	assert_memory_equal(a, b, sizeof(*a));
	/* Rewriting the output to the same paths changes nothing more. */
	assert_int_equal(domxml_rewrite_disks(out, len, map, 2, &again, &len2, &e), 0);
	assert_int_equal(len, len2);
	assert_string_equal(out, again);
	free(again);
	free(out);
	domxml_free(a);
	domxml_free(b);
}

static void
rewrite_bad(const char *xml, const struct domxml_path_map *map, size_t n, const char *word)
{
	struct ferr e = { 0 };
	char *out = (char *)(uintptr_t)1;
	size_t len = 7;

	assert_int_equal(domxml_rewrite_disks(xml, strlen(xml), map, n, &out, &len, &e), FERR_VIRT_XML);
	assert_null(out);
	assert_int_equal(len, 0);
	if (strstr(e.msg, word) == NULL)
		fail_msg("message '%s' does not name '%s'", e.msg, word);
}

static void
test_rewrite_refusals(void **state)
{
	const struct domxml_path_map only_a[] = { { "vda", "/dst/a" } };
	const struct domxml_path_map extra[] = { { "vda", "/a" }, { "vdb", "/b" }, { "vdz", "/z" } };
	const struct domxml_path_map cdrom[] = { { "vda", "/a" }, { "vdb", "/b" }, { "hdc", "/c" } };
	const struct domxml_path_map rel[] = { { "vda", "a.img" }, { "vdb", "/b" } };
	const struct domxml_path_map twice[] = { { "vda", "/a" }, { "vda", "/b" } };
	const struct domxml_path_map ctl[] = { { "vda", "/a\nb" }, { "vdb", "/b" } };
	const struct domxml_path_map blk[] = { { "vdb", "/b" } };
	char *x;

	(void)state;
	rewrite_bad(rw_xml, only_a, 1, "disk vdb: no destination path given");
	rewrite_bad(rw_xml, extra, 3, "disk vdz: no such disk in domain 'vm1'");
	rewrite_bad(rw_xml, cdrom, 3, "disk hdc: a cdrom, not migrated");
	rewrite_bad(rw_xml, rel, 2, "disk vda: new path 'a.img'");
	rewrite_bad(rw_xml, twice, 2, "disk vda: mapped twice");
	rewrite_bad(rw_xml, ctl, 2, "disk vda: new path");
	rewrite_bad("<domain>", only_a, 1, "domain XML");
	x = with_devices(HEAD, "<disk type='block'><source dev='/dev/sdb'/><target dev='vdb'/></disk>");
	rewrite_bad(x, blk, 1, "disk vdb: type 'block', not a file");
	free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_disks),
		cmocka_unit_test(test_hostdevs),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_memory_units),
		cmocka_unit_test(test_vcpus),
		cmocka_unit_test(test_names_and_uuid),
		cmocka_unit_test(test_document_refusals),
		cmocka_unit_test(test_disk_refusals),
		cmocka_unit_test(test_disk_limits),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_rewrite_round_trip),
		cmocka_unit_test(test_rewrite_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
