/* Running a plan: child ferry-send processes, at most N at once (planrun.h). */
#include "planrun.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "result.h"

#define RUN_LINE_MAX 8192u      /* longer output lines are split */
#define RUN_DRAIN_MS 2000       /* after exit, wait this long for the pipes' EOF */

/* ---- command line ---------------------------------------------------------- */

static const struct option *
find_opt(const struct option *lo, const char *name, size_t n)
{
	for (; lo->name != NULL; lo++)
		if (strlen(lo->name) == n && strncmp(lo->name, name, n) == 0)
			return lo;
	return NULL;
}

/* Handled by config_merge, outside the daemon's table: passed on. */
static const struct option config_flags[] = {
	{ "config", required_argument, NULL, 0 },
	{ "check-config", no_argument, NULL, 0 },
	{ NULL, 0, NULL, 0 },
};

/* --plan, --plan-log-dir, --concurrency with value v.  1 if it was one. */
static int
plan_flag(struct plan_cli *c, const char *name, size_t n, const char *v, struct ferr *e)
{
	char *end;
	unsigned long x;

	if (n == 4 && strncmp(name, "plan", 4) == 0) {
		c->plan = v;
	} else if (n == 12 && strncmp(name, "plan-log-dir", 12) == 0) {
		c->log_dir = v;
	} else if (n == 11 && strncmp(name, "concurrency", 11) == 0) {
		errno = 0;
		x = v != NULL ? strtoul(v, &end, 10) : 0;
		if (v == NULL || *v == '\0' || *end != '\0' || errno != 0 || x == 0 ||
		    x > PLAN_CONCURRENCY_MAX)
			ferr_set(e, FERR_USAGE, "--concurrency: a number from 1 to %u",
			    PLAN_CONCURRENCY_MAX);
		else
			c->concurrency = (unsigned)x;
	} else {
		return 0;
	}
	if (v == NULL && e->code == 0)
		ferr_set(e, FERR_USAGE, "--%.*s needs a value", (int)n, name);
	return 1;
}

/* One long flag at argv[*i]; advances *i past its value. */
static void
split_long(int argc, char **argv, int *i, const struct option *lo, struct plan_cli *c,
    struct ferr *e)
{
	const char *a = argv[*i] + 2, *eq = strchr(a, '=');
	size_t n = eq != NULL ? (size_t)(eq - a) : strlen(a);
	const struct option *o;
	int first = *i;
	const char *v = eq != NULL ? eq + 1 : NULL;

	if (n == 4 || n == 11 || n == 12) {
		if (v == NULL && *i + 1 < argc && find_opt(lo, a, n) == NULL)
			v = argv[++*i];
		if (plan_flag(c, a, n, v, e))
			return;
		*i = first;
		v = eq != NULL ? eq + 1 : NULL;
	}
	o = find_opt(lo, a, n);
	if (o == NULL)
		o = find_opt(config_flags, a, n);
	if (o == NULL) {
		if (e->code == 0)
			ferr_set(e, FERR_USAGE, "unknown flag '%s' (spell long flags out with --plan)",
			    argv[*i]);
		return;
	}
	if (strcmp(o->name, "json") == 0) {
		c->json = 1;
		return;
	}
	if (strcmp(o->name, "help") == 0)
		c->help = 1;
	if (strcmp(o->name, "quiet") == 0) {
		c->quiet = 1;
		c->log_level = "error";
	}
	c->common[c->ncommon++] = argv[*i];
	if (o->has_arg == required_argument && eq == NULL) {
		if (*i + 1 >= argc) {
			if (e->code == 0)
				ferr_set(e, FERR_USAGE, "%s needs a value", argv[*i]);
			return;
		}
		c->common[c->ncommon++] = argv[++*i];
		v = argv[*i];
	}
	if (strcmp(o->name, "log-level") == 0)
		c->log_level = v;
}

