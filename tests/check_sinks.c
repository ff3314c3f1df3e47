#define _XOPEN_SOURCE 700 /* posix_openpt */
#define _DEFAULT_SOURCE   /* cfmakeraw */
/* Sinks: output compared byte for byte with the server's own COPY TO
 * STDOUT, JSON Lines compared value for value with row_to_json (by the
 * server, as jsonb), and readers that are slow or go away. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "memsource.h"
#include "pqs_test.h"

/* ---- a reader on a thread, at the other end of a pipe ---- */

typedef struct {
  int fd;
  char *data;
  size_t len, cap;
  int keep;
  size_t close_after; /* close the pipe after this many bytes; 0: never */
  unsigned delay_ms;  /* a slow reader sleeps between reads */
  size_t total;
} reader_t;

static void reader_main(void *arg) {
  reader_t *r = arg;
  char buf[65536];
  for (;;) {
    ssize_t n = read(r->fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    r->total += (size_t)n;
    if (r->keep) {
      if (r->len + (size_t)n > r->cap) {
        r->cap = (r->len + (size_t)n) * 2;
        r->data = realloc(r->data, r->cap);
      }
      memcpy(r->data + r->len, buf, (size_t)n);
      r->len += (size_t)n;
    }
    if (r->close_after && r->total >= r->close_after)
      break;
    if (r->delay_ms)
      uv_sleep(r->delay_ms);
  }
  close(r->fd);
}

typedef struct {
  int calls;
  pt_done_t done;
  uint64_t bytes;
} sunk_t;

static void on_sunk(pqs_sink_t *sink, const pqs_done_t *done, uint64_t bytes,
                    void *data) {
  ck_assert_ptr_nonnull(sink);
  sunk_t *k = data;
  k->calls++;
  pt_record(&k->done, done);
  k->bytes = bytes;
}

/* Runs stream `s` into a pipe read by `r` on a thread, to the end. */
static void sink_to_reader(uv_loop_t *loop, pqs_stream_t *s,
                           const pqs_sink_opts_t *opts, reader_t *r,
                           sunk_t *k) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  r->fd = fds[0];
  uv_thread_t th;
  ck_assert_int_eq(uv_thread_create(&th, reader_main, r), 0);
  ck_assert_int_eq(pqs_sink_fd(s, loop, fds[1], opts, on_sunk, k), 0);
  close(fds[1]); /* the sink writes to its own dup */
  while (k->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k->calls, 1);
  ck_assert_int_eq(uv_thread_join(&th), 0);
}

/* ---- the public formatter, row by row ---- */

typedef struct {
  pqs_formatter_t *f;
  int header;
  char *data;
  size_t len;
  pt_done_t done;
} formatted_t;

static void add(formatted_t *t, const char *p, size_t n) {
  t->data = realloc(t->data, t->len + n + 1);
  memcpy(t->data + t->len, p, n);
  t->len += n;
}

static int fmt_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  formatted_t *t = data;
  const char *out;
  size_t n;
  ck_assert_int_eq(pqs_format_header(t->f, cols, &out, &n), 0);
  if (t->header)
    add(t, out, n);
  return PQS_CONTINUE;
}

static int fmt_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  formatted_t *t = data;
  const char *out;
  size_t n;
  ck_assert_int_eq(pqs_format_row(t->f, row, &out, &n), 0);
  add(t, out, n);
  return PQS_CONTINUE;
}

static void fmt_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((formatted_t *)data)->done);
}

/* `sql` rendered row by row with pqs_format_row (malloc'd, *len bytes). */
static char *format_all(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                        pqs_format_t format, int header, size_t *len) {
  formatted_t t = {.header = header};
  ck_assert_int_eq(pqs_formatter_new(&t.f, format), 0);
  pqs_stream_t *s = pt_query(ctx, sql, NULL);
  pqs_stream_cbs_t cbs = {
      .on_columns = fmt_columns, .on_row = fmt_row, .on_done = fmt_done};
  pt_stream_wait(loop, s, &cbs, &t, &t.done);
  ck_assert_int_eq(t.done.status, 0);
  pqs_formatter_free(t.f);
  *len = t.len;
  return t.data ? t.data : calloc(1, 1);
}

