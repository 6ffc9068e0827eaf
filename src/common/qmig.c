#include "qmig.h"

#include <stdio.h>
#include <string.h>

int
qmig_runstate(struct qmp *q, char *out, size_t n, struct ferr *e)
{
	json_object *ret = NULL, *st;
	int rc;

	if ((rc = qmp_execute(q, "query-status", NULL, QMIG_TIMEOUT_MS, &ret, e)) != 0)
		return rc;
	if (!json_object_object_get_ex(ret, "status", &st) || !json_object_is_type(st, json_type_string)) {
		json_object_put(ret);
		return ferr_set(e, FERR_PROTO, "query-status: no \"status\" string in the reply");
	}
	snprintf(out, n, "%s", json_object_get_string(st));
	json_object_put(ret);
	return 0;
}

static int64_t
get_int(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

static void
parse_info(json_object *ret, struct qmig_info *out)
{
	json_object *v, *ram = NULL;
	int64_t pages, psize;

	memset(out, 0, sizeof(*out));
	snprintf(out->status, sizeof(out->status), "none");
	if (json_object_object_get_ex(ret, "status", &v) && json_object_is_type(v, json_type_string))
		snprintf(out->status, sizeof(out->status), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(ret, "error-desc", &v) && json_object_is_type(v, json_type_string))
		snprintf(out->error, sizeof(out->error), "%s", json_object_get_string(v));
	(void)json_object_object_get_ex(ret, "ram", &ram);
	out->total_time_ms = get_int(ret, "total-time");
	out->downtime_ms = get_int(ret, "downtime");
	out->expected_downtime_ms = get_int(ret, "expected-downtime");
	out->transferred = get_int(ram, "transferred");
	out->remaining = get_int(ram, "remaining");
	pages = get_int(ram, "dirty-pages-rate");
	psize = get_int(ram, "page-size");
	out->dirty_rate = pages >= 0 && psize > 0 ? pages * psize : -1;
	if (ram != NULL && json_object_object_get_ex(ram, "mbps", &v))
		out->mbps = (int64_t)json_object_get_double(v);
}

int
qmig_query(struct qmp *q, struct qmig_info *out, struct ferr *e)
{
	json_object *ret = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = qmp_execute(q, "query-migrate", NULL, QMIG_TIMEOUT_MS, &ret, e)) != 0)
		return rc;
	parse_info(ret, out);
	json_object_put(ret);
	return 0;
}

int
qmig_query_start(struct qmp *q, struct ferr *e)
{
	return qmp_start(q, "query-migrate", NULL, e);
}

int
qmig_query_collect(struct qmp *q, struct qmig_info *out, struct ferr *e)
{
	json_object *ret = NULL;
	int rc;

	if ((rc = qmp_collect(q, &ret, e)) != 1)
		return rc;
	parse_info(ret, out);
	json_object_put(ret);
	return 1;
}

int
qmig_simple(struct qmp *q, const char *cmd, struct ferr *e)
{
	return qmp_execute(q, cmd, NULL, QMIG_TIMEOUT_MS, NULL, e);
}

int
qmig_uri(struct qmp *q, const char *cmd, const char *uri, struct ferr *e)
{
	json_object *args = json_object_new_object();
	int rc;

	if (args == NULL)
		return ferr_set(e, FERR_NOMEM, "%s", cmd);
	json_object_object_add(args, "uri", json_object_new_string(uri));
	rc = qmp_execute(q, cmd, args, QMIG_TIMEOUT_MS, NULL, e);
	json_object_put(args);
	return rc;
}

int
qmig_set_cap(struct qmp *q, const char *name, int on, struct ferr *e)
{
	json_object *args = json_object_new_object(), *list = json_object_new_array(),
		    *cap = json_object_new_object();
	int rc;

	if (args == NULL || list == NULL || cap == NULL) {
		json_object_put(args);
		json_object_put(list);
		json_object_put(cap);
		return ferr_set(e, FERR_NOMEM, "migrate-set-capabilities");
	}
	json_object_object_add(cap, "capability", json_object_new_string(name));
	json_object_object_add(cap, "state", json_object_new_boolean(on));
	json_object_array_add(list, cap);
	json_object_object_add(args, "capabilities", list);
	rc = qmp_execute(q, "migrate-set-capabilities", args, QMIG_TIMEOUT_MS, NULL, e);
	json_object_put(args);
	return rc;
}

int
qmig_caps_on(struct qmp *q, const char *const *names, char *out, size_t n, struct ferr *e)
{
	json_object *ret = NULL;
	size_t i, k, len = 0;
	int rc;

	if (n > 0)
		out[0] = '\0';
	if ((rc = qmp_execute(q, "query-migrate-capabilities", NULL, QMIG_TIMEOUT_MS, &ret, e)) != 0)
		return rc;
	if (!json_object_is_type(ret, json_type_array)) {
		json_object_put(ret);
		return ferr_set(e, FERR_PROTO, "query-migrate-capabilities: the reply is not a list");
	}
	for (i = 0; i < json_object_array_length(ret); i++) {
		json_object *c = json_object_array_get_idx(ret, i), *nm, *st;
		const char *s;

		if (!json_object_object_get_ex(c, "capability", &nm) ||
		    !json_object_object_get_ex(c, "state", &st) || !json_object_get_boolean(st))
			continue;
		s = json_object_get_string(nm);
		for (k = 0; names[k] != NULL; k++) {
			if (s == NULL || strcmp(s, names[k]) != 0)
				continue;
			len += (size_t)snprintf(out + (len < n ? len : n), len < n ? n - len : 0, "%s%s",
			    len ? ", " : "", s);
		}
	}
	json_object_put(ret);
	return 0;
}
