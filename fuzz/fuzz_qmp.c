/* Fuzz target: the QMP line splitter and message parser (src/common/qmp.c:
 * qmp_line_split, qmp_msg_parse).
 *
 * Input: u8 sel, then bytes as a QMP server would send them.  sel picks
 * the line limit (bit 0: QMP_LINE_MAX, else 64 + 8 * (sel >> 1) bytes, so
 * short limits are hit).  The bytes are cut into lines as the client does
 * and every line parsed.  Checked: a split line lies inside the input,
 * ends at the first '\n', is at most the limit; "need more" only without
 * a '\n' and at most limit + 1 bytes; every error carries its code and a
 * message and leaves no object behind; every message parsed has its kind's
 * members (a greeting object, an error class and desc, an event name of
 * printable bytes), and printing it as JSON and parsing that again gives
 * the same kind, name and id. */
#include "fuzz_common.h"
#include "qmp.h"

static void
check_name(const char *s)
{
	size_t i, n = strnlen(s, QMP_NAME_MAX);

	FZ_CHECK(n >= 1 && n < QMP_NAME_MAX);
	for (i = 0; i < n; i++)
		FZ_CHECK((unsigned char)s[i] >= 0x21 && (unsigned char)s[i] <= 0x7e);
}

static void
check_msg(const struct qmp_msg *m)
{
	const char *s;
	struct qmp_msg m2;
	struct ferr e = { 0 };
	size_t n;

	FZ_CHECK(m->obj != NULL && json_object_is_type(m->obj, json_type_object));
	switch (m->kind) {
	case QMP_GREETING:
		FZ_CHECK(m->value != NULL && json_object_is_type(m->value, json_type_object));
		break;
	case QMP_RETURN:
		break;
	case QMP_ERROR:
		check_name(m->name);
		FZ_CHECK(m->desc != NULL);
		break;
	case QMP_EVENT:
		check_name(m->name);
		FZ_CHECK(m->value == NULL || json_object_is_type(m->value, json_type_object));
		break;
	default:
		FZ_CHECK(!"qmp_msg_parse returned an unknown kind");
	}
	FZ_CHECK(m->id == NULL || m->has_id);
	/* Printed again, it parses to the same thing (when it fits). */
	s = json_object_to_json_string_ext(m->obj, JSON_C_TO_STRING_PLAIN);
	FZ_CHECK(s != NULL);
	n = strlen(s);
	if (n > QMP_LINE_MAX)
		return;
	FZ_CHECK(qmp_msg_parse((const uint8_t *)s, n, &m2, &e) == 0);
	FZ_CHECK(m2.kind == m->kind && m2.has_id == m->has_id);
	FZ_CHECK(strcmp(m2.name, m->name) == 0);
	FZ_CHECK((m2.id == NULL) == (m->id == NULL));
	FZ_CHECK(m->id == NULL || strcmp(m2.id, m->id) == 0);
	qmp_msg_fini(&m2);
}

static void
parse_line(const uint8_t *p, size_t n)
{
	uint8_t *line = fz_dup(p, n);
	struct qmp_msg m;
	struct ferr e = { 0 };
	int rc;

	memset(&m, 0xa5, sizeof(m));
	rc = qmp_msg_parse(line, n, &m, &e);
	if (rc == 0) {
		check_msg(&m);
		qmp_msg_fini(&m);
		FZ_CHECK(m.obj == NULL);
	} else {
		FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE && e.code == rc && e.msg[0] != '\0');
		FZ_CHECK(m.obj == NULL);
	}
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	size_t max, off = 0, line_len, used;
	struct ferr e = { 0 };
	int rc;

	if (size < 1)
		return 0;
	max = (data[0] & 1) ? QMP_LINE_MAX : 64 + 8 * (size_t)(data[0] >> 1);
	buf = fz_dup(data + 1, size - 1);
	size--;
	while (off < size) {
		const uint8_t *p = buf + off;
		size_t left = size - off;
		const uint8_t *nl;

		rc = qmp_line_split(p, left, max, &line_len, &used, &e);
		nl = memchr(p, '\n', left);
		if (rc == FERR_NEED_MORE) {
			FZ_CHECK(nl == NULL && left <= max + 1);
			break;
		}
		if (rc != 0) {
			FZ_CHECK(rc == FERR_PROTO_LENGTH && e.msg[0] != '\0');
			FZ_CHECK(nl == NULL || (size_t)(nl - p) > max);
			break;
		}
		FZ_CHECK(nl != NULL && used == (size_t)(nl - p) + 1 && used <= left);
		FZ_CHECK(line_len <= max && (line_len == used - 1 || line_len == used - 2));
		FZ_CHECK(line_len == used - 1 || p[line_len] == '\r');
		if (line_len > 0)
			parse_line(p, line_len);
		off += used;
	}
	free(buf);
	return 0;
}