/* Our output of `sql` in `format` against the server's COPY: the sink's,
 * and the public formatter's. */
static void compare_with_copy(const char *sql, pqs_format_t format, int header,
                              const char *copy_options) {
  PGconn *admin = pt_admin();
  pt_sql(admin, pt_awkward_sql);
  size_t want_len;
  char *want = pt_server_copy(admin, sql, copy_options, &want_len);
  PQfinish(admin);

  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pt_stream(ctx, &s, sql, 0, NULL, NULL), 0);
  pqs_sink_opts_t opts = {.format = format, .header = header};
  reader_t r = {.keep = 1};
  sunk_t k = {0};
  sink_to_reader(loop, s, &opts, &r, &k);
  ck_assert_msg(k.done.status == 0, "%s: %s", pqs_err_name(k.done.status),
                k.done.message);
  ck_assert_int_eq(k.bytes, r.len);
  pt_assert_same_bytes(sql, want, want_len, r.data, r.len);
  size_t flen;
  char *formatted = format_all(loop, ctx, sql, format, header, &flen);
  pt_assert_same_bytes("pqs_format_row", want, want_len, formatted, flen);
  free(formatted);
  free(want);
  free(r.data);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}

START_TEST(csv_like_copy) {
  compare_with_copy("SELECT * FROM awkward ORDER BY id", PQS_FORMAT_CSV, 1,
                    "(FORMAT csv, HEADER)");
  compare_with_copy("SELECT * FROM awkward ORDER BY id", PQS_FORMAT_CSV, 0,
                    "(FORMAT csv)");
}
END_TEST

/* A lone column: "\." alone on a line is quoted, as COPY does. */
START_TEST(csv_single_column) {
  compare_with_copy("SELECT t AS \"\\.\" FROM awkward ORDER BY id",
                    PQS_FORMAT_CSV, 1, "(FORMAT csv, HEADER)");
  compare_with_copy("SELECT \"we,ird \"\"name\" FROM awkward ORDER BY id",
                    PQS_FORMAT_CSV, 1, "(FORMAT csv, HEADER)");
}
END_TEST

START_TEST(tsv_like_copy) {
  compare_with_copy("SELECT * FROM awkward ORDER BY id", PQS_FORMAT_TSV, 0, "");
  compare_with_copy("SELECT * FROM awkward ORDER BY id", PQS_FORMAT_TSV, 1,
                    "(HEADER)");
}
END_TEST

START_TEST(empty_result_header) {
  compare_with_copy("SELECT * FROM awkward WHERE false", PQS_FORMAT_CSV, 1,
                    "(FORMAT csv, HEADER)");
  compare_with_copy("SELECT * FROM awkward WHERE false", PQS_FORMAT_TSV, 1,
                    "(HEADER)");
}
END_TEST

START_TEST(jsonl_like_row_to_json) {
  PGconn *admin = pt_admin();
  pt_sql(admin, pt_awkward_sql);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(
      pt_stream(ctx, &s, "SELECT * FROM awkward ORDER BY id", 0, NULL, NULL),
      0);
  pqs_sink_opts_t opts = {.format = PQS_FORMAT_JSONL};
  reader_t r = {.keep = 1};
  sunk_t k = {0};
  sink_to_reader(loop, s, &opts, &r, &k);
  ck_assert_int_eq(k.done.status, 0);
  size_t flen;
  char *formatted = format_all(loop, ctx, "SELECT * FROM awkward ORDER BY id",
                               PQS_FORMAT_JSONL, 0, &flen);
  pt_assert_same_bytes("pqs_format_row", r.data, r.len, formatted, flen);
  free(formatted);
  pqs_formatter_t *f;
  ck_assert_int_eq(pqs_formatter_new(&f, (pqs_format_t)7), PQS_EINVAL);
  pt_close(loop, ctx);
  pt_loop_free(loop);

  int lines = pt_assert_like_row_to_json(admin, r.data, r.len);
  ck_assert_int_eq(lines, 12);
  free(r.data);
  PQfinish(admin);
}
END_TEST

