/* sdnotify.c: the READY=1 datagram of sd_notify(3)'s protocol, to a path
 * socket and to an abstract one; no socket means nothing to do; bad names
 * and absent sockets are errors, never crashes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

/* A datagram socket bound to `name` (a path, or "@x" abstract). */
static int
listener(const char *name)
{
	struct sockaddr_un sun;
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, name, n);
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'))), 0);
	return fd;
}

static void
expect_ready(int fd, const char *status)
{
	char buf[256], want[128];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	snprintf(want, sizeof(want), "READY=1\nSTATUS=%s\n", status);
	assert_string_equal(buf, want);
}

static void
test_path_socket(void **state)
{
	char path[64];
	struct ferr e = { 0 };
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/ferry-test-notify-%d", (int)getpid());
	unlink(path);
	fd = listener(path);
	assert_int_equal(sd_notify_ready(path, "127.0.0.1:7300", &e), 0);
	expect_ready(fd, "127.0.0.1:7300");
	close(fd);
	unlink(path);
	/* Nobody listens any more. */
	assert_int_equal(sd_notify_ready(path, "x", &e), FERR_IO);
	assert_non_null(strstr(e.msg, path));
}

static void
test_abstract_socket(void **state)
{
	char name[64];
	struct ferr e = { 0 };
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@ferry-test-notify-%d", (int)getpid());
	fd = listener(name);
	assert_int_equal(sd_notify_ready(name, "up", &e), 0);
	expect_ready(fd, "up");
	close(fd);
}

static void
test_not_under_systemd(void **state)
{
	struct ferr e = { 0 };

	(void)state;
	assert_int_equal(sd_notify_ready(NULL, "x", &e), 0);
	assert_int_equal(sd_notify_ready("", "x", &e), 0);
	assert_int_equal(e.code, 0);
}

static void
test_bad_names(void **state)
{
	char longname[200];
	struct ferr e = { 0 };

	(void)state;
	assert_int_equal(sd_notify_ready("relative/sock", "x", &e), FERR_USAGE);
	assert_int_equal(sd_notify_ready("@", "x", &e), FERR_USAGE);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sd_notify_ready(longname, "x", &e), FERR_USAGE);
	assert_non_null(strstr(e.msg, "NOTIFY_SOCKET"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_not_under_systemd),
		cmocka_unit_test(test_bad_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
