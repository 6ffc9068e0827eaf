/* ferry-send: command line of the sending side. */
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "dumpfmt.h"
#include "err.h"
#include "events.h"
#include "framedump.h"
#include "migrate.h"
#include "plan.h"
#include "planrun.h"
#include "result.h"
#include "scanpool.h"
#include "svirt.h"
#include "units.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ferry-send --to HOST:PORT --cert FILE --key FILE --ca FILE --peer-name NAME\n"
	    "                  --mem FILE [--disk FILE]... [options]\n"
	    "       ferry-send --to HOST:PORT ... --qemu-qmp PATH [--cleanup] [options]\n"
	    "       ferry-send --plan FILE [--concurrency N] [--plan-log-dir DIR] [flags for all]\n"
	    "       ferry-send ctl SOCKET status|abort|bandwidth RATE [--json]\n"
	    "\n"
	    "Live-migrate a guest's memory image and disk images to ferry-recv over mutual TLS 1.3.\n"
	    "\n"
	    "Connection:\n"
	    "  --to HOST:PORT          the receiver's address on the migration network\n"
	    "  --bind ADDR             source address to connect from (the migration network)\n"
	    "  --cert FILE, --key FILE this host's certificate and key (PEM)\n"
	    "  --ca FILE               CA that signs the receiver's certificate (PEM)\n"
	    "  --peer-name NAME        name the receiver's certificate must carry (required)\n"
	    "  --interface IFNAME      keep the connection on this interface (SO_BINDTODEVICE)\n"
	    "  --pin sha256:HEX        also require this receiver public key (twice for rotation)\n"
	    "  --connect-timeout D     TCP connect and TLS handshake limit (default 10s)\n"
	    "Network faults:\n"
	    "  --keepalive D           heartbeat interval (default 2s)\n"
	    "  --keepalive-timeout D   nothing received for this long = link cut (default 10s)\n"
	    "  --outage-timeout D      keep reconnecting after a cut for this long (default 60s)\n"
	    "  --progress-timeout D    fail when nothing is acknowledged for this long (default 150s)\n"
	    "  --completion-timeout-per-gib D  fail when not done after D per GiB of images\n"
	    "                          (default 800s)\n"
	    "  --bandwidth RATE        cap on the wire rate (800Mbit, 100MiB/s; default none)\n"
	    "  --rekey-bytes SIZE      TLS key update after this many bytes (default 4G)\n"
	    "  --ctl SOCKET            control socket (ferry-send ctl SOCKET status|abort|bandwidth)\n"
	    "What to migrate:\n"
	    "  --mem FILE              memory image (read live, shared mapping)\n"
	    "  --disk FILE             raw disk image (repeatable)\n"
	    "  --state FILE            opaque device-state blob, read at pause time\n"
	    "  --page-size SIZE        memory page size (default 4K)\n"
	    "  --block-size SIZE       disk block size (default 64K)\n"
	    "  --dirty-log FILE        the guest marks changed units in FILE (proto/DIRTYLOG.md):\n"
	    "                          rounds after the first scan only those, not every unit\n"
	    "Guest control:\n"
	    "  --guest-pid PID         pause with SIGSTOP, resume with SIGCONT, stop with SIGTERM\n"
	    "  --pause-cmd CMD         run CMD (sh -c) to pause the guest instead\n"
	    "  --resume-cmd CMD        run CMD to resume it after a failure\n"
	    "  --cleanup-cmd CMD       run CMD after commit instead of SIGTERM\n"
	    "QEMU (instead of --mem and --disk; the receiver runs with --qemu-qmp):\n"
	    "  --qemu-qmp PATH         migrate the running QEMU whose QMP socket is PATH: its\n"
	    "                          own migration stream is carried, RAM pages deduped and\n"
	    "                          compressed; the guest stays paused after QEMU completes\n"
	    "                          until the destination QEMU confirms\n"
	    "  --cleanup               after commit, quit the source QEMU\n"
	    "libvirt (instead of --guest-pid; the domain's disks are migrated):\n"
	    "  --libvirt-uri URI       this host's libvirt (qemu:///system, test:///PATH/node.xml)\n"
	    "  --domain NAME           the domain to migrate: checked before a byte moves, paused\n"
	    "                          at switchover, resumed on any failure, destroyed after commit\n"
	    "  --check-only            run every check on both hosts, print the table (or a JSON\n"
	    "                          \"checks\" event with --json), migrate nothing\n"
	    "  --force-check NAME      waive one named check (repeatable; logged; never same-file)\n"
	    "  --undefine-source       after commit also undefine the source domain\n"
	    "Convergence:\n"
	    "  --downtime D            allowed pause at switchover (default 300ms)\n"
	    "  --max-rounds N          switch over after N pre-copy rounds (default 30)\n"
	    "  --threads N             read, hash and compress units on N worker threads\n"
	    "                          (default: the number of cores; 0: on the main thread)\n"
	    "Host evacuation (one ferry-send per line of FILE: NAME FLAG...):\n"
	    "  --plan FILE             run the migrations FILE lists; the other flags given here\n"
	    "                          apply to every line, before the line's own\n"
	    "  --concurrency N         at most N migrations at once (default 2)\n"
	    "  --plan-log-dir DIR      each entry's log and JSON events to DIR/NAME.log and\n"
	    "                          DIR/NAME.json (default: log lines on stderr as [NAME] ...)\n"
	    "Output:\n"
	    "  --dump-frames DIR       write every frame of each connection, decrypted, to a\n"
	    "                          file in DIR (mode 0600: holds guest memory; ferry-inspect)\n"
	    "  --config FILE           settings from FILE, one 'flag-name = value' per line;\n"
	    "                          flags given here override its lines\n"
	    "  --check-config          check the settings, print them and exit\n"
	    "  --json                  one JSON event per line on stdout, last {\"event\":\"done\"}\n"
	    "  --metrics ADDR:PORT     serve Prometheus metrics over HTTP at /metrics (port 0:\n"
	    "                          any free one)\n"
	    "  --metrics-linger D      after the end, keep serving them for D so a scraper sees\n"
	    "                          the final values (default 0)\n"
	    "  --progress / --no-progress  live progress line on stderr (default: on a terminal)\n"
	    "  --log-level LEVEL       error, warn, info (default) or debug: log lines on stderr\n"
	    "                          up to this level, key=value fields (logfmt)\n"
	    "  -q, --quiet             only error lines (--log-level error)\n"
	    "  -h, --help              this text\n"
	    "\n"
	    "Units: sizes 4096, 64K, 256M, 2G; rates 800Mbit, 100MiB/s, 20MB/s;\n"
	    "durations 300ms, 5s, 2m.\n"
	    "Exit status: 0 ok, 1 error, 2 usage, 3 refused, 4 aborted, 5 timeout, 6 network,\n"
	    "7 verify, 8 in doubt (COMMIT sent, outcome unknown: guest left paused).\n"
	    "With --plan: 0 when every entry ended ok, else the highest status of those that\n"
	    "did not (4 for entries never started).\n");
}

