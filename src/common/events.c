#include "events.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <time.h>

void
ev_error(const struct events *ev, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", ev->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
ev_log(const struct events *ev, const char *fmt, ...)
{
	va_list ap;

	if (ev->quiet)
		return;
	fprintf(stderr, "%s: ", ev->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
ev_json(const struct events *ev, const char *name, struct json_object *fields)
{
	struct json_object *o;
	struct json_object_iterator it, end;
	struct timespec ts;

	if (!ev->json) {
		json_object_put(fields);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	o = json_object_new_object();
	json_object_object_add(o, "event", json_object_new_string(name));
	json_object_object_add(o, "ts_ms",
	    json_object_new_int64((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	if (fields != NULL) {
		it = json_object_iter_begin(fields);
		end = json_object_iter_end(fields);
		while (!json_object_iter_equal(&it, &end)) {
			json_object_object_add(o, json_object_iter_peek_name(&it),
			    json_object_get(json_object_iter_peek_value(&it)));
			json_object_iter_next(&it);
		}
		json_object_put(fields);
	}
	fprintf(ev->out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(ev->out);
	json_object_put(o);
}
