#include "ctl.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_LINE_MAX 4096
#define CTL_ARGS_MAX 16

struct ctl {
	struct evconnlistener *lst;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ctl_handler h;
	void *ctx;
};

struct json_object *
ctl_error(const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(buf));
	return o;
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
client_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct ctl *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line, *argv[CTL_ARGS_MAX + 1], *save = NULL, *w;
	struct json_object *reply;
	size_t n;
	int argc = 0;

	line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	for (w = strtok_r(line, " \t\r", &save); w != NULL && argc < CTL_ARGS_MAX;
	     w = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	reply = argc > 0 ? c->h(c->ctx, argc, argv) : ctl_error("empty request");
	if (reply == NULL)
		reply = json_object_new_object();
	if (!json_object_object_get_ex(reply, "ok", NULL))
		json_object_object_add(reply, "ok", json_object_new_boolean(1));
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\n",
	    json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
	json_object_put(reply);
	free(line);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, client_written, client_event, c);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent *bev;

	(void)sa;
	(void)salen;
	bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setwatermark(bev, EV_READ, 0, CTL_LINE_MAX + 1);
	bufferevent_setcb(bev, client_read, NULL, client_event, arg);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int
ctl_new(struct event_base *base, const char *path, ctl_handler h, void *ctx, struct ctl **out,
    struct ferr *e)
{
	struct sockaddr_un sun;
	struct stat sb;
	struct ctl *c;
	mode_t old;

	*out = NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return ferr_set(e, FERR_USAGE, "control socket '%s': path too long", path);
	strcpy(sun.sun_path, path);
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode))
			return ferr_set(e, FERR_USAGE, "control socket '%s': exists and is not a socket", path);
		(void)unlink(path);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return ferr_set(e, FERR_NOMEM, "control socket");
	c->h = h;
	c->ctx = ctx;
	strcpy(c->path, path);
	old = umask(0077);
	c->lst = evconnlistener_new_bind(base, on_accept, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 8, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (c->lst == NULL) {
		free(c);
		return ferr_set(e, FERR_IO, "control socket '%s': %s", path, strerror(errno));
	}
	*out = c;
	return 0;
}

void
ctl_free(struct ctl *c)
{
	if (c == NULL)
		return;
	evconnlistener_free(c->lst);
	(void)unlink(c->path);
	free(c);
}

int
ctl_request(const char *path, int argc, char **argv, int json, ctl_show_fn show, FILE *out)
{
	struct sockaddr_un sun;
	char buf[65536];
	size_t len = 0;
	struct json_object *r, *ok;
	int fd, i, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "control socket '%s': path too long\n", path);
		return 2;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "control socket '%s': %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	for (i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);

		if (len + l + 2 > sizeof(buf)) {
			close(fd);
			fprintf(stderr, "control request too long\n");
			return 2;
		}
		memcpy(buf + len, argv[i], l);
		len += l;
		buf[len++] = i + 1 < argc ? ' ' : '\n';
	}
	if (write(fd, buf, len) != (ssize_t)len) {
		fprintf(stderr, "control socket '%s': %s\n", path, strerror(errno));
		close(fd);
		return 2;
	}
	len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[len] = '\0';
	r = json_tokener_parse(buf);
	if (r == NULL) {
		fprintf(stderr, "control socket '%s': no valid reply\n", path);
		return 2;
	}
	rc = json_object_object_get_ex(r, "ok", &ok) && json_object_get_boolean(ok) ? 0 : 1;
	if (!json && rc == 0 && show != NULL && argc > 0 && strcmp(argv[0], "status") == 0)
		show(r, out);
	else
		fprintf(out, "%s\n", json_object_to_json_string_ext(r, json ? JSON_C_TO_STRING_PLAIN
									   : JSON_C_TO_STRING_PRETTY));
	json_object_put(r);
	return rc;
}

int
ctl_cli(const char *usage, int argc, char **argv, ctl_show_fn show)
{
	int json = 0, i, n = 0;
	char *args[CTL_ARGS_MAX];

	if (argc < 4) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	for (i = 3; i < argc && n < CTL_ARGS_MAX; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else
			args[n++] = argv[i];
	}
	return ctl_request(argv[2], n, args, json, show, stdout);
}