START_TEST(csv_to_file) {
  PGconn *admin = pt_admin();
  pt_sql(admin, pt_awkward_sql);
  size_t want_len;
  const char *sql = "SELECT * FROM awkward ORDER BY id";
  char *want = pt_server_copy(admin, sql, "(FORMAT csv, HEADER)", &want_len);
  PQfinish(admin);
  char path[] = "/tmp/pqs-sink-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pt_stream(ctx, &s, sql, 0, NULL, NULL), 0);
  pqs_sink_opts_t opts = {.format = PQS_FORMAT_CSV, .header = 1};
  sunk_t k = {0};
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, &opts, on_sunk, &k), 0);
  while (k.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k.done.status, 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  char *got = malloc(want_len + 16);
  ssize_t n = pread(fd, got, want_len + 16, 0);
  close(fd);
  unlink(path);
  pt_assert_same_bytes("file", want, want_len, got, n < 0 ? 0 : (size_t)n);
  free(want);
  free(got);
}
END_TEST

/* ---- backpressure and readers that go away ---- */

START_TEST(slow_reader_bounded) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  long rss0 = pt_rss_kb();
  const int rows = 400000;
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pt_stream(ctx, &s,
                             "SELECT g, repeat('x', 250) FROM "
                             "generate_series(1, 400000) g",
                             0, NULL, NULL),
                   0);
  reader_t r = {.delay_ms = 1};
  sunk_t k = {0};
  sink_to_reader(loop, s, NULL, &r, &k);
  long grew = pt_rss_kb() - rss0;
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.done.rows, rows);
  size_t want = 0; /* "g\t" + 250 x + "\n" */
  for (int g = 1; g <= rows; g++)
    want += (size_t)snprintf(NULL, 0, "%d", g) + 1 + 250 + 1;
  ck_assert_int_eq(r.total, want);
  ck_assert_int_eq(k.bytes, want);
  ck_assert_msg(grew < 64 * 1024, "RSS grew by %ld kB for %zu bytes written",
                grew, want);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(reader_goes_away) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pt_stream(ctx, &s, "SELECT generate_series(1, 1000000000)",
                             0, NULL, NULL),
                   0);
  reader_t r = {.close_after = 1 << 20};
  sunk_t k = {0};
  double t0 = pt_now();
  sink_to_reader(loop, s, NULL, &r, &k);
  ck_assert_msg(pt_now() - t0 < 10, "took %.1fs", pt_now() - t0);
  ck_assert_int_eq(k.done.status, UV_EPIPE);
  ck_assert_uint_ge(k.bytes, 1 << 20);
  pt_assert_idle(pid);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- a sink over rows in memory, after a map: no server at all ---- */

static const char *mnames[] = {"id", "word"};
static const uint32_t mtypes[] = {20, 25};
static const char *mvalues[] = {"1", "plain",          "2", NULL,  "3", "",
                                "4", "with \"quote\"", "5", "a\tb"};
static const pt_table_t mtable = {2, mnames, mtypes, 5, mvalues};

static const pqs_column_t swap_cols[] = {{"word", 25}, {"id", 20}, {"ok", 16}};

static int swap(pqs_stream_t *s, const pqs_row_t *in, pqs_out_t *out,
                void *data) {
  (void)s;
  (void)data;
  pqs_out_pass(out, 0, in, 1);
  pqs_out_pass(out, 1, in, 0);
  return pqs_out_set(out, 2, "t", 1);
}

static void memory_case(pqs_format_t format, int header, const char *want) {
  uv_loop_t *loop = pt_loop_new();
  pqs_stream_t *s = pt_mem_stream(loop, &mtable);
  ck_assert_int_eq(pqs_stream_map(s, swap_cols, 3, swap, NULL, NULL), 0);
  pqs_sink_opts_t opts = {.format = format, .header = header};
  reader_t r = {.keep = 1};
  sunk_t k = {0};
  sink_to_reader(loop, s, &opts, &r, &k);
  ck_assert_int_eq(k.done.status, 0);
  pt_assert_same_bytes("memory rows", want, strlen(want), r.data, r.len);
  free(r.data);
  pt_loop_free(loop);
}

