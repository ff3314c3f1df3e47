/* Values written as the server's json writer writes them (json_write.c). */
#ifndef PQS_JSON_WRITE_H
#define PQS_JSON_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json_types.h"

/* `len` bytes of `v` as a JSON string, escaped as json escapes: 0 or
 * PQS_ENOMEM. */
int pqs__json_string(pqs__buf_t *out, const char *v, size_t len);

/* A value's text as its type renders (`how`; an array's elements so when
 * `elem`, its element type, is not 0; pqs__json_how gives both): 0 or
 * PQS_ENOMEM. A text that is not what the type's output gives (an array
 * that does not parse) is written as a string. */
int pqs__json_value(pqs__buf_t *out, pqs__json_how_t how, uint32_t elem,
                    const char *v, size_t len);

/* int2vector's and oidvector's text ("1 2 3", elements rendered `how`)
 * as the JSON array json makes of them: 0 or PQS_ENOMEM. */
int pqs__json_vector(pqs__buf_t *out, pqs__json_how_t how, const char *v,
                     size_t len);

#endif
