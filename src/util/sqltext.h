/* The SQL scanner's internal uses (sqltext.c): the COPY source binds its
 * parameters and reads a statement's first word with the same scanner
 * that splits the tool's scripts and reads its -v variables. */
#ifndef PQS_SQLTEXT_H
#define PQS_SQLTEXT_H

#include <stddef.h>

#include "buf.h"

/* Writes the value of parameter $n (1-based) to `out`: 0, or an error
 * that ends the binding. */
typedef int (*pqs__param_fn)(int n, pqs__buf_t *out, void *data);

/* Appends the `len` bytes of `sql` to `out` with each $n that is code
 * (outside literals, quoted identifiers, comments and dollar quotes; not
 * part of an identifier such as a$1) replaced by what `put` writes.
 * 0, PQS_ENOMEM, or `put`'s error. */
int pqs__sql_bind(const char *sql, size_t len, pqs__param_fn put, void *data,
                  pqs__buf_t *out);

/* The first word of code in `sql` (after white space, comments and
 * opening parentheses), lower-cased into `out` (cap bytes); "" if none
 * or if it does not fit. */
void pqs__sql_first_word(const char *sql, char *out, size_t cap);

/* The length of `sql` without a final semicolon and what follows it (white
 * space and comments only; a second statement is not looked for). */
size_t pqs__sql_trim_end(const char *sql, size_t len);

/* 1 if `sql` begins with a word COPY (statement) TO accepts (and a
 * subquery or WITH can wrap): SELECT, VALUES, TABLE, WITH, INSERT,
 * UPDATE, DELETE. */
int pqs__copy_qualifies(const char *sql);

#endif
