/* The error table: codes, names and messages from one map. */
#include <string.h>

#include "pqstream.h"

const char *pqs_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define PQS__ERR_MSG(name, val, msg)                                           \
  case PQS_##name:                                                             \
    return msg;
    PQS_ERRNO_MAP(PQS__ERR_MSG)
#undef PQS__ERR_MSG
  default:
    /* libuv's own codes pass through pqstream unchanged. */
    return err < 0 && err > -30000 ? uv_strerror(err) : "unknown error";
  }
}

const char *pqs_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define PQS__ERR_NAME(name, val, msg)                                          \
  case PQS_##name:                                                             \
    return #name;
    PQS_ERRNO_MAP(PQS__ERR_NAME)
#undef PQS__ERR_NAME
  default:
    return err < 0 && err > -30000 ? uv_err_name(err) : "UNKNOWN";
  }
}
