/* virt-qed-migrate hook: starting the convert-on-stop worker.
 *
 * The hook never waits for libvirt (libvirtd waits for the hook): at
 * "release end" it starts the worker fully detached (double fork and
 * setsid, no controlling terminal, none of the hook's descriptors: libvirt
 * waits for EOF on the hook's stdout and stderr) and returns.  The
 * worker is the full program, virt-qed-migrate --hook-worker=UUID, found
 * at its installed path ($(bindir), or $VQM_PROGRAM).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "hook.h"
#include "hook-internal.h"
#include "hooks/hook-paths.h"

const char *
vqm_hook_program(void)
{
    const char *p = getenv("VQM_PROGRAM");

    return p && *p ? p : VQM_PROGRAM;
}

/* The state directory, created 0700 when missing, if it is ours and
 * nobody else can write it: its descriptor, or -1. */
static int
open_state_dir(const char *state_dir)
{
    struct stat st;
    int dfd;

    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return -1;
    dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    if (fstat(dfd, &st) < 0 || st.st_uid != geteuid()
        || (st.st_mode & 022)) {
        close(dfd);
        return -1;
    }
    return dfd;
}

/* The worker's log: log= of hook.conf, or hook.log in the state
 * directory.  Never through a link, only a regular file of ours that
 * nobody else can write, in a state directory that passes the same test.
 * The descriptor, or -1. */
static int
open_log(const struct hook_conf *c)
{
    struct stat st;
    CLEANUP_CLOSE int dfd = -1;
    int fd;
    const char *name = c->log;

    if (!c->log || !*c->log) {
        if ((dfd = open_state_dir(c->state_dir)) < 0)
            return -1;
        name = "hook.log";
    }
    fd = openat(dfd >= 0 ? dfd : AT_FDCWD, name, O_WRONLY | O_CREAT
                | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                0600);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
        || st.st_uid != geteuid() || (st.st_mode & 022)
        || st.st_nlink != 1) {
        close(fd);
        return -1;
    }
    return fd;
}

/* In the detached process: stdin on /dev/null, stdout and stderr on the
 * log (or /dev/null), no other descriptor. */
static int
redirect(const struct hook_conf *c)
{
    int fd, maxfd;

    if ((fd = open("/dev/null", O_RDWR)) < 0)
        return -1;
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
    if ((fd = open_log(c)) >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    maxfd = (int) sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;
    for (fd = STDERR_FILENO + 1; fd < maxfd; fd++)
        close(fd);
    return 0;
}

/* The grandchild: becomes the worker. */
static void __attribute__((noreturn))
run_worker(const struct hook_conf *c, const char *name, const char *uuid)
{
    const char *prog = vqm_hook_program();

    alarm(0);
    signal(SIGALRM, SIG_DFL);
    signal(SIGHUP, SIG_IGN);
    umask(077);
    if (chdir("/") < 0 || redirect(c) < 0)
        _exit(1);
    vqm_hook_worker_log("domain '%s' (%s) stopped: converting its QED disks "
                        "(virt-qed-migrate -c %s --domain %s --state-dir "
                        "%s)", name, uuid, c->uri, uuid, c->state_dir);
    execl(prog, "virt-qed-migrate", "--hook-worker", uuid, "-c", c->uri,
          "--state-dir", c->state_dir, (char *) NULL);
    vqm_hook_worker_log("domain '%s' (%s) stopped: not converted: cannot "
                        "run %s: %s", name, uuid, prog, strerror(errno));
    _exit(1);
}

int
vqm_hook_spawn_worker(const struct hook_conf *c, const char *name,
                      const char *uuid)
{
    pid_t pid;
    int status;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        vqm_hook_log(LOG_ERR, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        pid = fork();
        if (pid != 0)
            _exit(pid < 0 ? 1 : 0);
        run_worker(c, name, uuid);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}