enum { O_TO = 256, O_BIND, O_CERT, O_KEY, O_CA, O_PEER, O_CTO, O_MEM, O_DISK, O_STATE,
	O_PAGE, O_BLOCK, O_PID, O_PAUSE, O_RESUME, O_CLEANUP, O_DOWNTIME, O_ROUNDS, O_THREADS, O_JSON,
	O_PROGRESS, O_NOPROGRESS, O_IF, O_PIN, O_KA, O_KAT, O_OUT, O_PROG, O_COMPL, O_BW,
	O_REKEY, O_CTL, O_DUMP, O_VURI, O_DOM, O_CHKONLY, O_FORCE, O_UNDEF,
	O_METRICS, O_LINGER, O_QEMU, O_QCLEAN, O_DIRTYLOG };
enum { O_LOGLEVEL = 512 };
/* --threads default: one worker per core (the event loop's thread then
 * mostly encrypts and sends). */
static uint32_t
default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > (long)SCAN_MAX_THREADS ? SCAN_MAX_THREADS : (uint32_t)n;
}

static const struct option lo[] = {
	{ "to", required_argument, NULL, O_TO },
	{ "bind", required_argument, NULL, O_BIND },
	{ "cert", required_argument, NULL, O_CERT },
	{ "key", required_argument, NULL, O_KEY },
	{ "ca", required_argument, NULL, O_CA },
	{ "peer-name", required_argument, NULL, O_PEER },
	{ "connect-timeout", required_argument, NULL, O_CTO },
	{ "mem", required_argument, NULL, O_MEM },
	{ "disk", required_argument, NULL, O_DISK },
	{ "state", required_argument, NULL, O_STATE },
	{ "page-size", required_argument, NULL, O_PAGE },
	{ "block-size", required_argument, NULL, O_BLOCK },
	{ "guest-pid", required_argument, NULL, O_PID },
	{ "pause-cmd", required_argument, NULL, O_PAUSE },
	{ "resume-cmd", required_argument, NULL, O_RESUME },
	{ "cleanup-cmd", required_argument, NULL, O_CLEANUP },
	{ "downtime", required_argument, NULL, O_DOWNTIME },
	{ "max-rounds", required_argument, NULL, O_ROUNDS },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "json", no_argument, NULL, O_JSON },
	{ "progress", no_argument, NULL, O_PROGRESS },
	{ "no-progress", no_argument, NULL, O_NOPROGRESS },
	{ "interface", required_argument, NULL, O_IF },
	{ "pin", required_argument, NULL, O_PIN },
	{ "keepalive", required_argument, NULL, O_KA },
	{ "keepalive-timeout", required_argument, NULL, O_KAT },
	{ "outage-timeout", required_argument, NULL, O_OUT },
	{ "progress-timeout", required_argument, NULL, O_PROG },
	{ "completion-timeout-per-gib", required_argument, NULL, O_COMPL },
	{ "bandwidth", required_argument, NULL, O_BW },
	{ "rekey-bytes", required_argument, NULL, O_REKEY },
	{ "ctl", required_argument, NULL, O_CTL },
	{ "dump-frames", required_argument, NULL, O_DUMP },
	{ "libvirt-uri", required_argument, NULL, O_VURI },
	{ "domain", required_argument, NULL, O_DOM },
	{ "qemu-qmp", required_argument, NULL, O_QEMU },
	{ "dirty-log", required_argument, NULL, O_DIRTYLOG },
	{ "cleanup", no_argument, NULL, O_QCLEAN },
	{ "check-only", no_argument, NULL, O_CHKONLY },
	{ "force-check", required_argument, NULL, O_FORCE },
	{ "undefine-source", no_argument, NULL, O_UNDEF },
	{ "metrics", required_argument, NULL, O_METRICS },
	{ "metrics-linger", required_argument, NULL, O_LINGER },
	{ "log-level", required_argument, NULL, O_LOGLEVEL },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
