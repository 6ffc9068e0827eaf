/* ferry-faultproxy: command line.  The relay lives in proxy.c, the
 * control socket and client mode in ctl.c. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fproxy.h"
#include "proxy.h"

#define EXIT_OK     0
#define EXIT_FAIL   1   /* runtime failure; ctl: reply was not "ok" */
#define EXIT_USAGE  2

enum opt_id { OPT_LISTEN = 1, OPT_TO, OPT_CTL, OPT_PORT_FILE, OPT_LOG, OPT_HELP };

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "to", required_argument, NULL, OPT_TO },
	{ "ctl", required_argument, NULL, OPT_CTL },
	{ "port-file", required_argument, NULL, OPT_PORT_FILE },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ferry-faultproxy --listen HOST:PORT --to HOST:PORT [--ctl SOCKET]\n"
	    "                        [--port-file FILE] [--log FILE]\n"
	    "       ferry-faultproxy ctl SOCKET COMMAND [ARGS...]\n"
	    "\n"
	    "A TCP relay for fault tests: every connection accepted on --listen is relayed\n"
	    "to --to (and only there), both ways, with faults switched on at run time.\n"
	    "\n"
	    "  --listen HOST:PORT  address to accept on; port 0 picks a free port.  Prints\n"
	    "                      \"listening on HOST:PORT\" on stderr once ready.\n"
	    "  --to HOST:PORT      the server every connection is relayed to\n"
	    "  --ctl SOCKET        unix socket for control commands (one line in, one out)\n"
	    "  --port-file FILE    write the listening port there once ready\n"
	    "  --log FILE          append one line per event (connect, close, fault)\n"
	    "\n"
	    "Control commands (DIR is up = client->server, down, or both; default both):\n"
	    "  latency MS [DIR]       delay every chunk by MS (order kept; 0 = off)\n"
	    "  rate BYTES/S [DIR]     bandwidth limit (5000000, 5MB/s, 40Mbit); 0 = unlimited\n"
	    "  stall [DIR]            stop reading the source, forward nothing\n"
	    "  unstall [DIR]          resume\n"
	    "  drop [DIR]             read and discard (a FIN read meanwhile is lost too)\n"
	    "  undrop [DIR]           forward again\n"
	    "  reset                  close every connection with RST, both sides\n"
	    "  close-after N [DIR] [next]\n"
	    "                         close both sides (FIN) once N more bytes passed in DIR\n"
	    "                         (both: counted over both); one-shot\n"
	    "  slice N                write at most N bytes per write (0 = off)\n"
	    "  flip OFFSET [DIR] [next]\n"
	    "                         flip the lowest bit of the byte OFFSET bytes from now\n"
	    "                         (in each direction of DIR); one-shot\n"
	    "  refuse / accept        close new connections at once (RST) / relay them again\n"
	    "  clear                  remove every fault, one-shots included\n"
	    "  stats                  ok conns=N up=BYTES down=BYTES active=K\n"
	    "  show                   the standing faults\n"
	    "One-shots apply to the newest open connection, or to the next one when none\n"
	    "is open or \"next\" is given.  Replies start with \"ok\" or \"error\".\n"
	    "\n"
	    "Signals: SIGUSR1 resets every connection, SIGUSR2 toggles a stall of both\n"
	    "directions, SIGTERM/SIGINT exit.\n"
	    "Exit status: 0 clean exit (ctl: reply \"ok\"), 1 failure (ctl: any other\n"
	    "reply or no reply), 2 bad command line.\n");
}

static int
run_ctl(int argc, char **argv)
{
	if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc < 4) {
		fprintf(stderr, "ferry-faultproxy ctl: usage: ferry-faultproxy ctl SOCKET COMMAND [ARGS...]\n");
		return EXIT_FAIL;
	}
	return ctl_client(argv[2], argc - 3, argv + 3);
}

int
main(int argc, char **argv)
{
	struct proxy_opts o = { 0 };
	struct ferr e = { 0 };
	const char **slot;
	int id;

	/* a peer that went away must be an error on write, not a signal */
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return run_ctl(argc, argv);
	opterr = 0;
	while ((id = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (id) {
		case OPT_HELP:
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case ':':
			fprintf(stderr, "ferry-faultproxy: %s needs a value (see --help)\n", argv[optind - 1]);
			return EXIT_USAGE;
		case '?':
			fprintf(stderr, "ferry-faultproxy: unknown option %s (see --help)\n", argv[optind - 1]);
			return EXIT_USAGE;
		case OPT_LISTEN: slot = &o.listen; break;
		case OPT_TO: slot = &o.to; break;
		case OPT_CTL: slot = &o.ctl; break;
		case OPT_PORT_FILE: slot = &o.port_file; break;
		case OPT_LOG: slot = &o.log; break;
		default:
			fprintf(stderr, "ferry-faultproxy: option %d not handled\n", id);
			return EXIT_USAGE;
		}
		if (*slot != NULL) {
			fprintf(stderr, "ferry-faultproxy: --%s given twice\n", long_opts[id - 1].name);
			return EXIT_USAGE;
		}
		*slot = optarg;
	}
	if (optind < argc) {
		fprintf(stderr, "ferry-faultproxy: unexpected argument '%s' (see --help)\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (o.listen == NULL || o.to == NULL) {
		fprintf(stderr, "ferry-faultproxy: --listen and --to are required (see --help)\n");
		return EXIT_USAGE;
	}
	if (proxy_run(&o, &e) != 0) {
		fprintf(stderr, "ferry-faultproxy: %s\n", e.msg);
		return e.code == FERR_USAGE ? EXIT_USAGE : EXIT_FAIL;
	}
	return EXIT_OK;
}
