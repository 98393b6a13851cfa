/* virt-qed-migrate: whole-buffer I/O and fault injection (see vqm-io.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "vqm-io.h"

#ifdef VQM_FAULT_INJECTION
/* The copy mode writes data from a second thread: the counters (and the
 * trace lines) are kept in one order under this lock. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long fault_counter_write, fault_counter_sync;

int
vqm_fault_point(const char *op, const char *path, uint64_t off, uint64_t len)
{
    const char *spec = getenv("VQM_FAULT");
    const char *trace = getenv("VQM_FAULT_TRACE");
    char fop[16], action[16];
    unsigned long n, count;
    int is_write = strcmp(op, "write") == 0;

    unsigned long total;

    pthread_mutex_lock(&fault_lock);
    count = is_write ? ++fault_counter_write : ++fault_counter_sync;
    total = fault_counter_write + fault_counter_sync;
    if (trace && *trace) {
        FILE *fp = fopen(trace, "a");
        if (fp) {
            fprintf(fp, "%s %lu %s %" PRIu64 " %" PRIu64 "\n",
                    op, count, path ? path : "-", off, len);
            fclose(fp);
        }
    }
    pthread_mutex_unlock(&fault_lock);
    if (!spec || !*spec)
        return 0;
    if (sscanf(spec, "%15[a-z]:%lu:%15[a-z]", fop, &n, action) != 3)
        return 0;
    if (strcmp(fop, "any") == 0)
        count = total;
    else if (strcmp(fop, op) != 0)
        return 0;
    if (count != n)
        return 0;
    if (strcmp(action, "kill") == 0) {
        raise(SIGKILL);
        _exit(137);
    }
    if (strcmp(action, "stop") == 0) {
        raise(SIGSTOP);
        return 0;
    }
    if (strcmp(action, "enospc") == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (strcmp(action, "eio") == 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}
#else
/* A build without --enable-fault-injection reads no test variables. */
int
vqm_fault_point(const char *op, const char *path, uint64_t off, uint64_t len)
{
    (void) op;
    (void) path;
    (void) off;
    (void) len;
    return 0;
}
#endif

int
vqm_pread_full(int fd, void *buf, size_t len, uint64_t off, int short_ok,
               const char *path, struct vqm_error *err)
{
    char *p = buf;

    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t) off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vqm_error_set_errno(err, errno, "read error on '%s' at "
                                       "offset %" PRIu64, path, off);
        }
        if (r == 0) {
            if (short_ok) {
                memset(p, 0, len);
                return 0;
            }
            return vqm_error_set(err, VQM_ERR_CORRUPT,
                                 "'%s': unexpected end of file at offset %"
                                 PRIu64, path, off);
        }
        p += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return 0;
}

