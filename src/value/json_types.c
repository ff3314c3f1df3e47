/* The built-in types row_to_json() renders, by oid (PostgreSQL 15's
 * pg_type, oids fixed since each type came): how, and the type's array. */
#include <stdlib.h>

#include "json_types.h"
#include "pqstream.h"

typedef struct {
  uint32_t oid;
  uint32_t array; /* its array type; 0 where the array is the server's */
  pqs__json_how_t how;
  /* 1: a binary value's text (made here) is the server's text under any
   * setting, so it renders in binary too. */
  int binary_ok;
} type_t;

/* Sorted by oid. Left out: int2vector and oidvector (arrays in json, not in their text), aclitem
 * and the pseudo-types. */
static const type_t types[] = {
    {16, 1000, PQS__JSON_BOOL, 1},        /* bool */
    {17, 1001, PQS__JSON_STRING, 0},      /* bytea (bytea_output) */
    {18, 1002, PQS__JSON_STRING, 0},      /* "char" */
    {19, 1003, PQS__JSON_STRING, 1},      /* name */
    {20, 1016, PQS__JSON_NUMBER, 1},      /* int8 */
    {21, 1005, PQS__JSON_NUMBER, 1},      /* int2 */
    {23, 1007, PQS__JSON_NUMBER, 1},      /* int4 */
    {24, 1008, PQS__JSON_STRING, 0},      /* regproc */
    {25, 1009, PQS__JSON_STRING, 1},      /* text */
    {26, 1028, PQS__JSON_STRING, 0},      /* oid */
    {27, 1010, PQS__JSON_STRING, 0},      /* tid */
    {28, 1011, PQS__JSON_STRING, 0},      /* xid */
    {29, 1012, PQS__JSON_STRING, 0},      /* cid */
    {114, 199, PQS__JSON_JSON, 1},        /* json */
    {142, 143, PQS__JSON_STRING, 0},      /* xml */
    {600, 1017, PQS__JSON_STRING, 0},     /* point */
    {601, 1018, PQS__JSON_STRING, 0},     /* lseg */
    {602, 1019, PQS__JSON_STRING, 0},     /* path */
    {603, 1020, PQS__JSON_STRING, 0},     /* box: arrays of it split at ; */
    {604, 1027, PQS__JSON_STRING, 0},     /* polygon */
    {628, 629, PQS__JSON_STRING, 0},      /* line */
    {650, 651, PQS__JSON_STRING, 0},      /* cidr */
    {700, 1021, PQS__JSON_NUMBER, 0},     /* float4 (extra_float_digits) */
    {701, 1022, PQS__JSON_NUMBER, 0},     /* float8 */
    {718, 719, PQS__JSON_STRING, 0},      /* circle */
    {774, 775, PQS__JSON_STRING, 0},      /* macaddr8 */
    {790, 791, PQS__JSON_STRING, 0},      /* money */
    {829, 1040, PQS__JSON_STRING, 0},     /* macaddr */
    {869, 1041, PQS__JSON_STRING, 0},     /* inet */
    {1042, 1014, PQS__JSON_STRING, 1},    /* bpchar */
    {1043, 1015, PQS__JSON_STRING, 1},    /* varchar */
    {1082, 1182, PQS__JSON_DATE, 0},      /* date */
    {1083, 1183, PQS__JSON_STRING, 0},    /* time */
    {1114, 1115, PQS__JSON_TIMESTAMP, 0}, /* timestamp */
    {1184, 1185, PQS__JSON_TIMESTAMP, 0}, /* timestamptz */
    {1186, 1187, PQS__JSON_STRING, 0},    /* interval (IntervalStyle) */
    {1266, 1270, PQS__JSON_STRING, 0},    /* timetz */
    {1560, 1561, PQS__JSON_STRING, 0},    /* bit */
    {1562, 1563, PQS__JSON_STRING, 0},    /* varbit */
    {1700, 1231, PQS__JSON_NUMBER, 1},    /* numeric */
    {1790, 2201, PQS__JSON_STRING, 0},    /* refcursor */
    {2202, 2207, PQS__JSON_STRING, 0},    /* regprocedure */
    {2203, 2208, PQS__JSON_STRING, 0},    /* regoper */
    {2204, 2209, PQS__JSON_STRING, 0},    /* regoperator */
    {2205, 2210, PQS__JSON_STRING, 0},    /* regclass */
    {2206, 2211, PQS__JSON_STRING, 0},    /* regtype */
    {2950, 2951, PQS__JSON_STRING, 1},    /* uuid */
    {2970, 2949, PQS__JSON_STRING, 0},    /* txid_snapshot */
    {3220, 3221, PQS__JSON_STRING, 0},    /* pg_lsn */
    {3614, 3643, PQS__JSON_STRING, 0},    /* tsvector */
    {3615, 3645, PQS__JSON_STRING, 0},    /* tsquery */
    {3734, 3735, PQS__JSON_STRING, 0},    /* regconfig */
    {3769, 3770, PQS__JSON_STRING, 0},    /* regdictionary */
    {3802, 3807, PQS__JSON_JSON, 0},      /* jsonb */
    {3904, 3905, PQS__JSON_STRING, 0},    /* int4range */
    {3906, 3907, PQS__JSON_STRING, 0},    /* numrange */
    {3908, 3909, PQS__JSON_STRING, 0},    /* tsrange */
    {3910, 3911, PQS__JSON_STRING, 0},    /* tstzrange */
    {3912, 3913, PQS__JSON_STRING, 0},    /* daterange */
    {3926, 3927, PQS__JSON_STRING, 0},    /* int8range */
    {4072, 4073, PQS__JSON_STRING, 0},    /* jsonpath */
    {4089, 4090, PQS__JSON_STRING, 0},    /* regnamespace */
    {4096, 4097, PQS__JSON_STRING, 0},    /* regrole */
    {4191, 4192, PQS__JSON_STRING, 0},    /* regcollation */
    {4451, 6150, PQS__JSON_STRING, 0},    /* int4multirange */
    {4532, 6151, PQS__JSON_STRING, 0},    /* nummultirange */
    {4533, 6152, PQS__JSON_STRING, 0},    /* tsmultirange */
    {4534, 6153, PQS__JSON_STRING, 0},    /* tstzmultirange */
    {4535, 6155, PQS__JSON_STRING, 0},    /* datemultirange */
    {4536, 6157, PQS__JSON_STRING, 0},    /* int8multirange */
    {5038, 5039, PQS__JSON_STRING, 0},    /* pg_snapshot */
    {5069, 271, PQS__JSON_STRING, 0},     /* xid8 */
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

/* Looked up once per schema (row.c keeps the answer), so a binary
 * search for a type and a scan for an array type cost nothing per row. */
static int by_oid(const void *key, const void *entry) {
  uint32_t k = *(const uint32_t *)key, o = ((const type_t *)entry)->oid;
  return k < o ? -1 : k > o;
}

static const type_t *scalar(uint32_t oid) {
  return bsearch(&oid, types, NTYPES, sizeof(types[0]), by_oid);
}

static const type_t *array_of(uint32_t oid) {
  for (size_t i = 0; i < NTYPES; i++)
    if (types[i].array == oid && oid != 0)
      return &types[i];
  return NULL;
}

static pqs__json_how_t allowed(const type_t *t, int flags) {
  if ((flags & PQS__JSON_BINARY) && !t->binary_ok)
    return PQS__JSON_SERVER;
  if ((t->how == PQS__JSON_DATE || t->how == PQS__JSON_TIMESTAMP) &&
      !(flags & PQS__JSON_ISO_DATES))
    return PQS__JSON_SERVER;
  return t->how;
}

pqs__json_how_t pqs__json_how(uint32_t type, int flags, uint32_t *elem) {
  *elem = 0;
  const type_t *t = scalar(type);
  if (t != NULL)
    return allowed(t, flags);
  if (flags & PQS__JSON_BINARY)
    return PQS__JSON_SERVER; /* a binary array's text is not made here */
  if ((t = array_of(type)) == NULL)
    return PQS__JSON_SERVER;
  *elem = t->oid;
  return allowed(t, flags);
}