START_TEST(memory_rows_through_map) {
  memory_case(PQS_FORMAT_CSV, 1,
              "word,id,ok\nplain,1,t\n,2,t\n\"\",3,t\n"
              "\"with \"\"quote\"\"\",4,t\na\tb,5,t\n");
  memory_case(PQS_FORMAT_TSV, 0,
              "plain\t1\tt\n\\N\t2\tt\n\t3\tt\nwith \"quote\"\t4\tt\n"
              "a\\tb\t5\tt\n");
  memory_case(PQS_FORMAT_JSONL, 0,
              "{\"word\":\"plain\",\"id\":1,\"ok\":true}\n"
              "{\"word\":null,\"id\":2,\"ok\":true}\n"
              "{\"word\":\"\",\"id\":3,\"ok\":true}\n"
              "{\"word\":\"with \\\"quote\\\"\",\"id\":4,\"ok\":true}\n"
              "{\"word\":\"a\\tb\",\"id\":5,\"ok\":true}\n");
}
END_TEST

/* A map column declared bool that gets other text than t or f: passed
 * as a string, never silently turned into false. */
static int bool_words(pqs_stream_t *s, const pqs_row_t *in, pqs_out_t *out,
                      void *data) {
  (void)s;
  (void)data;
  static const char *const words[] = {"t", "f", "yes", "", "T"};
  int64_t id = 0;
  pqs_row_int64(in, 0, &id);
  pqs_out_pass(out, 0, in, 1);
  pqs_out_pass(out, 1, in, 0);
  const char *w = words[(id - 1) % 5];
  return pqs_out_set(out, 2, w, strlen(w));
}

START_TEST(declared_bool_keeps_other_text) {
  uv_loop_t *loop = pt_loop_new();
  pqs_stream_t *s = pt_mem_stream(loop, &mtable);
  ck_assert_int_eq(pqs_stream_map(s, swap_cols, 3, bool_words, NULL, NULL), 0);
  pqs_sink_opts_t opts = {.format = PQS_FORMAT_JSONL};
  reader_t r = {.keep = 1};
  sunk_t k = {0};
  sink_to_reader(loop, s, &opts, &r, &k);
  ck_assert_int_eq(k.done.status, 0);
  const char *want = "{\"word\":\"plain\",\"id\":1,\"ok\":true}\n"
                     "{\"word\":null,\"id\":2,\"ok\":false}\n"
                     "{\"word\":\"\",\"id\":3,\"ok\":\"yes\"}\n"
                     "{\"word\":\"with \\\"quote\\\"\",\"id\":4,\"ok\":\"\"}\n"
                     "{\"word\":\"a\\tb\",\"id\":5,\"ok\":\"T\"}\n";
  pt_assert_same_bytes("bool words", want, strlen(want), r.data, r.len);
  free(r.data);
  pt_loop_free(loop);
}
END_TEST

/* A terminal: the sink writes through uv_tty_t. */
START_TEST(tty_sink) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  ck_assert_int_ge(master, 0);
  ck_assert_int_eq(grantpt(master), 0);
  ck_assert_int_eq(unlockpt(master), 0);
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  ck_assert_int_ge(slave, 0);
  struct termios raw;
  ck_assert_int_eq(tcgetattr(slave, &raw), 0);
  cfmakeraw(&raw); /* no \n -> \r\n on the way */
  ck_assert_int_eq(tcsetattr(slave, TCSANOW, &raw), 0);
  ck_assert_int_eq(uv_guess_handle(slave), UV_TTY);
  const char *want = "1,plain\n2,\n3,\"\"\n4,\"with \"\"quote\"\"\"\n5,a\tb\n";
  /* The reader stops at the last byte: a pty reports no end of file
   * while any slave descriptor is open. */
  reader_t r = {.keep = 1, .fd = master, .close_after = strlen(want)};
  uv_thread_t th;
  ck_assert_int_eq(uv_thread_create(&th, reader_main, &r), 0);
  uv_loop_t *loop = pt_loop_new();
  pqs_stream_t *s = pt_mem_stream(loop, &mtable);
  pqs_sink_opts_t opts = {.format = PQS_FORMAT_CSV};
  sunk_t k = {0};
  ck_assert_int_eq(pqs_sink_fd(s, loop, slave, &opts, on_sunk, &k), 0);
  while (k.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(uv_thread_join(&th), 0);
  pt_assert_same_bytes("tty", want, strlen(want), r.data, r.len);
  free(r.data);
  pt_loop_free(loop);
  close(slave);
}
END_TEST