int
plan_cli_split(int argc, char **argv, const struct option *lo, struct plan_cli *c, struct ferr *e)
{
	memset(c, 0, sizeof(*c));
	c->concurrency = PLAN_CONCURRENCY_DEFAULT;
	c->common = calloc((size_t)argc + 1, sizeof(char *));
	if (c->common == NULL)
		return ferr_set(e, FERR_NOMEM, "out of memory");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
			split_long(argc, argv, &i, lo, c, e);
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "-h") == 0) {
			c->quiet |= a[1] == 'q';
			if (a[1] == 'q')
				c->log_level = "error";
			c->help |= a[1] == 'h';
			c->common[c->ncommon++] = argv[i];
		} else if (e->code == 0) {
			ferr_set(e, FERR_USAGE, "unexpected argument '%s'", a);
		}
	}
	return e->code;
}

void
plan_cli_fini(struct plan_cli *c)
{
	free(c->common);
	c->common = NULL;
	c->ncommon = 0;
}

/* ---- one running entry ------------------------------------------------------ */

struct stream {
	int fd;                  /* -1 at EOF */
	char buf[RUN_LINE_MAX + 1];
	size_t len;
};

struct entry_run {
	const struct plan_entry *pe;
	char **argv;             /* exe, common flags, the entry's flags, --json */
	int argc;
	pid_t pid;               /* 0: not started, -1: reaped */
	int status;              /* exit status for the report */
	struct stream out, err;
	FILE *logf, *jsonf;
	struct json_object *done; /* its last "done" event */
	int64_t start_ms, end_ms;
};

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t nsignals;

