#include "domcheck.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <json-c/json.h>

#include "msg.h"

/* Index into both tables below, in table order. */
enum dc_check {
	C_CDROM, C_HOSTDEV, C_SHAREABLE, C_READONLY, C_FILE, C_CACHE,
	C_SAMEFILE, C_ARCH, C_MODEL, C_CPUS, C_MEMORY, C_SPACE,
	C_NAME, C_IMAGES, C_COUNT
};

const char *const dc_check_names[] = {
	[C_CDROM] = "cdrom",
	[C_HOSTDEV] = "hostdev",
	[C_SHAREABLE] = "shareable",
	[C_READONLY] = "readonly",
	[C_FILE] = "file-backed",
	[C_CACHE] = "cache",
	[C_SAMEFILE] = "same-file",
	[C_ARCH] = "cpu-arch",
	[C_MODEL] = "cpu-model",
	[C_CPUS] = "host-cpus",
	[C_MEMORY] = "memory",
	[C_SPACE] = "disk-space",
	[C_NAME] = "name-free",
	[C_IMAGES] = "disk-images",
};
const unsigned dc_check_count = C_COUNT;

static const int check_codes[C_COUNT] = {
	[C_CDROM] = FERR_VIRT_CDROM,
	[C_HOSTDEV] = FERR_VIRT_HOSTDEV,
	[C_SHAREABLE] = FERR_VIRT_SHAREABLE,
	[C_READONLY] = FERR_VIRT_READONLY,
	[C_FILE] = FERR_VIRT_NOTFILE,
	[C_CACHE] = FERR_VIRT_CACHE,
	[C_SAMEFILE] = FERR_REFUSE_SAMEFILE,
	[C_ARCH] = FERR_VIRT_ARCH,
	[C_MODEL] = FERR_VIRT_CPU_MODEL,
	[C_CPUS] = FERR_VIRT_CPUS,
	[C_MEMORY] = FERR_VIRT_MEMORY,
	[C_SPACE] = FERR_REFUSE_SPACE,
	[C_NAME] = FERR_VIRT_EXISTS,
	[C_IMAGES] = FERR_VIRT_IMAGES,
};

static int
check_index(const char *check)
{
	int i;

	for (i = 0; i < C_COUNT; i++)
		if (strcmp(dc_check_names[i], check) == 0)
			return i;
	return -1;
}

int
dc_check_code(const char *check)
{
	int i = check != NULL ? check_index(check) : -1;

	return i < 0 ? 0 : check_codes[i];
}

void
dc_table_init(struct dc_table *t)
{
	memset(t, 0, sizeof(*t));
}

int
dc_table_waive(struct dc_table *t, const char *check, struct ferr *e)
{
	char names[256] = "";
	int i = check != NULL ? check_index(check) : -1;

	if (i == C_SAMEFILE)
		return ferr_set(e, FERR_USAGE,
		    "--force-check same-file: never waived (the copy would overwrite its own source)");
	if (i < 0) {
		for (i = 0; i < C_COUNT; i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			    i ? ", " : "", dc_check_names[i]);
		return ferr_set(e, FERR_USAGE, "--force-check '%s': no such check (checks: %s)",
		    check != NULL ? check : "", names);
	}
	t->waive |= 1u << i;
	return 0;
}

/* ---- rows ------------------------------------------------------------------ */

/* The row of check c, reset to "pass"; appended when the table has none. */
static struct dc_row *
row_begin(struct dc_table *t, enum dc_check c)
{
	struct dc_row *r = NULL;
	uint32_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->row[i].check, dc_check_names[c]) == 0)
			r = &t->row[i];
	if (r == NULL)
		r = &t->row[t->n++];   /* C_COUNT <= DC_MAX_ROWS: always room */
	memset(r, 0, sizeof(*r));
	r->check = dc_check_names[c];
	r->code = check_codes[c];
	r->status = DC_PASS;
	return r;
}