int
vqm_pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
                const char *path, struct vqm_error *err)
{
    const char *p = buf;

    if (vqm_fault_point("write", path, off, len) < 0)
        return vqm_error_set_errno(err, errno, "write error on '%s' at "
                                   "offset %" PRIu64, path, off);
    while (len > 0) {
        ssize_t r = pwrite(fd, p, len, (off_t) off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vqm_error_set_errno(err, errno, "write error on '%s' at "
                                       "offset %" PRIu64, path, off);
        }
        if (r == 0)
            return vqm_error_set_errno(err, ENOSPC, "write error on '%s' at "
                                       "offset %" PRIu64, path, off);
        p += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return 0;
}

int
vqm_sync(int fd, int full, const char *path, struct vqm_error *err)
{
    if (vqm_fault_point("sync", path, 0, 0) < 0 ||
        (full ? fsync(fd) : fdatasync(fd)) < 0)
        return vqm_error_set_errno(err, errno, "cannot sync '%s'", path);
    return 0;
}

int
vqm_sync_dir(const char *path, struct vqm_error *err)
{
    char copy[PATH_MAX];
    CLEANUP_CLOSE int fd = -1;
    const char *dir;

    if (strlen(path) >= sizeof copy)
        return vqm_error_set(err, VQM_ERR_INVALID, "path too long: '%s'", path);
    strcpy(copy, path);
    dir = dirname(copy);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return vqm_error_set_errno(err, errno, "cannot open directory '%s'",
                                   dir);
    if (vqm_fault_point("sync", dir, 0, 0) < 0 || fsync(fd) < 0)
        return vqm_error_set_errno(err, errno, "cannot sync directory '%s'",
                                   dir);
    return 0;
}

int
vqm_create_temp(int dfd, const char *prefix, char *name, size_t namelen,
                struct vqm_error *err)
{
    static const char chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[12];
    char suffix[sizeof rnd + 1];
    size_t i;
    int tries, fd;

    for (tries = 0; tries < 100; tries++) {
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
            return vqm_error_set_errno(err, errno, "getrandom");
        for (i = 0; i < sizeof rnd; i++)
            suffix[i] = chars[rnd[i] % (sizeof chars - 1)];
        suffix[sizeof rnd] = '\0';
        if ((size_t) snprintf(name, namelen, "%s%s", prefix, suffix)
            >= namelen)
            return vqm_error_set(err, VQM_ERR_INVALID, "temporary name "
                                 "too long");
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                    | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return vqm_error_set_errno(err, errno, "cannot create a "
                                       "temporary file");
    }
    return vqm_error_set(err, VQM_ERR_IO, "cannot create a temporary file: "
                         "every name tried exists");
}

unsigned long long
vqm_proc_starttime(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long long t = 0;
    ssize_t n;
    int fd, field;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and ')': skip to the
     * last ')'; field 3 follows it. */
    if (!(p = strrchr(buf, ')')))
        return 0;
    p++;
    for (field = 3; field <= 22 && p; field++) {
        while (*p == ' ')
            p++;
        if (field == 22) {
            t = strtoull(p, NULL, 10);
            break;
        }
        p = strchr(p, ' ');
    }
    return t;
}

/* Two buffers: the note is written into the one the handler does not
 * use, then the index flips (a signal never sees a half-written note). */
static char interrupt_msg[2][1024];
static volatile sig_atomic_t interrupt_cur = -1;

static void
interrupt_handler(int sig)
{
    int cur = interrupt_cur;
    int saved = errno;

    if (cur >= 0) {
        ssize_t r = write(STDERR_FILENO, interrupt_msg[cur],
                          strlen(interrupt_msg[cur]));
        (void) r;
    }
    errno = saved;
    signal(sig, SIG_DFL);
    raise(sig);
}

void
vqm_interrupt_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = interrupt_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void
vqm_interrupt_note(const char *fmt, ...)
{
    int next = interrupt_cur == 0 ? 1 : 0;
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(interrupt_msg[next], sizeof interrupt_msg[next] - 1, fmt, ap);
    va_end(ap);
    n = strlen(interrupt_msg[next]);
    interrupt_msg[next][n] = '\n';
    interrupt_msg[next][n + 1] = '\0';
    interrupt_cur = next;
}

/* The open flags of descriptor fd of process pid (fdinfo), or -1. */
static long
fd_flags(const char *pid, const char *fd)
{
    char path[128], buf[512], *p;
    ssize_t n;
    int f;

    snprintf(path, sizeof path, "/proc/%s/fdinfo/%s", pid, fd);
    if ((f = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (!(p = strstr(buf, "flags:")))
        return -1;
    return strtol(p + 6, NULL, 8);
}

static int
query_cmp(const void *a, const void *b)
{
    const struct vqm_writer_query *x = *(const struct vqm_writer_query *const *) a;
    const struct vqm_writer_query *y = *(const struct vqm_writer_query *const *) b;

    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

static void
read_comm(long pid, char *comm, size_t commlen)
{
    char path[64];
    ssize_t n = 0;
    int fd;

    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, comm, commlen - 1);
        close(fd);
    }
    comm[n > 0 ? n : 0] = '\0';
    if (n > 0 && comm[n - 1] == '\n')
        comm[n - 1] = '\0';
}

/* One process's descriptors against the sorted queries. */
static void
scan_process(const char *pidname, long pid, struct vqm_writer_query **sorted,
             size_t n)
{
    char path[300];
    DIR *fds;
    struct dirent *f;

    snprintf(path, sizeof path, "/proc/%s/fd", pidname);
    if (!(fds = opendir(path)))
        return;                  /* gone, or not ours to see */
    while ((f = readdir(fds))) {
        struct vqm_writer_query key, *kp = &key, **hit;
        struct stat st;
        char fdpath[600];
        long flags;

        if (f->d_name[0] == '.')
            continue;
        snprintf(fdpath, sizeof fdpath, "%s/%s", path, f->d_name);
        if (stat(fdpath, &st) < 0)
            continue;
        key.dev = st.st_dev;
        key.ino = st.st_ino;
        hit = bsearch(&kp, sorted, n, sizeof *sorted, query_cmp);
        if (!hit || (*hit)->pid)
            continue;
        flags = fd_flags(pidname, f->d_name);
        if (flags >= 0 && (flags & O_ACCMODE) != O_RDONLY) {
            (*hit)->pid = pid;
            read_comm(pid, (*hit)->comm, sizeof (*hit)->comm);
        }
    }
    closedir(fds);
}

int
vqm_find_writers(struct vqm_writer_query *q, size_t n)
{
    struct vqm_writer_query **sorted;
    DIR *proc;
    struct dirent *e;
    size_t i, k;

    for (i = 0; i < n; i++) {
        q[i].pid = 0;
        q[i].comm[0] = '\0';
    }
    if (n == 0)
        return 0;
    if (!(sorted = malloc(n * sizeof *sorted)))
        return -1;
    for (i = 0; i < n; i++)
        sorted[i] = &q[i];
    qsort(sorted, n, sizeof *sorted, query_cmp);
    if (!(proc = opendir("/proc"))) {
        free(sorted);
        return -1;
    }
    while ((e = readdir(proc))) {
        long pid;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        pid = strtol(e->d_name, NULL, 10);
        if (pid != (long) getpid())
            scan_process(e->d_name, pid, sorted, n);
    }
    closedir(proc);
    /* One file asked twice: the scan filled one entry of the run of
     * equal keys; give its answer to the others. */
    for (i = 0; i < n; i = k) {
        const struct vqm_writer_query *w = sorted[i]->pid ? sorted[i] : NULL;

        for (k = i + 1; k < n && query_cmp(&sorted[k], &sorted[i]) == 0; k++)
            if (!w && sorted[k]->pid)
                w = sorted[k];
        for (size_t m = i; w && m < k; m++)
            if (sorted[m] != w) {
                sorted[m]->pid = w->pid;
                memcpy(sorted[m]->comm, w->comm, sizeof w->comm);
            }
    }
    free(sorted);
    return 0;
}
