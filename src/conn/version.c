/* The library's version, at run time. */
#include "pqstream.h"

unsigned pqs_version(void) {
  return (PQS_VERSION_MAJOR << 16) | (PQS_VERSION_MINOR << 8) |
         PQS_VERSION_PATCH;
}

const char *pqs_version_string(void) { return PQS_VERSION_STRING; }