static void FERRY_PRINTF(3, 4)
row_fail(const struct dc_table *t, struct dc_row *r, const char *fmt, ...)
{
	va_list ap;
	int i = check_index(r->check);

	r->status = (t->waive & (1u << i)) ? DC_WAIVED : DC_FAIL;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

/* Add a "; also vdb, vdc" tail naming the other offenders. */
static void
row_also(struct dc_row *r, const char *others)
{
	size_t n = strlen(r->why);

	if (others[0] != '\0')
		snprintf(r->why + n, sizeof(r->why) - n, "; also %s", others);
}

static void FERRY_PRINTF(3, 4)
append(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

/* "512 MiB", "1.5 GiB", "4096 B": for values shown to people. */
static void
fmt_size(uint64_t v, char *out, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned u = 0;
	uint64_t whole = v, rem = 0;

	while (whole >= 1024 && u < 5) {
		rem = whole % 1024;
		whole /= 1024;
		u++;
	}
	if (u == 0 || rem == 0)
		snprintf(out, size, "%llu %s", (unsigned long long)whole, unit[u]);
	else
		snprintf(out, size, "%.1f %s", (double)whole + (double)rem / 1024.0, unit[u]);
}

/* ---- source-domain checks ------------------------------------------------- */

static void
check_cdrom(struct dc_table *t, const struct domxml *d)
{
	struct dc_row *r = row_begin(t, C_CDROM);
	char others[DC_VALUE_MAX] = "";
	unsigned bad = 0, drives = 0;
	uint32_t i;

	for (i = 0; i < d->ndisks; i++) {
		const struct domxml_disk *k = &d->disk[i];

		if (k->device != DD_CDROM && k->device != DD_FLOPPY)
			continue;
		drives++;
		if (!k->has_media)
			continue;
		append(r->src, sizeof(r->src), "%s%s=%s", bad ? " " : "", k->target, k->path);
		if (bad++ == 0)
			row_fail(t, r, "%s %s has media '%s' attached: eject it first",
			    domxml_device_name(k->device), k->target, k->path);
		else
			append(others, sizeof(others), "%s%s", bad > 2 ? ", " : "", k->target);
	}
	if (bad == 0 && drives == 0)
		snprintf(r->src, sizeof(r->src), "no cdrom");
	else if (bad == 0)
		snprintf(r->src, sizeof(r->src), "%u drive(s), no media", drives);
	row_also(r, others);
}

static void
check_hostdev(struct dc_table *t, const struct domxml *d)
{
	struct dc_row *r = row_begin(t, C_HOSTDEV);

	if (d->nhostdevs == 0) {
		snprintf(r->src, sizeof(r->src), "none");
		return;
	}
	snprintf(r->src, sizeof(r->src), "%u (%s)", d->nhostdevs, d->hostdev);
	row_fail(t, r, "host device passthrough %s%s: a passed-through device cannot migrate, detach it first",
	    d->hostdev, d->nhostdevs > 1 ? " (and more)" : "");
}

/* The per-disk source checks: one predicate and one message each. */
struct disk_rule {
	enum dc_check c;
	int (*bad)(const struct domxml_disk *k);
	void (*value)(const struct domxml_disk *k, char *out, size_t size);
	const char *why;              /* printf: target, value */
};

static int bad_shareable(const struct domxml_disk *k) { return k->shareable; }
static int bad_readonly(const struct domxml_disk *k) { return k->readonly; }
static int bad_file(const struct domxml_disk *k) { return k->source != DS_FILE || k->path[0] == '\0'; }
static int bad_cache(const struct domxml_disk *k) { return strcmp(k->cache, "none") != 0; }

static void
val_flag(const struct domxml_disk *k, char *out, size_t size)
{
	snprintf(out, size, "%s", k->shareable ? "shareable" : k->readonly ? "readonly" : "ok");
}

static void
val_source(const struct domxml_disk *k, char *out, size_t size)
{
	if (k->path[0] == '\0')
		snprintf(out, size, "%s (no source)", k->src_type);
	else
		snprintf(out, size, "%s '%s'", k->src_type, k->path);
}

static void
val_cache(const struct domxml_disk *k, char *out, size_t size)
{
	snprintf(out, size, "%s", k->cache[0] != '\0' ? k->cache : "default");
}

static const struct disk_rule disk_rules[] = {
	{ C_SHAREABLE, bad_shareable, val_flag,
	  "disk %s is shareable (%s): another guest may write it during the copy; remove <shareable/>" },
	{ C_READONLY, bad_readonly, val_flag,
	  "disk %s is read-only (%s): ferry migrates writable disks only; remove <readonly/> or detach it" },
	{ C_FILE, bad_file, val_source,
	  "disk %s is backed by %s, not by a file: only file-backed disks migrate" },
	{ C_CACHE, bad_cache, val_cache,
	  "disk %s cache mode is '%s', must be 'none' (<driver cache='none'/>)" },
};

static void
check_disks(struct dc_table *t, const struct domxml *d, const struct disk_rule *rule)
{
	struct dc_row *r = row_begin(t, rule->c);
	char others[DC_VALUE_MAX] = "", val[DOMXML_PATH_MAX + 64];
	unsigned bad = 0, n = 0;
	uint32_t i;

	for (i = 0; i < d->ndisks; i++) {
		const struct domxml_disk *k = &d->disk[i];

		if (!domxml_disk_migrates(k))
			continue;
		rule->value(k, val, sizeof(val));
		append(r->src, sizeof(r->src), "%s%s=%s", n++ ? " " : "", k->target, val);
		if (!rule->bad(k))
			continue;
		if (bad++ == 0)
			row_fail(t, r, rule->why, k->target, val);
		else
			append(others, sizeof(others), "%s%s", bad > 2 ? ", " : "", k->target);
	}
	if (n == 0)
		snprintf(r->src, sizeof(r->src), "no disks");
	row_also(r, others);
}

void
domcheck_source(struct dc_table *t, const struct domxml *d)
{
	size_t i;

	check_cdrom(t, d);
	check_hostdev(t, d);
	for (i = 0; i < sizeof(disk_rules) / sizeof(disk_rules[0]); i++)
		check_disks(t, d, &disk_rules[i]);
}

/* ---- destination-host checks ------------------------------------------- */

static int
same_file(const struct domxml_host *src, const struct domxml_host *dst, const struct dc_disk *k,
    char *how, size_t size)
{
	if (k->dst_exists && (k->src_dev != 0 || k->src_ino != 0) && k->dst_dev == k->src_dev &&
	    k->dst_ino == k->src_ino) {
		snprintf(how, size, "device %llu inode %llu", (unsigned long long)k->dst_dev,
		    (unsigned long long)k->dst_ino);
		return 1;
	}
	if (src != NULL && dst != NULL && src->uuid[0] != '\0' && strcmp(src->uuid, dst->uuid) == 0 &&
	    k->src_path != NULL && k->dst_path != NULL && strcmp(k->src_path, k->dst_path) == 0) {
		snprintf(how, size, "same host %s, same path", dst->uuid);
		return 1;
	}
	return 0;
}

static void
check_same_file(struct dc_table *t, const struct domxml_host *src, const struct domxml_host *dst,
    const struct dc_disk *disks, uint32_t n)
{
	struct dc_row *r = row_begin(t, C_SAMEFILE);
	char others[DC_VALUE_MAX] = "", how[96];
	unsigned bad = 0;
	uint32_t i;

	for (i = 0; i < n; i++) {
		const struct dc_disk *k = &disks[i];

		append(r->src, sizeof(r->src), "%s%s=%s", i ? " " : "", k->target, k->src_path);
		append(r->dst, sizeof(r->dst), "%s%s=%s", i ? " " : "", k->target, k->dst_path);
		if (!same_file(src, dst, k, how, sizeof(how)))
			continue;
		if (bad++ == 0)
			row_fail(t, r, "disk %s: destination '%s' is the source file itself (%s)", k->target,
			    k->dst_path, how);
		else
			append(others, sizeof(others), "%s%s", bad > 2 ? ", " : "", k->target);
	}
	/* Never waived, whatever the caller set. */
	if (r->status == DC_WAIVED)
		r->status = DC_FAIL;
	row_also(r, others);
}

static void
check_arch(struct dc_table *t, const struct domxml *d, const struct domxml_host *dst)
{
	struct dc_row *r = row_begin(t, C_ARCH);

	snprintf(r->src, sizeof(r->src), "%s", d->arch[0] ? d->arch : "unknown");
	snprintf(r->dst, sizeof(r->dst), "%s", dst->arch[0] ? dst->arch : "unknown");
	if (d->arch[0] == '\0')
		row_fail(t, r, "domain '%s' gives no architecture (<os><type arch=>)", d->name);
	else if (strcmp(d->arch, dst->arch) != 0)
		row_fail(t, r, "domain '%s' is %s, destination host is %s", d->name, d->arch,
		    dst->arch[0] ? dst->arch : "unknown");
}

static void
check_model(struct dc_table *t, const struct domxml *d, const struct domxml_host *src,
    const struct domxml_host *dst)
{
	struct dc_row *r = row_begin(t, C_MODEL);
	const char *want = NULL, *from = "<cpu><model>";

	if (d->cpu_model[0] != '\0') {
		want = d->cpu_model;
	} else if (src != NULL && src->model[0] != '\0') {
		want = src->model;
		from = "the source host";
	}
	snprintf(r->src, sizeof(r->src), "%s%s%s%s", want ? want : "unknown",
	    d->cpu_mode[0] ? " (" : "", d->cpu_mode, d->cpu_mode[0] ? ")" : "");
	snprintf(r->dst, sizeof(r->dst), "%s", dst->model[0] ? dst->model : "unknown");
	if (want == NULL)
		row_fail(t, r, "domain '%s': CPU model unknown (no <cpu><model>, mode '%s', source host model not known)",
		    d->name, d->cpu_mode[0] ? d->cpu_mode : "none");
	else if (dst->model[0] == '\0')
		row_fail(t, r, "destination host CPU model unknown; domain '%s' needs %s", d->name, want);
	else if (strcmp(want, dst->model) != 0)
		row_fail(t, r, "domain '%s' CPU model %s (from %s), destination host %s: homogeneous migration only",
		    d->name, want, from, dst->model);
}

static void
check_cpus(struct dc_table *t, const struct domxml *d, const struct domxml_host *dst)
{
	struct dc_row *r = row_begin(t, C_CPUS);

	snprintf(r->src, sizeof(r->src), "%u vCPUs", d->vcpus);
	snprintf(r->dst, sizeof(r->dst), "%u CPUs", dst->cpus);
	if (dst->cpus < d->vcpus)
		row_fail(t, r, "domain '%s' has %u vCPUs, destination host %u CPUs", d->name, d->vcpus,
		    dst->cpus);
}

static void
check_memory(struct dc_table *t, const struct domxml *d, const struct domxml_host *dst)
{
	struct dc_row *r = row_begin(t, C_MEMORY);
	char need[32], have[32];

	fmt_size(d->memory_bytes, need, sizeof(need));
	fmt_size(dst->free_mem, have, sizeof(have));
	snprintf(r->src, sizeof(r->src), "%s", need);
	if (!dst->free_mem_known) {
		snprintf(r->dst, sizeof(r->dst), "unknown");
		row_fail(t, r, "domain '%s' needs %llu bytes; free memory on the destination unknown (%s)",
		    d->name, (unsigned long long)d->memory_bytes,
		    dst->free_mem_how[0] ? dst->free_mem_how : "not measured");
		return;
	}
	snprintf(r->dst, sizeof(r->dst), "%s free", have);
	if (dst->free_mem < d->memory_bytes)
		row_fail(t, r, "domain '%s' needs %llu bytes of memory, destination has %llu free (%s)",
		    d->name, (unsigned long long)d->memory_bytes, (unsigned long long)dst->free_mem,
		    dst->free_mem_how[0] ? dst->free_mem_how : "free memory");
}

/* Disks whose destinations share a file system share its free space. */
static void
check_space(struct dc_table *t, const struct dc_disk *disks, uint32_t n)
{
	struct dc_row *r = row_begin(t, C_SPACE);
	char need_s[32], free_s[32], names[DC_VALUE_MAX];
	unsigned groups = 0;
	uint32_t i, j;

	for (i = 0; i < n; i++) {
		uint64_t need = 0;
		int first = 1;

		for (j = 0; j < i && disks[j].dir_dev != disks[i].dir_dev; j++)
			;
		if (j < i)
			continue;   /* this file system was counted with disk j */
		names[0] = '\0';
		for (j = i; j < n; j++) {
			if (disks[j].dir_dev != disks[i].dir_dev)
				continue;
			need = need > UINT64_MAX - disks[j].size ? UINT64_MAX : need + disks[j].size;
			append(names, sizeof(names), "%s%s", first ? "" : ", ", disks[j].target);
			first = 0;
		}
		fmt_size(need, need_s, sizeof(need_s));
		fmt_size(disks[i].dir_free, free_s, sizeof(free_s));
		append(r->src, sizeof(r->src), "%s%s needs %s", groups ? "; " : "", names, need_s);
		append(r->dst, sizeof(r->dst), "%s%s free", groups++ ? "; " : "", free_s);
		if (need > disks[i].dir_free && r->status == DC_PASS)
			row_fail(t, r, "destination directory of %s ('%s'): needs %llu bytes, %llu free",
			    names, disks[i].dst_path, (unsigned long long)need,
			    (unsigned long long)disks[i].dir_free);
	}
	if (n == 0)
		snprintf(r->src, sizeof(r->src), "no disks");
}

void
domcheck_destination(struct dc_table *t, const struct domxml *d, const struct domxml_host *src,
    const struct domxml_host *dst, const struct dc_disk *disks, uint32_t n)
{
	check_same_file(t, src, dst, disks, n);
	check_arch(t, d, dst);
	check_model(t, d, src, dst);
	check_cpus(t, d, dst);
	check_memory(t, d, dst);
	check_space(t, disks, n);
}

void
domcheck_name_free(struct dc_table *t, const struct domxml *d, int exists, const char *state)
{
	struct dc_row *r = row_begin(t, C_NAME);

	snprintf(r->src, sizeof(r->src), "%s", d->name);
	snprintf(r->dst, sizeof(r->dst), "%s", exists ? state : "no such domain");
	if (exists)
		row_fail(t, r, "a domain named '%s' is already defined on the destination (%s): "
		    "undefine it there, or rename one of them", d->name, state);
}

/* ---- after the copy ------------------------------------------------------- */

static const struct domxml_disk *
migrated_disk(const struct domxml *d, const char *target)
{
	uint32_t i;

	for (i = 0; i < d->ndisks; i++)
		if (domxml_disk_migrates(&d->disk[i]) && strcmp(d->disk[i].target, target) == 0)
			return &d->disk[i];
	return NULL;
}

void
domcheck_after_copy(struct dc_table *t, const struct domxml *d, const struct dc_disk *disks,
    uint32_t n)
{
	struct dc_row *r = row_begin(t, C_IMAGES);
	uint32_t i, want = 0;

	for (i = 0; i < d->ndisks; i++)
		want += domxml_disk_migrates(&d->disk[i]) ? 1 : 0;
	snprintf(r->src, sizeof(r->src), "%u image(s):", want);
	snprintf(r->dst, sizeof(r->dst), "%u image(s):", n);
	for (i = 0; i < n; i++) {
		append(r->src, sizeof(r->src), " %s=%llu", disks[i].target,
		    (unsigned long long)disks[i].size);
		if (disks[i].dst_exists)
			append(r->dst, sizeof(r->dst), " %s=%llu", disks[i].target,
			    (unsigned long long)disks[i].dst_size);
		else
			append(r->dst, sizeof(r->dst), " %s=missing", disks[i].target);
	}
	if (n != want) {
		row_fail(t, r, "domain '%s' has %u disks to migrate, destination has %u images", d->name,
		    want, n);
		return;
	}
	for (i = 0; i < n; i++) {
		const struct dc_disk *k = &disks[i];

		if (migrated_disk(d, k->target) == NULL) {
			row_fail(t, r, "image for disk %s: domain '%s' has no such disk to migrate", k->target,
			    d->name);
			return;
		}
		if (!k->dst_exists || k->dst_size != k->size) {
			row_fail(t, r, "disk %s: destination '%s' %s, source image is %llu bytes", k->target,
			    k->dst_path, k->dst_exists ? "has another size" : "is missing",
			    (unsigned long long)k->size);
			if (k->dst_exists)
				append(r->why, sizeof(r->why), " (destination %llu bytes)",
				    (unsigned long long)k->dst_size);
			return;
		}
	}
}

/* ---- results and output ------------------------------------------------- */

int
dc_table_result(const struct dc_table *t, struct ferr *e)
{
	const struct dc_row *first = NULL;
	unsigned more = 0;
	uint32_t i;

	for (i = 0; i < t->n; i++) {
		if (t->row[i].status != DC_FAIL)
			continue;
		if (first == NULL)
			first = &t->row[i];
		else
			more++;
	}
	if (first == NULL)
		return 0;
	ferr_set(e, first->code, "check %s: %s", first->check, first->why);
	if (more > 0 && e != NULL)
		append(e->msg, sizeof(e->msg), " (and %u more check%s failed)", more, more > 1 ? "s" : "");
	return first->code;
}

const struct dc_row *
dc_table_find(const struct dc_table *t, const char *check)
{
	uint32_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->row[i].check, check) == 0)
			return &t->row[i];
	return NULL;
}

