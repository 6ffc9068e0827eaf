/* ferry-inspect: command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "inspect.h"
#include "units.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ferry-inspect [--json] [-v] DUMP...\n"
	    "       ferry-inspect [--json] [-v] --keylog KEYLOG [--port PORT] CAPTURE\n"
	    "\n"
	    "Decode ferry frames, one line per frame: where (@file offset, or tcpSTREAM#packet),\n"
	    "seconds since the connection began, direction, type, payload length and the\n"
	    "decoded fields (CHECKS: one more line per check row); a summary per frame type\n"
	    "at the end.\n"
	    "\n"
	    "  DUMP                a file written by ferry-send/ferry-recv --dump-frames DIR;\n"
	    "                      give every file of a session (in order) so PAGES of a\n"
	    "                      resumed connection are decoded with the first one's MANIFEST\n"
	    "  --keylog KEYLOG     CAPTURE is a pcap/pcapng file; decrypt it with the TLS key\n"
	    "                      log the daemons wrote (SSLKEYLOGFILE=KEYLOG), using tshark\n"
	    "  --port PORT         the receiver's port, if tshark does not see TLS there by itself\n"
	    "  --tshark PATH       tshark to run (default: tshark from PATH)\n"
	    "  --json              one JSON object per line; the last is the summary\n"
	    "  -v, --verbose       PAGES: one line per entry; QSTREAM: one line per item\n"
	    "  --no-summary        leave out the summary\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Input errors (bad or truncated records, frames ferry would refuse) are shown where\n"
	    "they are, and decoding goes on.  Exit status: 0 clean, 1 errors in the input,\n"
	    "2 usage or an unreadable input.\n");
}

struct opts {
	int json, verbose, summary;
	const char *keylog, *tshark;
	unsigned port;
};

static int
parse_args(int argc, char **argv, struct opts *o, struct ferr *e)
{
	enum { O_JSON = 256, O_KEYLOG, O_PORT, O_TSHARK, O_NOSUM };
	static const struct option lo[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "keylog", required_argument, NULL, O_KEYLOG },
		{ "port", required_argument, NULL, O_PORT },
		{ "tshark", required_argument, NULL, O_TSHARK },
		{ "no-summary", no_argument, NULL, O_NOSUM },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	o->summary = 1;
	o->tshark = "tshark";
	while ((ch = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (ch) {
		case O_JSON: o->json = 1; break;
		case O_KEYLOG: o->keylog = optarg; break;
		case O_PORT:
			if (parse_uint(optarg, 1, 65535, &v, e) != 0)
				return ferr_wrap(e, "--port");
			o->port = (unsigned)v;
			break;
		case O_TSHARK: o->tshark = optarg; break;
		case O_NOSUM: o->summary = 0; break;
		case 'v': o->verbose = 1; break;
		case 'h': usage(stdout); return 1;
		default: return ferr_set(e, FERR_USAGE, "see --help");
		}
	}
	if (optind >= argc)
		return ferr_set(e, FERR_USAGE, "no input: give dump files, or --keylog KEYLOG CAPTURE");
	if (o->keylog != NULL && argc - optind != 1)
		return ferr_set(e, FERR_USAGE, "--keylog takes exactly one capture file");
	if (o->keylog == NULL && o->port != 0)
		return ferr_set(e, FERR_USAGE, "--port only goes with --keylog");
	return 0;
}

int
main(int argc, char **argv)
{
	struct inspector in;
	struct opts o;
	struct ferr e = { 0 };
	int rc, i, unreadable = 0;

	memset(&o, 0, sizeof(o));
	rc = parse_args(argc, argv, &o, &e);
	if (rc == 1)
		return 0;
	if (rc != 0) {
		fprintf(stderr, "ferry-inspect: %s\n", e.msg);
		return 2;
	}
	insp_init(&in, stdout, o.json, o.verbose);
	if (o.keylog != NULL) {
		unreadable = inspect_capture(&in, argv[optind], o.keylog, o.tshark, o.port) != 0;
	} else {
		for (i = optind; i < argc; i++)
			unreadable |= inspect_dump_file(&in, argv[i]) != 0;
	}
	if (o.summary)
		insp_summary(&in);
	insp_fini(&in);
	if (fflush(stdout) != 0)
		return 2;
	return unreadable ? 2 : in.errors > 0 ? 1 : 0;
}