/* A libuv stream the caller owns: one end of a socket pair. */
START_TEST(sink_to_a_uv_stream) {
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  reader_t r = {.keep = 1, .fd = sv[0]};
  uv_thread_t th;
  ck_assert_int_eq(uv_thread_create(&th, reader_main, &r), 0);
  uv_loop_t *loop = pt_loop_new();
  uv_pipe_t out;
  ck_assert_int_eq(uv_pipe_init(loop, &out, 0), 0);
  ck_assert_int_eq(uv_pipe_open(&out, sv[1]), 0);
  pqs_stream_t *s = pt_mem_stream(loop, &mtable);
  pqs_sink_opts_t opts = {.format = PQS_FORMAT_CSV, .header = 1};
  sunk_t k = {0};
  ck_assert_int_eq(pqs_sink_uv(s, (uv_stream_t *)&out, &opts, on_sunk, &k), 0);
  while (k.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(uv_is_closing((uv_handle_t *)&out), 0); /* still ours */
  uv_close((uv_handle_t *)&out, NULL); /* closes sv[1]: the reader ends */
  pt_loop_free(loop);
  ck_assert_int_eq(uv_thread_join(&th), 0);
  const char *want = "id,word\n1,plain\n2,\n3,\"\"\n"
                     "4,\"with \"\"quote\"\"\"\n5,a\tb\n";
  pt_assert_same_bytes("uv stream", want, strlen(want), r.data, r.len);
  ck_assert_int_eq(k.bytes, strlen(want));
  free(r.data);
}
END_TEST

/* The psql formats through the library (the tool's tests hold them to
 * psql's bytes): settings copied, the footer only after success, a
 * failed query's rows left unterminated, and what they refuse. */
static char *psql_print(const char *sql, pqs_format_t format,
                        const pqs_print_opts_t *print, int *status) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pt_stream(ctx, &s, sql, 0, NULL, NULL), 0);
  char sep[8] = ";";
  pqs_print_opts_t copy = *print;
  if (copy.fieldsep != NULL)
    copy.fieldsep = sep; /* the sink must take its own copy */
  pqs_sink_opts_t opts = {.format = format, .print = &copy};
  reader_t r = {.keep = 1};
  sunk_t k = {0};
  sink_to_reader(loop, s, &opts, &r, &k);
  sep[0] = 'X';
  *status = k.done.status;
  pt_close(loop, ctx);
  pt_loop_free(loop);
  r.data = realloc(r.data, r.len + 1);
  r.data[r.len] = '\0';
  return r.data;
}

