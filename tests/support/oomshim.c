/* A preload shim that makes the process's own allocations fail: every
 * malloc, calloc and realloc of the whole process, libpq's and libuv's
 * included, counted from main() (the loader and libc's start-up are left
 * alone).
 *
 *   PQS_OOM_AT=k       the k-th allocation fails (k >= 1)
 *   PQS_OOM_STICKY=1   ... and every one after it
 *   PQS_OOM_COUNT=F    at exit, write the number of allocations to F
 *   PQS_OOM_REPORT=F   if the process dies of a signal, write to F the
 *                      failed allocation's call stack and the crash's
 *
 * A program can also arm it from inside (pqs_oom_fail_from_now, found with
 * dlsym), to fail everything from a chosen point on.
 *
 * Test code only; its own memory comes from glibc's __libc_* functions. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

#define FRAMES 32

static atomic_int armed;
static atomic_uint_fast64_t calls;
static uint64_t fail_at;
static int sticky;
static __thread int inside __attribute__((tls_model("initial-exec"))); /* backtrace() may allocate: never fail it */
static void *failed_stack[FRAMES];
static int failed_depth;
static atomic_int failed_once;

static int should_fail(void) {
  if (!atomic_load_explicit(&armed, memory_order_relaxed) || inside)
    return 0;
  uint64_t n = atomic_fetch_add(&calls, 1) + 1;
  if (fail_at == 0 || n < fail_at || (n > fail_at && !sticky))
    return 0;
  if (!atomic_exchange(&failed_once, 1)) {
    inside = 1;
    failed_depth = backtrace(failed_stack, FRAMES);
    inside = 0;
  }
  return 1;
}

void *malloc(size_t n) { return should_fail() ? NULL : __libc_malloc(n); }

void *calloc(size_t n, size_t size) {
  return should_fail() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n) {
  return should_fail() ? NULL : __libc_realloc(p, n);
}

/* From inside the program: every allocation fails from now on. */
void pqs_oom_fail_from_now(void) {
  fail_at = atomic_load(&calls) + 1;
  sticky = 1;
  atomic_store(&armed, 1);
}

/* From inside the program: the next allocation fails, only that one. */
void pqs_oom_fail_next(void) {
  fail_at = atomic_load(&calls) + 1;
  sticky = 0;
  atomic_store(&armed, 1);
}

void pqs_oom_stop_failing(void) { fail_at = 0; }

/* ---- reports ---- */

static void write_stack(int fd, const char *title, void **frames, int n) {
  dprintf(fd, "%s\n", title);
  backtrace_symbols_fd(frames, n, fd); /* allocates nothing */
}

static void on_crash(int sig) {
  const char *path = getenv("PQS_OOM_REPORT");
  int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : 2;
  if (fd >= 0) {
    dprintf(fd, "signal %d\n", sig);
    if (failed_depth > 0)
      write_stack(fd, "failed allocation:", failed_stack, failed_depth);
    void *here[FRAMES];
    inside = 1;
    int n = backtrace(here, FRAMES);
    write_stack(fd, "crash:", here, n);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void write_count(void) {
  const char *path = getenv("PQS_OOM_COUNT");
  if (path == NULL)
    return;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    dprintf(fd, "%llu\n", (unsigned long long)atomic_load(&calls));
    close(fd);
  }
}

/* ---- counting from main ---- */

typedef int (*main_fn)(int, char **, char **);
static main_fn real_main;

static int wrapped_main(int argc, char **argv, char **envp) {
  const char *at = getenv("PQS_OOM_AT");
  const char *st = getenv("PQS_OOM_STICKY");
  fail_at = at ? strtoull(at, NULL, 10) : 0;
  sticky = st && *st == '1';
  void *warm[2];
  inside = 1;
  backtrace(warm, 2); /* loads what backtrace needs, before any failure */
  inside = 0;
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);
  signal(SIGABRT, on_crash);
  signal(SIGFPE, on_crash);
  atexit(write_count);
  atomic_store(&armed, 1);
  return real_main(argc, argv, envp);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                      void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end) {
  typedef int (*start_fn)(main_fn, int, char **, void (*)(void),
                          void (*)(void), void (*)(void), void *);
  start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
  real_main = main;
  return real(wrapped_main, argc, argv, init, fini, rtld_fini, stack_end);
}