static void
on_signal(int sig)
{
	got_signal = sig;
	nsignals++;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
build_argv(struct entry_run *r, const struct plan_cli *c, const char *exe, struct ferr *e)
{
	int n = 0;

	r->argv = calloc((size_t)c->ncommon + r->pe->nargs + 3, sizeof(char *));
	if (r->argv == NULL)
		return ferr_set(e, FERR_NOMEM, "out of memory");
	r->argv[n++] = (char *)exe;
	for (int i = 0; i < c->ncommon; i++)
		r->argv[n++] = c->common[i];
	for (size_t i = 0; i < r->pe->nargs; i++)
		r->argv[n++] = r->pe->argv[i];
	r->argv[n++] = (char *)"--json";
	r->argc = n;
	return 0;
}

static FILE *
open_log(const char *dir, const char *name, const char *ext, struct ferr *e)
{
	char path[4096];
	int fd;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		ferr_set(e, FERR_IO, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

/* In the child: never returns. */
static void
child_exec(struct entry_run *r, int out_w, int err_w)
{
	int devnull = open("/dev/null", O_RDONLY);
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Its own process group: a terminal's ^C reaches only the plan,
	 * which forwards it once. */
	setpgid(0, 0);
	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
	    dup2(err_w, STDERR_FILENO) < 0)
		_exit(RES_ERROR);
	execv(r->argv[0], r->argv);
	dprintf(STDERR_FILENO, "ferry-send: exec %s: %s\n", r->argv[0], strerror(errno));
	_exit(RES_ERROR);
}

static int
start_entry(struct entry_run *r, const struct plan_cli *c, struct events *ev, struct ferr *e)
{
	int po[2], pe[2];

	if (c->log_dir != NULL) {
		r->logf = open_log(c->log_dir, r->pe->name, "log", e);
		r->jsonf = r->logf != NULL ? open_log(c->log_dir, r->pe->name, "json", e) : NULL;
		if (r->jsonf == NULL)
			return e->code;
	}
	if (pipe2(po, O_CLOEXEC) != 0)
		return ferr_set(e, FERR_IO, "pipe: %s", strerror(errno));
	if (pipe2(pe, O_CLOEXEC) != 0) {
		close(po[0]);
		close(po[1]);
		return ferr_set(e, FERR_IO, "pipe: %s", strerror(errno));
	}
	fflush(NULL);
	r->start_ms = now_ms();
	r->pid = fork();
	if (r->pid == 0)
		child_exec(r, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	r->out.fd = po[0];
	r->err.fd = pe[0];
	if (r->pid < 0) {
		close(po[0]);
		close(pe[0]);
		r->out.fd = r->err.fd = -1;
		return ferr_set(e, FERR_IO, "fork: %s", strerror(errno));
	}
	ev_log(ev, "plan: %s started (pid %d, line %u)", r->pe->name, (int)r->pid, r->pe->line);
	return 0;
}

/* ---- output of the children ------------------------------------------------ */

static void
json_line(struct entry_run *r, const struct plan_cli *c, struct events *ev, const char *line)
{
	struct json_object *o, *name;

	if (r->jsonf != NULL)
		fprintf(r->jsonf, "%s\n", line);
	o = json_tokener_parse(line);
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return;
	}
	if (json_object_object_get_ex(o, "event", &name) &&
	    strcmp(json_object_get_string(name), "done") == 0) {
		json_object_put(r->done);
		r->done = json_object_get(o);
	}
	if (c->json) {
		json_object_object_add(o, "entry", json_object_new_string(r->pe->name));
		fprintf(ev->out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		fflush(ev->out);
	}
	json_object_put(o);
}

static void
err_line(struct entry_run *r, const char *line)
{
	if (r->logf != NULL)
		fprintf(r->logf, "%s\n", line);
	else
		fprintf(stderr, "[%s] %s\n", r->pe->name, line);
}

static void
one_line(struct entry_run *r, struct stream *s, const struct plan_cli *c, struct events *ev,
    const char *line)
{
	if (s == &r->out)
		json_line(r, c, ev, line);
	else
		err_line(r, line);
}

/* Complete lines out of s; with flush (EOF) or a full buffer, the rest too. */
static void
emit_lines(struct entry_run *r, struct stream *s, const struct plan_cli *c, struct events *ev,
    int flush)
{
	size_t start = 0;

	for (size_t i = 0; i < s->len; i++) {
		if (s->buf[i] != '\n')
			continue;
		s->buf[i] = '\0';
		one_line(r, s, c, ev, s->buf + start);
		start = i + 1;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
	if (s->len > 0 && (flush || s->len == RUN_LINE_MAX)) {
		s->buf[s->len] = '\0';
		one_line(r, s, c, ev, s->buf);
		s->len = 0;
	}
}

static void
read_stream(struct entry_run *r, struct stream *s, const struct plan_cli *c, struct events *ev)
{
	ssize_t n = read(s->fd, s->buf + s->len, RUN_LINE_MAX - s->len);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		emit_lines(r, s, c, ev, 1);
		return;
	}
	s->len += (size_t)n;
	emit_lines(r, s, c, ev, 0);
}

static void
close_stream(struct entry_run *r, struct stream *s, const struct plan_cli *c, struct events *ev)
{
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	emit_lines(r, s, c, ev, 1);
}

/* ---- reports ----------------------------------------------------------------- */

static const char *
done_str(const struct entry_run *r, const char *key)
{
	struct json_object *v;

	if (r->done != NULL && json_object_object_get_ex(r->done, key, &v))
		return json_object_get_string(v);
	return NULL;
}

static const char *
entry_result(const struct entry_run *r)
{
	const char *s = done_str(r, "result");

	if (r->pid == 0)
		return "not_started";
	if (r->status == 0)
		return "ok";
	if (s != NULL && strcmp(s, "ok") != 0)
		return s;
	return r->status <= RES_INDOUBT ? result_name((enum result)r->status) : "error";
}

static void
report_entry(const struct entry_run *r, const struct plan_cli *c, struct events *ev)
{
	const char *res = entry_result(r), *err = done_str(r, "error");
	int64_t dur = r->pid == 0 ? 0 : r->end_ms - r->start_ms;
	struct json_object *o;

	if (r->status == 0)
		ev_log(ev, "plan: %s ok (exit 0, %.1fs)", r->pe->name, (double)dur / 1000);
	else
		ev_error(ev, "plan: %s failed: %s (exit %d, %.1fs)%s%s", r->pe->name, res, r->status,
		    (double)dur / 1000, err != NULL ? ": " : "", err != NULL ? err : "");
	if (!c->json)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "entry", json_object_new_string(r->pe->name));
	json_object_object_add(o, "result", json_object_new_string(res));
	json_object_object_add(o, "exit", json_object_new_int(r->status));
	json_object_object_add(o, "duration_ms", json_object_new_int64(dur));
	if (err != NULL)
		json_object_object_add(o, "error", json_object_new_string(err));
	ev_json(ev, "plan_result", o);
}

static int
report_summary(struct entry_run *rs, size_t n, const struct plan_cli *c, struct events *ev)
{
	unsigned ok = 0, failed = 0, skipped = 0;
	int worst = 0;
	struct json_object *o, *a;

	for (size_t i = 0; i < n; i++) {
		if (rs[i].pid == 0) {
			skipped++;
			rs[i].status = RES_ABORTED;
		} else if (rs[i].status == 0) {
			ok++;
		} else {
			failed++;
		}
		if (rs[i].status > worst)
			worst = rs[i].status;
	}
	ev_final(ev, failed || skipped ? EV_ERROR : EV_INFO, NULL, "plan: %u ok, %u failed%s%.0u%s",
	    ok, failed, skipped ? ", " : "", skipped, skipped ? " not started" : "");
	if (!c->json)
		return worst;
	o = json_object_new_object();
	a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_new_object();

		json_object_object_add(x, "entry", json_object_new_string(rs[i].pe->name));
		json_object_object_add(x, "result", json_object_new_string(entry_result(&rs[i])));
		json_object_object_add(x, "exit", json_object_new_int(rs[i].status));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "ok", json_object_new_int((int)ok));
	json_object_object_add(o, "failed", json_object_new_int((int)failed));
	json_object_object_add(o, "not_started", json_object_new_int((int)skipped));
	json_object_object_add(o, "concurrency", json_object_new_int((int)c->concurrency));
	json_object_object_add(o, "exit", json_object_new_int(worst));
	json_object_object_add(o, "entries", a);
	ev_json(ev, "plan", o);
	return worst;
}

/* ---- the loop ---------------------------------------------------------------- */

struct runner {
	struct entry_run *rs;
	size_t n, next;
	unsigned running;        /* started, not yet finished */
	int stop;                /* a signal came: start nothing more */
	int forwarded;           /* signals forwarded so far */
	const struct plan_cli *c;
	struct events *ev;
};

static int
running(const struct entry_run *r)
{
	return r->pid > 0;
}

/* Exit status of a reaped child. */
static int
exit_status(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	return RES_ERROR;
}

static void
forward_signals(struct runner *u)
{
	if (nsignals == u->forwarded)
		return;
	u->forwarded = nsignals;
	if (!u->stop)
		ev_final(u->ev, EV_WARN, NULL, "plan: signal %d: forwarding it to the running migrations, "
		    "starting no more", (int)got_signal);
	u->stop = 1;
	for (size_t i = 0; i < u->n; i++)
		if (running(&u->rs[i]))
			kill(u->rs[i].pid, got_signal);
}

/* Reap what exited; an entry is finished when its process is reaped and
 * its pipes are closed (or RUN_DRAIN_MS passed since the exit). */
static void
reap(struct runner *u)
{
	for (size_t i = 0; i < u->n; i++) {
		struct entry_run *r = &u->rs[i];
		int ws;

		if (!running(r))
			continue;
		if (r->end_ms == 0 && waitpid(r->pid, &ws, WNOHANG) == r->pid) {
			r->status = exit_status(ws);
			r->end_ms = now_ms();
			if (!WIFEXITED(ws))
				ev_error(u->ev, "plan: %s: killed by signal %d", r->pe->name, WTERMSIG(ws));
		}
		if (r->end_ms == 0)
			continue;
		if ((r->out.fd >= 0 || r->err.fd >= 0) && now_ms() - r->end_ms < RUN_DRAIN_MS)
			continue;
		close_stream(r, &r->out, u->c, u->ev);
		close_stream(r, &r->err, u->c, u->ev);
		r->pid = -1;
		u->running--;
		report_entry(r, u->c, u->ev);
	}
}

static void
poll_output(struct runner *u)
{
	struct pollfd pf[2 * PLAN_CONCURRENCY_MAX];
	struct stream *st[2 * PLAN_CONCURRENCY_MAX];
	struct entry_run *who[2 * PLAN_CONCURRENCY_MAX];
	nfds_t k = 0;

	for (size_t i = 0; i < u->n; i++) {
		struct stream *ss[2] = { &u->rs[i].out, &u->rs[i].err };

		if (!running(&u->rs[i]))
			continue;
		for (int j = 0; j < 2; j++) {
			if (ss[j]->fd < 0 || k >= 2 * PLAN_CONCURRENCY_MAX)
				continue;
			pf[k].fd = ss[j]->fd;
			pf[k].events = POLLIN;
			st[k] = ss[j];
			who[k++] = &u->rs[i];
		}
	}
	if (poll(pf, k, 100) <= 0)
		return;
	for (nfds_t j = 0; j < k; j++)
		if (pf[j].revents != 0)
			read_stream(who[j], st[j], u->c, u->ev);
}

static int
run_loop(struct runner *u, struct ferr *e)
{
	while (u->next < u->n || u->running > 0) {
		forward_signals(u);
		while (!u->stop && u->running < u->c->concurrency && u->next < u->n) {
			struct entry_run *r = &u->rs[u->next++];

			if (start_entry(r, u->c, u->ev, e) != 0) {
				ev_error(u->ev, "plan: %s: %s", r->pe->name, e->msg);
				r->pid = 0;
				u->stop = 1;
				break;
			}
			u->running++;
		}
		if (u->stop && u->running == 0)
			break;
		poll_output(u);
		reap(u);
	}
	return 0;
}

static void
install_handlers(struct sigaction *old_int, struct sigaction *old_term)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, old_int);
	sigaction(SIGTERM, &sa, old_term);
}

