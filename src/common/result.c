#include "result.h"

#include "err.h"

enum result
result_from_err(int code)
{
	if (code == 0)
		return RES_OK;
	if (ferr_is_refusal(code))
		return RES_REFUSED;
	if (ferr_is_proto(code))
		return RES_NETWORK;
	switch (code) {
	case FERR_ABORTED: return RES_ABORTED;
	case FERR_TIMEOUT: return RES_TIMEOUT;
	case FERR_NET:
	case FERR_TLS:
	case FERR_TLS_INTEGRITY: return RES_NETWORK;
	case FERR_VERIFY: return RES_VERIFY;
	case FERR_INDOUBT: return RES_INDOUBT;
	case FERR_USAGE: return RES_USAGE;
	default: return RES_ERROR;
	}
}

const char *
result_name(enum result r)
{
	switch (r) {
	case RES_OK: return "ok";
	case RES_REFUSED: return "refused";
	case RES_ABORTED: return "aborted";
	case RES_TIMEOUT: return "timeout";
	case RES_NETWORK: return "network";
	case RES_VERIFY: return "verify";
	case RES_USAGE: return "usage";
	case RES_INDOUBT: return "indoubt";
	default: return "error";
	}
}
