/* How row_to_json() renders a value of each built-in type, and which
 * values the client can render so without asking the server.
 *
 * The server's json writer (json_categorize_type) renders numbers bare
 * when they are JSON numbers, booleans as true/false, json and jsonb as
 * they are, dates and timestamps in ISO 8601 whatever the DateStyle,
 * arrays as JSON arrays (bounds dropped), composites as objects, domains
 * as their base type, and everything else as the string of its output
 * function. The client knows the built-in types only: a composite, a
 * domain, an enum or any type a user made is the server's to render. */
#ifndef PQS_JSON_TYPES_H
#define PQS_JSON_TYPES_H

#include <stdint.h>

typedef enum {
  PQS__JSON_SERVER = 0, /* only the server knows: to_json() of the value */
  PQS__JSON_NUMBER,     /* bare if a JSON number, else a string (NaN) */
  PQS__JSON_BOOL,       /* true / false from t / f */
  PQS__JSON_JSON,       /* json, jsonb: the text as it is */
  PQS__JSON_DATE,       /* ISO text as it is (DateStyle ISO only) */
  PQS__JSON_TIMESTAMP,  /* ISO text with a T and a full zone (ISO only) */
  PQS__JSON_STRING      /* the output function's text as a string */
} pqs__json_how_t;

/* What the values of a stream come as. */
enum {
  PQS__JSON_ISO_DATES = 1, /* text of a session whose DateStyle is ISO */
  PQS__JSON_BINARY = 2     /* binary values (their texts made here) */
};

/* How the client renders a value of `type` that comes as `flags` say;
 * for an array, how each element is rendered, with *elem its type
 * (0 for a non-array). PQS__JSON_SERVER: the client cannot render it
 * exactly (an array of such elements neither). */
pqs__json_how_t pqs__json_how(uint32_t type, int flags, uint32_t *elem);

#endif