static void
free_runs(struct entry_run *rs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rs[i].argv);
		json_object_put(rs[i].done);
		if (rs[i].logf != NULL)
			fclose(rs[i].logf);
		if (rs[i].jsonf != NULL)
			fclose(rs[i].jsonf);
	}
	free(rs);
}

/* Every entry's vector, checked before anything runs. */
static int
prepare(struct entry_run *rs, const struct plan *p, const struct plan_cli *c, const char *exe,
    plan_validate_fn validate, struct ferr *e)
{
	for (size_t i = 0; i < p->n; i++) {
		rs[i].pe = &p->e[i];
		rs[i].out.fd = rs[i].err.fd = -1;
		if (build_argv(&rs[i], c, exe, e) != 0)
			return e->code;
		if (validate(rs[i].argc, rs[i].argv, e) != 0)
			return ferr_wrap(e, "%s:%u: entry '%s'", c->plan, p->e[i].line, p->e[i].name);
	}
	if (c->log_dir != NULL && mkdir(c->log_dir, 0700) != 0 && errno != EEXIST)
		return ferr_set(e, FERR_USAGE, "--plan-log-dir %s: %s", c->log_dir, strerror(errno));
	return 0;
}

int
plan_run(const struct plan *p, const struct plan_cli *c, const char *exe,
    plan_validate_fn validate, struct events *ev, struct ferr *e)
{
	struct runner u = { .n = p->n, .c = c, .ev = ev };
	struct sigaction old_int, old_term;
	int worst;

	u.rs = calloc(p->n, sizeof(*u.rs));
	if (u.rs == NULL)
		return ferr_set(e, FERR_NOMEM, "out of memory"), RES_ERROR;
	if (prepare(u.rs, p, c, exe, validate, e) != 0) {
		ev_error(ev, "%s", e->msg);
		free_runs(u.rs, p->n);
		return e->code == FERR_USAGE ? RES_USAGE : RES_ERROR;
	}
	ev_log(ev, "plan: %zu migration(s) from %s, at most %u at once", p->n, c->plan,
	    c->concurrency);
	install_handlers(&old_int, &old_term);
	run_loop(&u, e);
	worst = report_summary(u.rs, u.n, c, ev);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	free_runs(u.rs, p->n);
	return worst;
}
