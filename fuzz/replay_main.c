/* A plain driver for the fuzz harnesses: runs LLVMFuzzerTestOneInput once
 * over every file named on the command line and every regular file in
 * every directory named (not recursive, dot files skipped, in name order),
 * so corpora replay without libFuzzer -- with gcc, under ASan -- and a
 * crash once found stays fixed.
 *
 * Usage: fuzz_X [-v] PATH...
 *   -v  print each file's name before running it
 * Exit status: 0 when every input ran (a crash aborts with the
 * sanitizer's report and the name of the input), 2 on usage or I/O
 * errors.  Prints "NAME: N inputs replayed" at the end. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Present when linked with a sanitizer runtime. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

/* The input being run, for the crash report.  This is the driver's main
 * program state, not library state. */
static char current[4096];

static void
say_current(void)
{
	static const char pre[] = "replay: crashed on input ";
	size_t n = strnlen(current, sizeof(current));

	/* write(2) only: this runs from a signal handler or a dying runtime. */
	if (write(2, pre, sizeof(pre) - 1) < 0 || write(2, current, n) < 0 || write(2, "\n", 1) < 0)
		return;
}

static void
on_signal(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
run_file(const char *path, int verbose)
{
	FILE *fp;
	uint8_t *buf, *exact;
	size_t len = 0, cap = 4096, got;

	snprintf(current, sizeof(current), "%s", path);
	if (verbose)
		fprintf(stderr, "replay: %s\n", path);
	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(cap)) == NULL) {
		fclose(fp);
		return -1;
	}
	while ((got = fread(buf + len, 1, cap - len, fp)) > 0) {
		len += got;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap * 2);

			if (nb == NULL) {
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (ferror(fp)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		free(buf);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	/* An exact-size copy, as libFuzzer gives: a read past the end is
	 * caught by ASan. */
	exact = malloc(len ? len : 1);
	if (exact == NULL) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	(void)LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int
skip_name(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int
run_path(const char *path, int verbose, unsigned long *count)
{
	struct stat sb;
	struct dirent **names;
	char sub[4096];
	int n, i, rc = 0;

	if (stat(path, &sb) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		if (run_file(path, verbose) != 0)
			return -1;
		(*count)++;
		return 0;
	}
	if ((n = scandir(path, &names, skip_name, alphasort)) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
		if (rc == 0 && stat(sub, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (run_file(sub, verbose) != 0)
				rc = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	unsigned long count = 0;
	int i, verbose = 0, paths = 0;

	/* Name the input that crashed: sanitizers report through their death
	 * callback and leave SIGABRT (a failed harness invariant) alone;
	 * without them, catch the fatal signals. */
	signal(SIGABRT, on_signal);
	if (__sanitizer_set_death_callback != NULL) {
		__sanitizer_set_death_callback(say_current);
	} else {
		signal(SIGSEGV, on_signal);
		signal(SIGBUS, on_signal);
		signal(SIGFPE, on_signal);
		signal(SIGILL, on_signal);
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0) {
			verbose = 1;
			continue;
		}
		paths++;
		if (run_path(argv[i], verbose, &count) != 0)
			return 2;
	}
	if (paths == 0) {
		fprintf(stderr, "usage: %s [-v] CORPUS_DIR_OR_FILE...\n", prog);
		return 2;
	}
	printf("%s: %lu inputs replayed\n", prog, count);
	return 0;
}