START_TEST(psql_formats) {
  int status;
  pqs_print_opts_t p = {.fieldsep = ";", .null = "(null)"};
  char *got = psql_print("SELECT g, NULLIF(g, 2) AS h FROM "
                         "generate_series(1, 3) g", PQS_FORMAT_UNALIGNED, &p,
                         &status);
  ck_assert_int_eq(status, 0);
  ck_assert_str_eq(got, "g;h\n1;1\n2;(null)\n3;3\n(3 rows)\n");
  free(got);
  p = (pqs_print_opts_t){.tuples_only = 1, .recordsep_zero = 1};
  got = psql_print("SELECT 'a|b' AS x UNION ALL SELECT ''",
                   PQS_FORMAT_UNALIGNED, &p, &status);
  ck_assert_int_eq(status, 0);
  ck_assert_int_eq(memcmp(got, "a|b\0\0", 5), 0);
  free(got);
  p = (pqs_print_opts_t){.csv_fieldsep = '\t'};
  got = psql_print("SELECT 1 AS \"a\tb\", '' AS c, NULL AS d",
                   PQS_FORMAT_PSQL_CSV, &p, &status);
  ck_assert_int_eq(status, 0);
  ck_assert_str_eq(got, "\"a\tb\"\tc\td\n1\t\t\n");
  free(got);
  /* a query that fails midway: its rows, no footer, no last newline */
  p = (pqs_print_opts_t){0};
  got = psql_print("SELECT 1 / (3 - g) AS q FROM generate_series(1, 5) g",
                   PQS_FORMAT_UNALIGNED, &p, &status);
  ck_assert_int_eq(status, PQS_ESQL);
  ck_assert_msg(strncmp(got, "q\n", 2) == 0 && strstr(got, "rows)") == NULL &&
                    got[strlen(got) - 1] != '\n',
                "a failed query printed '%s'", got);
  free(got);
}
END_TEST

START_TEST(psql_formats_refused) {
  uv_loop_t *loop = pt_loop_new();
  pqs_stream_t *s = pt_mem_stream(loop, &mtable);
  sunk_t k = {0};
  pqs_print_opts_t quote = {.csv_fieldsep = '"'};
  pqs_sink_opts_t opts = {.format = PQS_FORMAT_PSQL_CSV, .print = &quote};
  ck_assert_int_eq(pqs_sink_fd(s, loop, 1, &opts, on_sunk, &k), PQS_EINVAL);
  ck_assert_int_eq(pqs_stream_close(s), 0); /* still ours, unstarted */
  pqs_formatter_t *f = NULL;
  ck_assert_int_eq(pqs_formatter_new(&f, PQS_FORMAT_UNALIGNED), PQS_EINVAL);
  ck_assert_int_eq(pqs_formatter_new(&f, PQS_FORMAT_PSQL_CSV), PQS_EINVAL);
  ck_assert_ptr_null(f);
  pt_loop_free(loop);
  ck_assert_int_eq(k.calls, 0);
}
END_TEST

START_TEST(sink_arguments) {
  uv_loop_t *loop = pt_loop_new();
  pqs_stream_t *s = pt_mem_stream(loop, &mtable);
  sunk_t k = {0};
  ck_assert_int_eq(pqs_sink_fd(s, loop, 1, NULL, NULL, &k), PQS_EINVAL);
  ck_assert_int_eq(pqs_sink_fd(s, loop, -1, NULL, on_sunk, &k), PQS_EINVAL);
  pqs_sink_opts_t bad = {.format = 9};
  ck_assert_int_eq(pqs_sink_fd(s, loop, 1, &bad, on_sunk, &k), PQS_EINVAL);
  ck_assert_int_eq(pqs_stream_close(s), 0); /* still ours, unstarted */
  pt_loop_free(loop);
  ck_assert_int_eq(k.calls, 0);
}
END_TEST

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("sinks");
  TCase *tc = tcase_create("sinks");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, csv_like_copy);
  tcase_add_test(tc, csv_single_column);
  tcase_add_test(tc, tsv_like_copy);
  tcase_add_test(tc, empty_result_header);
  tcase_add_test(tc, jsonl_like_row_to_json);
  tcase_add_test(tc, csv_to_file);
  tcase_add_test(tc, slow_reader_bounded);
  tcase_add_test(tc, reader_goes_away);
  tcase_add_test(tc, memory_rows_through_map);
  tcase_add_test(tc, declared_bool_keeps_other_text);
  tcase_add_test(tc, tty_sink);
  tcase_add_test(tc, sink_to_a_uv_stream);
  tcase_add_test(tc, sink_arguments);
  tcase_add_test(tc, psql_formats);
  tcase_add_test(tc, psql_formats_refused);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
