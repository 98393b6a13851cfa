/* virt-qed-migrate: the libvirt modes of the small program.
 *
 * The program in $(bindir) links neither libvirt nor the libvirt module:
 * the file modes (--file, --inspect) and the hook modes (--hook,
 * --hook-filter) start fast, which matters for the hook that libvirtd
 * runs at every domain start.  The libvirt modes (--pool, --domain,
 * --all, --rollback) replace the process with the full program,
 * virt-qed-migrate-libvirt, given the original command line.  It is
 * looked for in $VQM_LIBVIRT_HELPER, then next to this program (build
 * tree), then in $(pkglibexecdir).
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

#define VQM_LIBVIRT_PROGRAM "virt-qed-migrate-libvirt"

/* Find the full program; returns a static buffer or NULL (errno set). */
const char *
vqm_libvirt_program(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("VQM_LIBVIRT_HELPER");
    ssize_t n;
    char *slash;

    if (env && *env)
        return env;

    n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        slash = strrchr(path, '/');
        if (slash && (size_t) (slash + 1 - path)
            + sizeof VQM_LIBVIRT_PROGRAM <= sizeof path) {
            strcpy(slash + 1, VQM_LIBVIRT_PROGRAM);
            if (access(path, X_OK) == 0)
                return path;
        }
    }
    snprintf(path, sizeof path, "%s/%s", PKGLIBEXECDIR, VQM_LIBVIRT_PROGRAM);
    return path;
}

static int
exec_libvirt_program(void)
{
    const char *prog = vqm_libvirt_program();

    fflush(stdout);
    fflush(stderr);
    execv(prog, vqm_argv);
    vqm_report_error("cannot run %s (needed for the libvirt modes): %s",
                     prog, strerror(errno));
    return VQM_EXIT_FAILED;
}

int
vqm_cmd_virt(const struct vqm_opts *o)
{
    (void) o;
    return exec_libvirt_program();
}

int
vqm_cmd_rollback(const struct vqm_opts *o)
{
    (void) o;
    return exec_libvirt_program();
}
