/* Fault injection for tests: FERRY_FAILPOINTS=name[,name...] in the
 * environment turns on the named failure points (documented where each is
 * checked, and in tests/README.md).  Never set in production. */
#ifndef FERRY_FAILPOINT_H
#define FERRY_FAILPOINT_H

/* 1 when `name` is listed in FERRY_FAILPOINTS. */
int failpoint(const char *name);

#endif
