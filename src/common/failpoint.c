#include "failpoint.h"

#include <stdlib.h>
#include <string.h>

int
failpoint(const char *name)
{
	const char *list = getenv("FERRY_FAILPOINTS"), *p;
	size_t n = strlen(name);

	for (p = list; p != NULL && *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}
