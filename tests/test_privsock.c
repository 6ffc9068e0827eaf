/* privsock.c: the private directory of a local QEMU migration socket is
 * fresh, mode 0700, holds the named path, and is removed with the socket. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "privsock.h"

static void
test_make_and_remove(void **state)
{
	struct privsock a, b;
	struct sockaddr_un sa;
	struct ferr e = { 0 };
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(privsock_make(&a, "out.sock", &e), 0);
	assert_int_equal(privsock_make(&b, "out.sock", &e), 0);
	assert_string_not_equal(a.dir, b.dir);          /* fresh each time */
	assert_int_equal(strncmp(a.dir, "/tmp/ferry-qemu-", 16), 0);
	assert_int_equal(stat(a.dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);      /* only this user */
	assert_int_equal(strncmp(a.path, a.dir, strlen(a.dir)), 0);
	assert_string_equal(a.path + strlen(a.dir), "/out.sock");
	/* A socket bound there is removed with the directory. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a.path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	privsock_remove(&a);
	assert_int_equal(a.dir[0], '\0');
	assert_int_equal(a.path[0], '\0');
	assert_int_not_equal(stat(sa.sun_path, &st), 0);
	privsock_remove(&a);                            /* idempotent */
	{
		char dir[sizeof(b.dir)];

		snprintf(dir, sizeof(dir), "%s", b.dir);
		privsock_remove(&b);                    /* nothing bound: still removed */
		assert_int_not_equal(stat(dir, &st), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_and_remove),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
