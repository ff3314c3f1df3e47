/* One way, one run, in a child process of its own: its peak RSS and CPU
 * are its own (with whatever it waited for, such as psql's two), and one
 * way's heap cannot slow the next. The sample comes back through a pipe;
 * the CPU and peak RSS are the kernel's, from wait4. */
#define _DEFAULT_SOURCE /* wait4 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ways.h"

int bench_in_child(const bench_t *b, int way, bench_way_fn run, sample_t *s) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    sample_t mine = {.server_cpu_s = -1};
    int rc = run(b, way, &mine);
    if (rc == 0 && write(fds[1], &mine, sizeof(mine)) != sizeof(mine))
      rc = -1;
    _exit(rc == 0 ? 0 : 1);
  }
  close(fds[1]);
  ssize_t n = pid > 0 ? read(fds[0], s, sizeof(*s)) : -1;
  close(fds[0]);
  int status = 0;
  struct rusage ru = {0};
  if (pid > 0)
    wait4(pid, &status, 0, &ru);
  /* the whole child, connecting included: the same for every way */
  s->cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  s->rss_kb = (double)ru.ru_maxrss;
  return n == sizeof(*s) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
                                                                          : -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
