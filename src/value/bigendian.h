/* Big-endian integers, as PostgreSQL's binary formats carry them. */
#ifndef PQS_BIGENDIAN_H
#define PQS_BIGENDIAN_H

#include <stdint.h>

static inline uint16_t pqs__be16(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint16_t)(u[0] << 8 | u[1]);
}
static inline uint32_t pqs__be32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 |
         u[3];
}
static inline uint64_t pqs__be64(const char *p) {
  return (uint64_t)pqs__be32(p) << 32 | pqs__be32(p + 4);
}

#endif
