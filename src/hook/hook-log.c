/* virt-qed-migrate hook: where its messages go.
 *
 * stderr (libvirt's log, and the API caller when the hook fails),
 * syslog (LOG_DAEMON: journald takes it where it runs) and, for warnings
 * and errors, hook.log in the state directory: libvirt shows a hook's
 * stderr only when the hook fails, at its default log level.  The worker
 * logs time-stamped lines on its stdout (the log file) and to syslog.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "hook-internal.h"
#include "vqm-quote.h"

const char *vqm_hook_log_dir;

static void
timestamp(char *ts, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;

    if (localtime_r(&now, &tm))
        strftime(ts, size, "%Y-%m-%d %H:%M:%S", &tm);
    else
        snprintf(ts, size, "?");
}

/* Append one line to <state-dir>/hook.log (never through a link, only a
 * regular file of ours that nobody else can write). */
static void
log_file(const char *kind, const char *msg)
{
    char path[PATH_MAX], ts[64];
    struct stat st;
    CLEANUP_CLOSE int fd = -1;

    if (!vqm_hook_log_dir || snprintf(path, sizeof path, "%s/hook.log",
                                      vqm_hook_log_dir) >= (int) sizeof path)
        return;
    if (mkdir(vqm_hook_log_dir, 0700) < 0 && errno != EEXIST)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY
              | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()
        || (st.st_mode & 022))
        return;
    timestamp(ts, sizeof ts);
    dprintf(fd, "%s [%ld] hook: %s: %s\n", ts, (long) getpid(), kind, msg);
}

void
vqm_hook_log(int prio, const char *fmt, ...)
{
    char buf[4096];
    CLEANUP_FREE char *q = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Names in it are escaped already (printable, vqm_q); this catches
     * what libraries put into messages (vqm_quote_line keeps the
     * backslashes of those escapes). */
    q = vqm_quote_line(buf);
    fprintf(stderr, "virt-qed-migrate: %s: %s\n",
            prio <= LOG_ERR ? "error" : prio == LOG_WARNING ? "warning"
            : "hook", q ? q : buf);
    syslog(prio, "%s", q ? q : buf);
    if (prio <= LOG_WARNING)
        log_file(prio <= LOG_ERR ? "error" : "warning", q ? q : buf);
}

void
vqm_hook_worker_log(const char *fmt, ...)
{
    char buf[2048], ts[64];
    CLEANUP_FREE char *q = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    q = vqm_quote_line(buf);
    printf("%s [%ld] %s\n", ts, (long) getpid(), q ? q : buf);
    fflush(stdout);
    syslog(LOG_NOTICE, "%s", q ? q : buf);
}
