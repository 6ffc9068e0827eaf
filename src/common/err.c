#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
ferr_set(struct ferr *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int
ferr_wrap(struct ferr *e, const char *fmt, ...)
{
	char prefix[FERR_MSG_MAX], old[FERR_MSG_MAX];
	va_list ap;

	if (e == NULL)
		return FERR_INTERNAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
	return e->code;
}

void
ferr_clear(struct ferr *e)
{
	if (e != NULL) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

const char *
ferr_name(int code)
{
	switch (code) {
	case FERR_OK: return "OK";
	case FERR_NEED_MORE: return "NEED_MORE";
	case FERR_PROTO: return "PROTO";
	case FERR_PROTO_TYPE: return "PROTO_TYPE";
	case FERR_PROTO_LENGTH: return "PROTO_LENGTH";
	case FERR_PROTO_STATE: return "PROTO_STATE";
	case FERR_PROTO_RANGE: return "PROTO_RANGE";
	case FERR_PROTO_CODEC: return "PROTO_CODEC";
	case FERR_PROTO_HASH: return "PROTO_HASH";
	case FERR_PROTO_VERSION: return "PROTO_VERSION";
	case FERR_PROTO_RESUME: return "PROTO_RESUME";
	case FERR_PROTO_FLOOD: return "PROTO_FLOOD";
	case FERR_REFUSED: return "REFUSED";
	case FERR_REFUSE_SIZE: return "REFUSE_SIZE";
	case FERR_REFUSE_COUNT: return "REFUSE_COUNT";
	case FERR_REFUSE_SAMEFILE: return "REFUSE_SAMEFILE";
	case FERR_REFUSE_SPACE: return "REFUSE_SPACE";
	case FERR_REFUSE_UNIT: return "REFUSE_UNIT";
	case FERR_REFUSE_NAME: return "REFUSE_NAME";
	case FERR_REFUSE_BUSY: return "REFUSE_BUSY";
	case FERR_REFUSE_DIR: return "REFUSE_DIR";
	case FERR_IO: return "IO";
	case FERR_NOMEM: return "NOMEM";
	case FERR_TLS: return "TLS";
	case FERR_NET: return "NET";
	case FERR_VERIFY: return "VERIFY";
	case FERR_TIMEOUT: return "TIMEOUT";
	case FERR_ABORTED: return "ABORTED";
	case FERR_USAGE: return "USAGE";
	case FERR_INDOUBT: return "INDOUBT";
	case FERR_TLS_INTEGRITY: return "TLS_INTEGRITY";
	case FERR_INTERNAL: return "INTERNAL";
	case FERR_VIRT: return "VIRT";
	case FERR_VIRT_XML: return "VIRT_XML";
	case FERR_VIRT_CDROM: return "VIRT_CDROM";
	case FERR_VIRT_HOSTDEV: return "VIRT_HOSTDEV";
	case FERR_VIRT_SHAREABLE: return "VIRT_SHAREABLE";
	case FERR_VIRT_READONLY: return "VIRT_READONLY";
	case FERR_VIRT_NOTFILE: return "VIRT_NOTFILE";
	case FERR_VIRT_CACHE: return "VIRT_CACHE";
	case FERR_VIRT_ARCH: return "VIRT_ARCH";
	case FERR_VIRT_CPU_MODEL: return "VIRT_CPU_MODEL";
	case FERR_VIRT_CPUS: return "VIRT_CPUS";
	case FERR_VIRT_MEMORY: return "VIRT_MEMORY";
	case FERR_VIRT_IMAGES: return "VIRT_IMAGES";
	case FERR_VIRT_EXISTS: return "VIRT_EXISTS";
	case FERR_QEMU_CAP: return "QEMU_CAP";
	case FERR_QEMU_STATE: return "QEMU_STATE";
	case FERR_QEMU: return "QEMU";
	default: return "UNKNOWN";
	}
}
