/* ferry-recv: command line, listener, control socket and signals.  The
 * work happens in rconn.c (connections) and rsessions.c (sessions). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <getopt.h>
#include <json-c/json.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "dumpfmt.h"
#include "framedump.h"
#include "metrics.h"
#include "recvd.h"
#include "result.h"
#include "sdnotify.h"
#include "sockopt.h"
#include "tls.h"
#include "units.h"
#include "virt.h"

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct recvd *d = arg;
	char host[INET6_ADDRSTRLEN + 8] = "?", port[8] = "", addr[80];

	(void)l;
	if (d->stopping) {
		evutil_closesocket(fd);
		return;
	}
	getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(addr, sizeof(addr), "%s:%s", host, port);
	rconn_accept(d, fd, addr);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct recvd *d = arg;

	(void)what;
	ev_log(&d->ev, "signal %d: aborting open sessions and shutting down", (int)sig);
	d->stopping = 1;
	event_base_loopexit(d->base, NULL);
}

/* Reap on-commit hooks. */
static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct recvd *d = arg;
	pid_t pid;
	int st;

	(void)sig;
	(void)what;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			ev_warn(&d->ev, "on-commit command (pid %d) failed with status %d", (int)pid,
			    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ferry-recv --listen ADDR:PORT --cert FILE --key FILE --ca FILE --dest-dir DIR [options]\n"
	    "       ferry-recv ctl SOCKET status|abort SESSION [--json]\n"
	    "\n"
	    "Receive live migrations from ferry-send over mutual TLS 1.3.\n"
	    "\n"
	    "  --listen ADDR:PORT        address on the migration network (port 0: any free port)\n"
	    "  --interface IFNAME        accept only on this network interface (SO_BINDTODEVICE)\n"
	    "  --cert FILE               this host's certificate (PEM)\n"
	    "  --key FILE                its private key (PEM)\n"
	    "  --ca FILE                 CA that signs sender certificates (PEM)\n"
	    "  --peer-name NAME          accept only senders whose certificate names NAME\n"
	    "  --pin sha256:HEX          also require this sender public key (twice for rotation)\n"
	    "  --dest-dir DIR            where images land (DIR/<source file name>)\n"
	    "  --expect-disks N          refuse a manifest whose disk count is not N\n"
	    "  --reuse                   start from an existing DIR/<name> of the same size:\n"
	    "                            the sender sends only the units that differ\n"
	    "  --on-commit CMD           run CMD (sh -c) after commit; env FERRY_PATH_0.. hold\n"
	    "                            the final paths, FERRY_NFILES their count\n"
	    "  --ctl SOCKET              control socket (ferry-recv ctl SOCKET status|abort)\n"
	    "  --metrics ADDR:PORT       serve Prometheus metrics over HTTP at /metrics\n"
	    "                            (port 0: any free one)\n"
	    "  --max-sessions N          concurrent migrations (default 2)\n"
	    "  --handshake-timeout D     time for TLS and HELLO on a new connection (default 10s)\n"
	    "  --keepalive D             heartbeat interval (default 2s)\n"
	    "  --keepalive-timeout D     nothing received for this long = link cut (default 10s)\n"
	    "  --outage-timeout D        how long a cut session waits for the sender (default 60s)\n"
	    "  --progress-timeout D      fail when no pages arrive for this long (default 150s)\n"
	    "  --history N               finished sessions listed by ctl status (default 20)\n"
	    "  --once                    exit after one migration, with its result as status\n"
	    "  --dump-frames DIR         write every frame of each connection, decrypted, to a\n"
	    "                            file in DIR (mode 0600: holds guest memory; ferry-inspect)\n"
	    "  --libvirt-uri URI         take libvirt domains (ferry-send --domain): check them\n"
	    "                            against this host at pre-flight, define and start them\n"
	    "                            after commit (qemu:///system, test:///PATH/node.xml)\n"
	    "  --qemu-qmp PATH           take QEMU streams (ferry-send --qemu-qmp) into the QEMU\n"
	    "                            whose QMP socket is PATH, started with -incoming defer;\n"
	    "                            committed when it reports the migration completed\n"
	    "  --config FILE             settings from FILE, one 'flag-name = value' per line;\n"
	    "                            flags given here override its lines\n"
	    "  --check-config            check the settings and certificates, print them, exit\n"
	    "  --json                    one JSON event per line on stdout\n"
	    "  --log-level LEVEL         error, warn, info (default) or debug: log lines on stderr\n"
	    "                            up to this level, key=value fields (logfmt)\n"
	    "  -q, --quiet               only error lines (--log-level error)\n"
	    "  -h, --help                this text\n"
	    "\n"
	    "Durations: 300ms, 5s, 2m, 1h.  Exit status (with --once): 0 ok, 1 error, 2 usage,\n"
	    "3 refused, 4 aborted, 5 timeout, 6 network, 7 verify.\n");
}