unit_arg(const char *flag, const char *s, uint32_t *out, struct ferr *e)
{
	uint64_t v;

	if (parse_size(s, &v, e) != 0)
		return ferr_wrap(e, "%s", flag);
	if (v < FERRY_UNIT_MIN || v > FERRY_UNIT_MAX || (v & (v - 1)) != 0)
		return ferr_set(e, FERR_USAGE, "%s %s: must be a power of two from 4K to 1M", flag, s);
	*out = (uint32_t)v;
	return 0;
}

static int
parse_args(int argc, char **argv, struct send_opts *o, struct events *ev, struct config *cfg,
    struct ferr *e)
{
	uint64_t v;
	int ch, npins = 0;

	o->keepalive_ms = 2000;
	o->dead_ms = 10000;
	o->outage_ms = 60000;
	o->progress_ms = 150000;
	o->completion_per_gib_ms = 800000;
	o->rekey_bytes = 4ull << 30;
	o->mem_unit = 4096;
	o->disk_unit = 65536;
	o->downtime_ms = 300;
	o->max_rounds = 30;
	o->threads = default_threads();
	o->connect_timeout_ms = 10000;
	/* Carriage-return lines only on a terminal, never into the journal. */
	o->progress = isatty(STDERR_FILENO) && !ev->journal;
	if (config_merge(cfg, "send", lo, "qh", &argc, &argv, e) != 0)
		return e->code;
	while ((ch = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (ch) {
		case O_TO:
			if (parse_hostport(optarg, o->to_host, sizeof(o->to_host), &o->to_port, e) != 0)
				return ferr_wrap(e, "--to");
			break;
		case O_BIND: o->bind_addr = optarg; break;
		case O_CERT: o->cert = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_CA: o->ca = optarg; break;
		case O_PEER: o->peer_name = optarg; break;
		case O_CTO:
			if (parse_duration_ms(optarg, 1000, &o->connect_timeout_ms, e) != 0)
				return ferr_wrap(e, "--connect-timeout");
			if (o->connect_timeout_ms == 0 || o->connect_timeout_ms > 3600000)
				return ferr_set(e, FERR_USAGE, "--connect-timeout: between 1ms and 1h");
			break;
		case O_QEMU: o->qemu_qmp = optarg; break;
		case O_DIRTYLOG: o->dirty_log = optarg; break;
		case O_QCLEAN: o->qemu_cleanup = 1; break;
		case O_MEM:
			if (o->mem != NULL)
				return ferr_set(e, FERR_USAGE, "--mem given twice");
			o->mem = optarg;
			break;
		case O_DISK:
			if (o->ndisks >= FERRY_MAX_DEVICES - 1)
				return ferr_set(e, FERR_USAGE, "--disk: at most %u disks", FERRY_MAX_DEVICES - 1);
			o->disks[o->ndisks++] = optarg;
			break;
		case O_STATE: o->state_file = optarg; break;
		case O_PAGE:
			if (unit_arg("--page-size", optarg, &o->mem_unit, e) != 0)
				return e->code;
			break;
		case O_BLOCK:
			if (unit_arg("--block-size", optarg, &o->disk_unit, e) != 0)
				return e->code;
			break;
		case O_PID:
			if (parse_uint(optarg, 1, 4194304, &v, e) != 0)
				return ferr_wrap(e, "--guest-pid");
			o->guest.pid = (pid_t)v;
			break;
		case O_PAUSE: o->guest.pause_cmd = optarg; break;
		case O_RESUME: o->guest.resume_cmd = optarg; break;
		case O_CLEANUP: o->guest.cleanup_cmd = optarg; break;
		case O_DOWNTIME:
			if (parse_duration_ms(optarg, 1, &o->downtime_ms, e) != 0)
				return ferr_wrap(e, "--downtime");
			break;
		case O_ROUNDS:
			if (parse_uint(optarg, 1, 1000, &v, e) != 0)
				return ferr_wrap(e, "--max-rounds");
			o->max_rounds = (uint32_t)v;
			break;
		case O_THREADS:
			if (parse_uint(optarg, 0, SCAN_MAX_THREADS, &v, e) != 0)
				return ferr_wrap(e, "--threads");
			o->threads = (uint32_t)v;
			break;
		case O_IF: o->interface = optarg; break;
		case O_PIN:
			if (npins >= 2)
				return ferr_set(e, FERR_USAGE, "--pin: at most two (current and next key)");
			o->pins[npins++] = optarg;
			break;
		case O_CTL: o->ctl_path = optarg; break;
		case O_DUMP: o->dump_dir = optarg; break;
		case O_VURI: o->libvirt_uri = optarg; break;
		case O_DOM: o->domain = optarg; break;
		case O_CHKONLY: o->check_only = 1; break;
		case O_UNDEF: o->undefine_source = 1; break;
		case O_METRICS: {
			char host[256];
			uint16_t port;

			if (parse_hostport(optarg, host, sizeof(host), &port, e) != 0)
				return ferr_wrap(e, "--metrics");
			o->metrics_addr = optarg;
			break;
		}
		case O_LINGER:
			if (parse_duration_ms(optarg, 1000, &o->metrics_linger_ms, e) != 0)
				return ferr_wrap(e, "--metrics-linger");
			break;
		case O_FORCE:
			if (o->nforce >= FERRY_WAIVE_MAX)
				return ferr_set(e, FERR_USAGE, "--force-check: at most %u", FERRY_WAIVE_MAX);
			o->force_checks[o->nforce++] = optarg;
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
		case O_COMPL:
			if (parse_timeout_flag("--completion-timeout-per-gib", optarg, &o->completion_per_gib_ms, e) != 0)
				return e->code;
			break;
		case O_BW:
			if (parse_rate(optarg, &o->bandwidth, e) != 0)
				return ferr_wrap(e, "--bandwidth");
			break;
		case O_REKEY:
			if (parse_size(optarg, &o->rekey_bytes, e) != 0)
				return ferr_wrap(e, "--rekey-bytes");
			if (o->rekey_bytes != 0 && o->rekey_bytes < (1u << 20))
				return ferr_set(e, FERR_USAGE, "--rekey-bytes: at least 1M (or 0 to disable)");
			break;
		case O_JSON: o->json = 1; break;
		case O_PROGRESS: o->progress = 1; break;
		case O_NOPROGRESS: o->progress = 0; break;
		case O_LOGLEVEL:
			if (ev_level_parse("--log-level", optarg, &ev->level, e) != 0)
				return e->code;
			break;
		case 'q': ev->level = EV_ERROR; break;
		case 'h': usage(stdout); return 1;
		default: return ferr_set(e, FERR_USAGE, "see --help");
		}
	}
	if (optind < argc)
		return ferr_set(e, FERR_USAGE, "unexpected argument '%s'", argv[optind]);
	if (o->to_port == 0)
		return ferr_set(e, FERR_USAGE, "--to HOST:PORT is required (port 1-65535)");
	if (o->cert == NULL || o->key == NULL || o->ca == NULL)
		return ferr_set(e, FERR_USAGE, "--cert, --key and --ca are required (no plaintext mode)");
	if (o->peer_name == NULL || o->peer_name[0] == '\0')
		return ferr_set(e, FERR_USAGE, "--peer-name is required: the name in the receiver's certificate");
	if ((o->domain == NULL) != (o->libvirt_uri == NULL))
		return ferr_set(e, FERR_USAGE, "--domain and --libvirt-uri go together");
	if (o->domain == NULL && (o->check_only || o->nforce > 0 || o->undefine_source))
		return ferr_set(e, FERR_USAGE, "--check-only, --force-check and --undefine-source need --domain");
	if (o->domain != NULL && (o->guest.pid != 0 || o->guest.pause_cmd != NULL ||
	    o->guest.cleanup_cmd != NULL))
		return ferr_set(e, FERR_USAGE, "--domain controls the guest through libvirt: no "
		    "--guest-pid, --pause-cmd or --cleanup-cmd with it");
	if (o->domain != NULL && o->ndisks > 0)
		return ferr_set(e, FERR_USAGE, "--domain: its disks come from the domain XML, no --disk");
	if (o->qemu_qmp != NULL && (o->mem != NULL || o->ndisks > 0 || o->state_file != NULL ||
	    o->domain != NULL || o->guest.pid != 0 || o->guest.pause_cmd != NULL ||
	    o->guest.cleanup_cmd != NULL || o->dirty_log != NULL))
		return ferr_set(e, FERR_USAGE, "--qemu-qmp migrates that QEMU: no --mem, --disk, --state, "
		    "--domain, --guest-pid, --pause-cmd, --cleanup-cmd or --dirty-log with it");
	if (o->qemu_cleanup && o->qemu_qmp == NULL)
		return ferr_set(e, FERR_USAGE, "--cleanup needs --qemu-qmp (for images: --cleanup-cmd)");
	if (o->mem == NULL && o->ndisks == 0 && o->domain == NULL && o->qemu_qmp == NULL)
		return ferr_set(e, FERR_USAGE, "nothing to migrate: give --mem and/or --disk (or --domain, "
		    "or --qemu-qmp)");
	if ((o->guest.pause_cmd == NULL) != (o->guest.resume_cmd == NULL))
		return ferr_set(e, FERR_USAGE, "--pause-cmd and --resume-cmd go together");
	if (o->guest.pause_cmd != NULL && o->guest.pid != 0)
		return ferr_set(e, FERR_USAGE, "--guest-pid and --pause-cmd exclude each other");
	if (o->dead_ms <= o->keepalive_ms)
		return ferr_set(e, FERR_USAGE, "--keepalive-timeout must be longer than --keepalive");
	if (o->metrics_linger_ms > 0 && o->metrics_addr == NULL)
		return ferr_set(e, FERR_USAGE, "--metrics-linger needs --metrics");
	return 0;
}


/* A failure before the migration started still ends with a done event. */
static void
emit_early_done(struct events *ev, const struct ferr *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "result", json_object_new_string(result_name(result_from_err(e->code))));
	json_object_object_add(o, "error", json_object_new_string(e->msg));
	json_object_object_add(o, "code", json_object_new_string(ferr_name(e->code)));
	ev_json(ev, "done", o);
}