const char *
dc_status_name(enum dc_status s)
{
	switch (s) {
	case DC_PASS: return "pass";
	case DC_FAIL: return "fail";
	case DC_WAIVED: return "waived";
	default: return "invalid";
	}
}

static int
col_width(const struct dc_table *t, size_t off, const char *title, int cap)
{
	size_t w = strlen(title);
	uint32_t i;

	for (i = 0; i < t->n; i++) {
		size_t l = strlen((const char *)&t->row[i] + off);

		w = l > w ? l : w;
	}
	return (int)w > cap ? cap : (int)w;
}

static const char *
dash(const char *s)
{
	return s[0] != '\0' ? s : "-";
}

void
dc_table_print(const struct dc_table *t, FILE *f)
{
	int ws = col_width(t, offsetof(struct dc_row, src), "SOURCE", 40);
	int wd = col_width(t, offsetof(struct dc_row, dst), "DESTINATION", 40);
	uint32_t i;

	fprintf(f, "%-12s %-*s %-*s %-6s %s\n", "CHECK", ws, "SOURCE", wd, "DESTINATION", "RESULT",
	    "WHY");
	for (i = 0; i < t->n; i++) {
		const struct dc_row *r = &t->row[i];

		fprintf(f, "%-12s %-*s %-*s %-6s", r->check, ws, dash(r->src), wd, dash(r->dst),
		    dc_status_name(r->status));
		if (r->status != DC_PASS)
			fprintf(f, " [%s] %s", ferr_name(r->code), r->why);
		fputc('\n', f);
	}
}

