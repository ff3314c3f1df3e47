/* COPY ... TO STDOUT (FORMAT binary), parsed in place. The server sends
 * one CopyData message per row (the protocol promises it); the first also
 * carries the file header, and the last holds only the trailer:
 *   header:  "PGCOPY\n\377\r\n\0", int32 flags, int32 extension length,
 *            the extension;
 *   tuple:   int16 field count, then per field an int32 length (-1: NULL)
 *            and its bytes;
 *   trailer: int16 -1.
 * Each field is NUL-terminated where it lies, in the same pass that reads
 * the lengths: over the first byte of the next field's length once that
 * is read, or, for the last field, at msg[n], where libpq keeps a NUL of
 * its own. Text-like values then read as text, with no copy. */
#include <string.h>

#include "bigendian.h"
#include "copy_binary.h"
#include "pqstream.h"

static const char signature[11] = "PGCOPY\n\377\r\n";

static int bad(const char **why, const char *what) {
  *why = what;
  return PQS_EINVAL;
}

/* The header at *p: moves *p past it. */
static int header(char **p, const char *end, const char **why) {
  if (end - *p < 19 || memcmp(*p, signature, sizeof(signature)) != 0)
    return bad(why, "the binary COPY's header is missing or truncated");
  uint32_t flags = pqs__be32(*p + 11), ext = pqs__be32(*p + 15);
  /* Bit 16: each tuple has an OID, which this COPY never asks for; the
   * high half's other bits are critical and unknown. */
  if ((flags & 0xFFFF0000u) != 0)
    return bad(why, "the binary COPY's header has flags pqstream does not know");
  if (ext > (size_t)(end - *p) - 19)
    return bad(why, "the binary COPY's header extension is truncated");
  *p += 19 + ext;
  return 0;
}

int pqs__copy_binary_row(pqs__bin_state_t *state, char *msg, size_t n,
                         pqs__cell_t *cells, int ncols, const char **why) {
  char *p = msg, *end = msg + n;
  int rc;
  if (*state == PQS__BIN_ENDED)
    return bad(why, "binary COPY data after its trailer");
  if (*state == PQS__BIN_HEADER) {
    if ((rc = header(&p, end, why)) != 0)
      return rc;
    *state = PQS__BIN_TUPLES; /* HEADER -> TUPLES */
  }
  if (end - p < 2)
    return bad(why, "a binary COPY tuple is truncated");
  int16_t count = (int16_t)pqs__be16(p);
  p += 2;
  if (count == -1) {
    if (p != end)
      return bad(why, "the binary COPY's trailer has bytes after it");
    *state = PQS__BIN_ENDED; /* TUPLES -> ENDED */
    return 0;
  }
  if (count != ncols)
    return bad(why, "a binary COPY tuple's field count differs from the "
                    "query's columns");
  /* prev_end: where the field before ends, terminated once the length
   * lying there is read; bytes are written only within checked bounds. */
  char *prev_end = NULL;
  for (int i = 0; i < ncols; i++) {
    if (end - p < 4)
      return bad(why, "a binary COPY tuple is truncated");
    int32_t len = (int32_t)pqs__be32(p);
    if (prev_end != NULL)
      *prev_end = '\0';
    p += 4;
    prev_end = NULL;
    if (len == -1) {
      cells[i] = (pqs__cell_t){NULL, -1};
      continue;
    }
    if (len < 0)
      return bad(why, "a binary COPY field has a negative length");
    if (len > end - p)
      return bad(why, "a binary COPY field runs past its tuple");
    cells[i] = (pqs__cell_t){p, len};
    p += len;
    prev_end = p;
  }
  if (p != end)
    return bad(why, "a binary COPY tuple has bytes after its fields");
  if (prev_end != NULL)
    *prev_end = '\0'; /* msg[n]: libpq's own NUL */
  return 1;
}