/* A plan entry's full vector, parsed like a command line and dropped. */
static int
validate_entry(int argc, char **argv, struct ferr *e)
{
	struct send_opts o;
	struct events ev;
	struct config cfg;
	int rc;

	ev_init(&ev, "ferry-send");
	ev.level = EV_ERROR;
	memset(&o, 0, sizeof(o));
	memset(&cfg, 0, sizeof(cfg));
	rc = parse_args(argc, argv, &o, &ev, &cfg, e);
	if (rc == 0 && cfg.check)
		rc = ferr_set(e, FERR_USAGE, "--check-config in a plan");
	else if (rc == 1)
		rc = ferr_set(e, FERR_USAGE, "--help in a plan");
	else if (rc != 0)
		config_blame(&cfg, optind, e);
	config_fini(&cfg);
	return rc;
}

/* `ferry-send --plan FILE ...`; -1 when the command line has no --plan. */
static int
plan_main(int argc, char **argv)
{
	struct plan_cli c;
	struct plan p;
	struct ferr e = { 0 };
	struct events ev;
	char exe[4096];
	ssize_t n;
	int rc;

	ev_init(&ev, "ferry-send");
	rc = plan_cli_split(argc, argv, lo, &c, &e);
	if (c.plan == NULL) {
		plan_cli_fini(&c);
		return -1;
	}
	if (c.help) {
		usage(stdout);
		plan_cli_fini(&c);
		return 0;
	}
	if (rc == 0)
		rc = plan_load(c.plan, &p, &e);
	if (rc != 0) {
		fprintf(stderr, "ferry-send: %s\n", e.msg);
		plan_cli_fini(&c);
		return e.code == FERR_USAGE ? RES_USAGE : RES_ERROR;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		snprintf(exe, sizeof(exe), "%s", argv[0]);
	else
		exe[n] = '\0';
	ev.json = c.json;
	if (c.log_level != NULL && ev_level_parse("--log-level", c.log_level, &ev.level, &e) != 0) {
		fprintf(stderr, "ferry-send: %s\n", e.msg);
		plan_fini(&p);
		plan_cli_fini(&c);
		return RES_USAGE;
	}
	rc = plan_run(&p, &c, exe, validate_entry, &ev, &e);
	plan_fini(&p);
	plan_cli_fini(&c);
	return rc;
}

int
main(int argc, char **argv)
{
	struct send_opts o;
	static struct config cfg;   /* the options point into it until exit */
	struct events ev;
	struct migrate_result res;
	struct ferr e = { 0 };
	int rc;

	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ctl_cli("ferry-send ctl SOCKET status|abort|bandwidth RATE [--json]", argc, argv,
		    ctl_show_send_status);
	signal(SIGPIPE, SIG_IGN);
	rc = plan_main(argc, argv);
	if (rc >= 0)
		return rc;
	ev_init(&ev, "ferry-send");
	memset(&o, 0, sizeof(o));
	rc = parse_args(argc, argv, &o, &ev, &cfg, &e);
	if (rc == 0 && cfg.check) {
		config_print(&cfg, "ferry-send", stdout);
		return 0;
	}
	if (rc == 1)
		return 0;
	if (rc != 0) {
		config_blame(&cfg, optind, &e);
		fprintf(stderr, "ferry-send: %s\n", e.msg);
		return RES_USAGE;
	}
	ev.json = o.json;
	if (ev.journal)
		o.progress = 0;     /* no carriage-return lines in the journal */
	if (o.dump_dir != NULL) {
		if (framedump_dir_new(o.dump_dir, DUMP_ROLE_SENDER, &ev, &o.dump, &e) != 0) {
			fprintf(stderr, "ferry-send: %s\n", e.msg);
			return e.code == FERR_USAGE ? RES_USAGE : RES_ERROR;
		}
		ev_log(&ev, "--dump-frames: writing decrypted frames (guest memory) to %s", o.dump_dir);
	}
	if (o.domain != NULL) {
		if (svirt_open(&o, &ev, &o.virt, &e) != 0) {
			/* Refused before any connection carries data. */
			struct ev_ctx cx = { .state = "" };

			snprintf(cx.reason, sizeof(cx.reason), "%s", result_name(result_from_err(e.code)));
			snprintf(cx.code, sizeof(cx.code), "%s", ferr_name(e.code));
			ev_final(&ev, EV_ERROR, &cx, "%s: %s", cx.reason, e.msg);
			emit_early_done(&ev, &e);
			framedump_dir_free(o.dump);
			return result_exit(result_from_err(e.code));
		}
		o.guest.virt = o.virt->v;
		o.guest.domain = o.domain;
		o.guest.undefine = o.undefine_source;
	}
	rc = result_exit(migrate_run(&o, &ev, &res));
	svirt_free(o.virt);
	framedump_dir_free(o.dump);
	return rc;
}