struct json_object *
dc_table_json(const struct dc_table *t)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int ok = 1;
	uint32_t i;

	if (o == NULL || arr == NULL) {
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	for (i = 0; i < t->n; i++) {
		const struct dc_row *r = &t->row[i];
		struct json_object *row = json_object_new_object();

		if (row == NULL)
			break;
		ok = ok && r->status != DC_FAIL;
		json_object_object_add(row, "check", json_object_new_string(r->check));
		json_object_object_add(row, "source", json_object_new_string(r->src));
		json_object_object_add(row, "destination", json_object_new_string(r->dst));
		json_object_object_add(row, "result", json_object_new_string(dc_status_name(r->status)));
		json_object_object_add(row, "code", json_object_new_string(ferr_name(r->code)));
		json_object_object_add(row, "why", json_object_new_string(r->why));
		json_object_array_add(arr, row);
	}
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "checks", arr);
	return o;
}

int
dc_table_print_json(const struct dc_table *t, FILE *f, struct ferr *e)
{
	struct json_object *o = dc_table_json(t);

	if (o == NULL)
		return ferr_set(e, FERR_NOMEM, "check table as JSON");
	fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}

/* ---- facts from the file system ----------------------------------------- */

int
dc_disk_stat_source(struct dc_disk *k, struct ferr *e)
{
	struct stat sb;

	if (stat(k->src_path, &sb) != 0)
		return ferr_set(e, FERR_IO, "disk %s: source '%s': %s", k->target, k->src_path,
		    strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return ferr_set(e, FERR_IO, "disk %s: source '%s' is not a regular file", k->target,
		    k->src_path);
	k->size = (uint64_t)sb.st_size;
	k->src_dev = (uint64_t)sb.st_dev;
	k->src_ino = (uint64_t)sb.st_ino;
	return 0;
}

int
dc_disk_stat_dest(struct dc_disk *k, struct ferr *e)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(k->dst_path, '/');
	struct statvfs vfs;
	struct stat sb;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == k->dst_path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - k->dst_path), k->dst_path);
	if (stat(dir, &sb) != 0)
		return ferr_set(e, FERR_IO, "disk %s: destination directory '%s': %s", k->target, dir,
		    strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return ferr_set(e, FERR_IO, "disk %s: destination directory '%s': not a directory",
		    k->target, dir);
	k->dir_dev = (uint64_t)sb.st_dev;
	if (statvfs(dir, &vfs) != 0)
		return ferr_set(e, FERR_IO, "disk %s: destination directory '%s': statvfs: %s", k->target,
		    dir, strerror(errno));
	k->dir_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	k->dst_exists = stat(k->dst_path, &sb) == 0;
	if (k->dst_exists) {
		k->dst_dev = (uint64_t)sb.st_dev;
		k->dst_ino = (uint64_t)sb.st_ino;
		k->dst_size = (uint64_t)sb.st_size;
	}
	return 0;
}

