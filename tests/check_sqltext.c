/* SQL text as psql reads it: splitting a script into statements, and
 * :variables, on every quoting form; and interpolation compared with
 * psql's own for the same script. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pqs_test.h"

/* The statements of `sql`, joined by "|" (blank ones left out). */
static void split(const char *sql, char *out, size_t cap) {
  size_t len = strlen(sql), at = 0;
  out[0] = '\0';
  while (at < len) {
    size_t n = pqs_sql_statement(sql + at, len - at);
    ck_assert_uint_gt(n, 0);
    if (!pqs_sql_is_blank(sql + at, n)) {
      size_t o = strlen(out);
      snprintf(out + o, cap - o, "%s%.*s", o ? "|" : "", (int)n, sql + at);
    }
    at += n;
  }
}

START_TEST(statements) {
  char got[2048];
  split("SELECT 1; SELECT 2;", got, sizeof(got));
  ck_assert_str_eq(got, "SELECT 1;| SELECT 2;");
  split("SELECT ';'; SELECT \"a;b\" FROM t;", got, sizeof(got));
  ck_assert_str_eq(got, "SELECT ';';| SELECT \"a;b\" FROM t;");
  split("SELECT 'it''s;'; SELECT E'\\';'; SELECT 3", got, sizeof(got));
  ck_assert_str_eq(got, "SELECT 'it''s;';| SELECT E'\\';';| SELECT 3");
  split("SELECT 1 -- no; end\n; SELECT /* a; /* b; */ c; */ 2;", got,
        sizeof(got));
  ck_assert_str_eq(got, "SELECT 1 -- no; end\n;| SELECT /* a; /* b; */ c; */ 2;");
  split("CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ "
        "LANGUAGE sql; SELECT $$;$$, $1;",
        got, sizeof(got));
  ck_assert_str_eq(got, "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; "
                        "$body$ LANGUAGE sql;| SELECT $$;$$, $1;");
  split("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2);", got,
        sizeof(got));
  ck_assert_str_eq(got,
                   "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT "
                   "2);");
  split("  ;\n-- only a comment\n/* and another */ ;", got, sizeof(got));
  ck_assert_str_eq(got, "");
  split("SELECT 'unterminated; SELECT 2", got, sizeof(got));
  ck_assert_str_eq(got, "SELECT 'unterminated; SELECT 2");
}
END_TEST

static const char *vars(const char *name, void *data) {
  (void)data;
  static const char *const table[][2] = {
      {"v", "it's"},        {"b", "a\\b"},     {"d", "$$x$$"},
      {"id", "My \"Tbl\""}, {"n", "42"},       {"empty", ""},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (strcmp(name, table[i][0]) == 0)
      return table[i][1];
  return NULL;
}

static void interp(const char *sql, const char *want) {
  char *out = NULL;
  ck_assert_int_eq(pqs_sql_interpolate(sql, vars, NULL, &out), 0);
  ck_assert_msg(strcmp(out, want) == 0, "%s\n  gave %s\n  want %s", sql, out,
                want);
  pqs_free(out);
}

/* Where psql reads a meta-command: the first backslash that is code. */
START_TEST(meta_commands) {
  const struct {
    const char *sql;
    long at; /* -1: none */
  } cases[] = {
      {"SELECT 1;\n\\echo hi\n", 10},
      {"\\set x 1", 0},
      {"SELECT 'a\\b', E'c\\'d', \"e\\f\", $$g\\h$$ -- i\\j\n", -1},
      {"SELECT /* \\x /* \\y */ \\z */ 1 \\g", 30},
      {"SELECT $t$ \\ $t$, 1 \\\\", 20},
      {"", -1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t len = strlen(cases[i].sql);
    size_t want = cases[i].at < 0 ? len : (size_t)cases[i].at;
    ck_assert_msg(pqs_sql_meta(cases[i].sql, len) == want,
                  "case %zu: %zu, want %zu", i,
                  pqs_sql_meta(cases[i].sql, len), want);
  }
}
END_TEST

START_TEST(variables) {
  interp("SELECT :n", "SELECT 42");
  interp("SELECT :'v'", "SELECT 'it''s'");
  interp("SELECT :'b'", "SELECT  E'a\\\\b'");
  interp("SELECT :'d'", "SELECT '$$x$$'");
  interp("SELECT 1 AS :\"id\"", "SELECT 1 AS \"My \"\"Tbl\"\"\"");
  interp("SELECT :'empty'", "SELECT ''");
  /* never inside what is not code, never a cast, never unknown ones */
  interp("SELECT ':n', \":n\", $$:n$$, $t$:n$t$, E'\\':n'",
         "SELECT ':n', \":n\", $$:n$$, $t$:n$t$, E'\\':n'");
  interp("SELECT 1 -- :n\n, 2 /* :n */", "SELECT 1 -- :n\n, 2 /* :n */");
  interp("SELECT 1::int, :n::int", "SELECT 1::int, 42::int");
  interp("SELECT :nope, :'nope', :", "SELECT :nope, :'nope', :");
  interp("SELECT a[1:n]", "SELECT a[142]"); /* as psql: slices too */
  char *out = NULL;
  ck_assert_int_eq(pqs_sql_interpolate(NULL, vars, NULL, &out), PQS_EINVAL);
  pqs_free(NULL);
}
END_TEST

/* The same script through psql -v and through pqs_sql_interpolate, run on
 * the server: the same rows. */
START_TEST(like_psql) {
  const char *script =
      "SELECT :'v' AS a, :'b' AS b, :'d' AS c, length(:'v') AS n, "
      "':v' AS untouched, $$:v$$ AS dollar, :n + 1 AS plus;\n";
  char path[] = "/tmp/pqs-vars-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert(write(fd, script, strlen(script)) == (ssize_t)strlen(script));
  close(fd);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "psql -X -q -A -t -v ON_ERROR_STOP=1 -v v=\"it's\" -v 'b=a\\b' "
           "-v 'd=$$x$$' -v n=42 -d '%s' -f %s",
           pt_conninfo(), path);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  char theirs[1024] = "";
  size_t n = fread(theirs, 1, sizeof(theirs) - 1, p);
  theirs[n] = '\0';
  ck_assert_int_eq(pclose(p), 0);
  unlink(path);

  char *sql = NULL;
  ck_assert_int_eq(pqs_sql_interpolate(script, vars, NULL, &sql), 0);
  PGconn *admin = pt_admin();
  PGresult *res = PQexec(admin, sql);
  ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
                PQresultErrorMessage(res));
  char ours[1024] = "";
  for (int c = 0; c < PQnfields(res); c++) {
    size_t o = strlen(ours);
    snprintf(ours + o, sizeof(ours) - o, "%s%s", c ? "|" : "",
             PQgetvalue(res, 0, c));
  }
  strcat(ours, "\n");
  PQclear(res);
  PQfinish(admin);
  pqs_free(sql);
  ck_assert_str_eq(ours, theirs);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sqltext");
  TCase *tc = tcase_create("sqltext");
  tcase_add_test(tc, statements);
  tcase_add_test(tc, variables);
  tcase_add_test(tc, meta_commands);
  tcase_add_test(tc, like_psql);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