static int
parse_args(int argc, char **argv, struct recvd *d, struct config *cfg, struct ferr *e)
{
	enum { O_LISTEN = 256, O_IF, O_CERT, O_KEY, O_CA, O_PEER, O_PIN, O_DEST, O_EXPECT, O_ONCOMMIT,
		O_CTL, O_MAXS, O_HS, O_KA, O_KAT, O_OUT, O_PROG, O_HIST, O_ONCE, O_JSON,
		O_DUMP, O_VIRT, O_METRICS, O_QEMU, O_REUSE };
	enum { O_LOGLEVEL = 512 };
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "interface", required_argument, NULL, O_IF },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "ca", required_argument, NULL, O_CA },
		{ "peer-name", required_argument, NULL, O_PEER },
		{ "pin", required_argument, NULL, O_PIN },
		{ "dest-dir", required_argument, NULL, O_DEST },
		{ "expect-disks", required_argument, NULL, O_EXPECT },
		{ "reuse", no_argument, NULL, O_REUSE },
		{ "on-commit", required_argument, NULL, O_ONCOMMIT },
		{ "ctl", required_argument, NULL, O_CTL },
		{ "max-sessions", required_argument, NULL, O_MAXS },
		{ "handshake-timeout", required_argument, NULL, O_HS },
		{ "keepalive", required_argument, NULL, O_KA },
		{ "keepalive-timeout", required_argument, NULL, O_KAT },
		{ "outage-timeout", required_argument, NULL, O_OUT },
		{ "progress-timeout", required_argument, NULL, O_PROG },
		{ "history", required_argument, NULL, O_HIST },
		{ "once", no_argument, NULL, O_ONCE },
		{ "json", no_argument, NULL, O_JSON },
		{ "dump-frames", required_argument, NULL, O_DUMP },
		{ "libvirt-uri", required_argument, NULL, O_VIRT },
		{ "qemu-qmp", required_argument, NULL, O_QEMU },
		{ "metrics", required_argument, NULL, O_METRICS },
		{ "log-level", required_argument, NULL, O_LOGLEVEL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct recv_opts *o = &d->o;
	uint64_t v;
	int ch, npins = 0;

	o->max_sessions = 2;
	o->handshake_ms = 10000;
	o->keepalive_ms = 2000;
	o->dead_ms = 10000;
	o->outage_ms = 60000;
	o->progress_ms = 150000;
	o->history = 20;
	if (config_merge(cfg, "recv", lo, "qh", &argc, &argv, e) != 0)
		return e->code;
	while ((ch = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (ch) {
		case O_LISTEN:
			if (parse_hostport(optarg, o->listen_host, sizeof(o->listen_host), &o->listen_port,
			    e) != 0)
				return ferr_wrap(e, "--listen");
			break;
		case O_IF: o->interface = optarg; break;
		case O_CERT: o->cert = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_CA: o->ca = optarg; break;
		case O_PEER: o->peer_name = optarg; break;
		case O_PIN:
			if (npins >= 2)
				return ferr_set(e, FERR_USAGE, "--pin: at most two (current and next key)");
			o->pins[npins++] = optarg;
			break;
		case O_DEST: o->dest_dir = optarg; break;
		case O_ONCOMMIT: o->on_commit = optarg; break;
		case O_CTL: o->ctl_path = optarg; break;
		case O_EXPECT:
			if (parse_uint(optarg, 1, FERRY_MAX_DEVICES, &v, e) != 0)
				return ferr_wrap(e, "--expect-disks");
			o->expect_disks = (uint32_t)v;
			break;
		case O_MAXS:
			if (parse_uint(optarg, 1, 1024, &v, e) != 0)
				return ferr_wrap(e, "--max-sessions");
			o->max_sessions = (uint32_t)v;
			break;
		case O_HIST:
			if (parse_uint(optarg, 0, 10000, &v, e) != 0)
				return ferr_wrap(e, "--history");
			o->history = (uint32_t)v;
			break;
		case O_HS:
			if (parse_timeout_flag("--handshake-timeout", optarg, &o->handshake_ms, e) != 0)
				return e->code;
			break;
		case O_KA:
			if (parse_timeout_flag("--keepalive", optarg, &o->keepalive_ms, e) != 0)
				return e->code;
			break;
		case O_KAT:
			if (parse_timeout_flag("--keepalive-timeout", optarg, &o->dead_ms, e) != 0)
				return e->code;
			break;
		case O_OUT:
			if (parse_timeout_flag("--outage-timeout", optarg, &o->outage_ms, e) != 0)
				return e->code;
			break;
		case O_PROG:
			if (parse_timeout_flag("--progress-timeout", optarg, &o->progress_ms, e) != 0)
				return e->code;
			break;
		case O_ONCE: o->once = 1; break;
		case O_REUSE: o->reuse = 1; break;
		case O_JSON: o->json = 1; break;
		case O_DUMP: o->dump_dir = optarg; break;
		case O_VIRT: o->libvirt_uri = optarg; break;
		case O_QEMU: o->qemu_qmp = optarg; break;
		case O_METRICS: {
			char host[256];
			uint16_t port;

			if (parse_hostport(optarg, host, sizeof(host), &port, e) != 0)
				return ferr_wrap(e, "--metrics");
			o->metrics_addr = optarg;
			break;
		}
		case O_LOGLEVEL:
			if (ev_level_parse("--log-level", optarg, &d->ev.level, e) != 0)
				return e->code;
			break;
		case 'q': d->ev.level = EV_ERROR; break;
		case 'h': usage(stdout); return 1;
		default: return ferr_set(e, FERR_USAGE, "see --help");
		}
	}
	if (optind < argc)
		return ferr_set(e, FERR_USAGE, "unexpected argument '%s'", argv[optind]);
	if (o->listen_host[0] == '\0')
		return ferr_set(e, FERR_USAGE, "--listen ADDR:PORT is required (port 0 picks a free one)");
	if (o->cert == NULL || o->key == NULL || o->ca == NULL)
		return ferr_set(e, FERR_USAGE, "--cert, --key and --ca are required (no plaintext mode)");
	if (o->dest_dir == NULL)
		return ferr_set(e, FERR_USAGE, "--dest-dir is required");
	if (o->dead_ms <= o->keepalive_ms)
		return ferr_set(e, FERR_USAGE, "--keepalive-timeout must be longer than --keepalive");
	return 0;
}

static int
listen_on(struct recvd *d, struct ferr *e)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc, fd, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", d->o.listen_port);
	if ((rc = getaddrinfo(d->o.listen_host, port, &hints, &res)) != 0)
		return ferr_set(e, FERR_USAGE, "--listen %s: %s", d->o.listen_host, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return ferr_set(e, FERR_NET, "socket: %s", strerror(errno));
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (d->o.interface != NULL && (rc = sock_bind_device(fd, d->o.interface, e)) != 0) {
		close(fd);
		freeaddrinfo(res);
		return rc;
	}
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 16) != 0) {
		rc = errno;
		close(fd);
		freeaddrinfo(res);
		return ferr_set(e, FERR_NET, "listen on %s:%u: %s", d->o.listen_host, d->o.listen_port,
		    strerror(rc));
	}
	freeaddrinfo(res);
	d->lst = evconnlistener_new(d->base, on_accept, d, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    -1, fd);
	if (d->lst == NULL) {
		close(fd);
		return ferr_set(e, FERR_NET, "listener: %s", strerror(errno));
	}
	if (d->o.listen_port == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			d->o.listen_port = ntohs(ss.ss_family == AF_INET6
			    ? ((struct sockaddr_in6 *)&ss)->sin6_port
			    : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
}


int
main(int argc, char **argv)
{
	struct recvd d;
	static struct config cfg;   /* the options point into it until exit */
	struct tls_opts to;
	struct ferr e = { 0 };
	struct event *sigint = NULL, *sigterm = NULL, *sigchld = NULL;
	struct rconn *c, *next;
	int rc, status = RES_ERROR;

	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ctl_cli("ferry-recv ctl SOCKET status|abort SESSION [--json]", argc, argv,
		    ctl_show_recv_status);
	memset(&d, 0, sizeof(d));
	ev_init(&d.ev, "ferry-recv");
	signal(SIGPIPE, SIG_IGN);
	rc = parse_args(argc, argv, &d, &cfg, &e);
	if (rc == 1)
		return 0;
	if (rc != 0) {
		config_blame(&cfg, optind, &e);
		fprintf(stderr, "ferry-recv: %s\n", e.msg);
		return RES_USAGE;
	}
	d.ev.json = d.o.json;
	if (d.o.history > 0 && (d.hist = calloc(d.o.history, sizeof(*d.hist))) == NULL) {
		fprintf(stderr, "ferry-recv: out of memory\n");
		return RES_ERROR;
	}
	memset(&to, 0, sizeof(to));
	to.cert_file = d.o.cert;
	to.key_file = d.o.key;
	to.ca_file = d.o.ca;
	to.peer_name = d.o.peer_name;
	to.pins[0] = d.o.pins[0];
	to.pins[1] = d.o.pins[1];
	if (tls_ctx_new(1, &to, &d.tls, &e) != 0) {
		/* Certificates and keys are configuration: a usage error. */
		fprintf(stderr, "ferry-recv: %s\n", e.msg);
		free(d.hist);
		return e.code == FERR_NOMEM ? RES_ERROR : RES_USAGE;
	}
	if (d.o.dump_dir != NULL) {
		if (framedump_dir_new(d.o.dump_dir, DUMP_ROLE_RECEIVER, &d.ev, &d.dump, &e) != 0) {
			fprintf(stderr, "ferry-recv: %s\n", e.msg);
			status = e.code == FERR_USAGE ? RES_USAGE : RES_ERROR;
			goto out;
		}
		ev_log(&d.ev, "--dump-frames: writing decrypted frames (guest memory) to %s",
		    d.o.dump_dir);
	}
	if (d.o.libvirt_uri != NULL) {
		if (virt_open(d.o.libvirt_uri, &d.virt, &e) != 0) {
			fprintf(stderr, "ferry-recv: --libvirt-uri: %s\n", e.msg);
			status = RES_USAGE;
			goto out;
		}
		ev_log(&d.ev, "libvirt: %s (domains are checked here and defined after commit)",
		    d.o.libvirt_uri);
	}
	if (cfg.check) {
		config_print(&cfg, "ferry-recv", stdout);
		status = RES_OK;
		goto out;
	}
	d.base = event_base_new();
	if (d.base == NULL || listen_on(&d, &e) != 0 ||
	    (d.o.ctl_path != NULL && ctl_new(d.base, d.o.ctl_path, recvd_ctl, &d, &d.ctl, &e) != 0) ||
	    (d.o.metrics_addr != NULL && metrics_serve(d.base, d.o.metrics_addr, recvd_metrics, &d,
	    &d.metrics, &e) != 0)) {
		fprintf(stderr, "ferry-recv: %s\n", e.msg[0] ? e.msg : "event loop");
		status = e.code == FERR_USAGE ? RES_USAGE : RES_ERROR;
		goto out;
	}
	sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
	sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
	sigchld = evsignal_new(d.base, SIGCHLD, on_sigchld, &d);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigchld, NULL);
	ev_log(&d.ev, "listening on %s:%u, images land in %s", d.o.listen_host, d.o.listen_port,
	    d.o.dest_dir);
	if (d.metrics != NULL)
		ev_log(&d.ev, "metrics on http://%s/metrics", metrics_server_addr(d.metrics));
	{
		struct json_object *o = json_object_new_object();
		char addr[300];

		snprintf(addr, sizeof(addr), "%s:%u", d.o.listen_host, d.o.listen_port);
		json_object_object_add(o, "listen", json_object_new_string(addr));
		if (d.metrics != NULL)
			json_object_object_add(o, "metrics",
			    json_object_new_string(metrics_server_addr(d.metrics)));
		ev_json(&d.ev, "listening", o);
		if (sd_notify_ready(getenv("NOTIFY_SOCKET"), addr, &e) != 0)
			ev_warn(&d.ev, "systemd readiness: %s", e.msg);
	}
	d.last_result = RES_OK;
	event_base_dispatch(d.base);
	/* Shutdown: abort unfinished sessions (their staging files are
	 * removed), give the ERROR frames up to a second to reach the
	 * senders, then close whatever is left. */
	for (c = d.conns; c != NULL; c = next) {
		next = c->next;
		if (c->rs != NULL && !c->rs->finished)
			rsession_abort(c->rs, "receiver shutting down");
	}
	if (d.conns != NULL) {
		struct timeval tv = { 1, 0 };

		d.o.once = 0;
		event_base_loopexit(d.base, &tv);
		event_base_dispatch(d.base);
	}
	while (d.conns != NULL) {
		if (d.conns->rs != NULL && !d.conns->rs->finished)
			rsession_abort(d.conns->rs, "receiver shutting down");
		if (d.conns->rs != NULL)
			d.conns->rs->conn = NULL;
		d.conns->rs = NULL;
		rconn_free(d.conns);
	}
	while (d.sessions != NULL)
		rsession_free(d.sessions);
	status = d.o.once ? (d.served > 0 ? d.last_result : RES_ABORTED) : RES_OK;
out:
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigchld != NULL)
		event_free(sigchld);
	ctl_free(d.ctl);
	metrics_server_free(d.metrics);
	if (d.lst != NULL)
		evconnlistener_free(d.lst);
	if (d.base != NULL) {
		sock_drain_finish(d.base);
		event_base_free(d.base);
	}
	tls_ctx_free(d.tls);
	framedump_dir_free(d.dump);
	virt_free(d.virt);
	free(d.hist);
	return status;
}