void
dc_table_to_checks(const struct dc_table *t, struct msg_checks *out)
{
	uint32_t i;

	memset(out, 0, sizeof(*out));
	out->n = t->n < FERRY_CHECKS_MAX ? t->n : FERRY_CHECKS_MAX;
	for (i = 0; i < out->n; i++) {
		const struct dc_row *r = &t->row[i];
		struct check_row *c = &out->row[i];

		c->status = r->status == DC_PASS ? CS_PASS : r->status == DC_WAIVED ? CS_WAIVED : CS_FAIL;
		c->code = (uint32_t)-r->code;
		snprintf(c->name, sizeof(c->name), "%s", r->check);
		snprintf(c->src, sizeof(c->src), "%s", r->src);
		snprintf(c->dst, sizeof(c->dst), "%s", r->dst);
		snprintf(c->why, sizeof(c->why), "%s", r->why);
	}
}

unsigned
dc_table_add_checks(struct dc_table *t, const struct msg_checks *in)
{
	unsigned skipped = 0;
	uint32_t i;

	for (i = 0; i < in->n; i++) {
		const struct check_row *c = &in->row[i];
		int k = check_index(c->name);
		struct dc_row *r;

		if (k < 0) {
			skipped++;
			continue;
		}
		r = row_begin(t, (enum dc_check)k);
		r->status = c->status == CS_PASS ? DC_PASS : c->status == CS_WAIVED ? DC_WAIVED : DC_FAIL;
		snprintf(r->src, sizeof(r->src), "%s", c->src);
		snprintf(r->dst, sizeof(r->dst), "%s", c->dst);
		snprintf(r->why, sizeof(r->why), "%s", c->why);
	}
	return skipped;
}
