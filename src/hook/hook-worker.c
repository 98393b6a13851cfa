/* virt-qed-migrate hook: the convert-on-stop worker's waiting, in the
 * full program (virt-qed-migrate --hook-worker=DOMAIN).
 *
 * The hook starts it detached when a domain with QED disks stops
 * (hook-spawn.c).  It lets the stop that ran the hook finish, waits
 * until libvirt reports the domain shut off (src/virt/virt-poll.c) and
 * until no other run holds the state directory, and skips a domain that
 * was started again meanwhile; the program then runs the conversion
 * (--domain) and vqm_hook_worker_done logs its outcome.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "hook.h"
#include "hook-internal.h"

#define WORKER_WAIT_SECONDS 600
/* How long a worker waits for the state directory's lock (another
 * worker or run converting). */
#define WORKER_LOCK_SECONDS 1800

/* Wait until libvirt reports the domain inactive: the stop that ran the
 * hook has then finished.  0 when it is, -1 otherwise (logged). */
static int
wait_inactive(vqm_hook_domain_state_fn state, const char *uri,
              const char *domain, char **uuid, char **name)
{
    time_t deadline = time(NULL) + WORKER_WAIT_SECONDS;
    unsigned failures = 0;
    struct vqm_error err = { 0 };
    int active;

    while ((active = state(uri, domain, name, uuid, &err)) != 0) {
        /* Transient domains are gone once stopped; a wrong uri= in
         * hook.conf fails here too. */
        if (active < 0 && ++failures >= 5) {
            vqm_hook_worker_log("domain %s: cannot check its state on %s: "
                                "%s: not converted", domain,
                                uri ? uri : "the default URI", err.msg);
            return -1;
        }
        if (time(NULL) >= deadline) {
            vqm_hook_worker_log("domain %s still running after %d s: not "
                                "converted", domain, WORKER_WAIT_SECONDS);
            return -1;
        }
        sleep(2);
    }
    return 0;
}

/* Wait (bounded, with a log line) until no other virt-qed-migrate holds
 * the state directory's lock.  0 when free, -1 after the time limit. */
static int
wait_lock(const char *name, const char *state_dir)
{
    char path[PATH_MAX];
    time_t start = time(NULL);
    bool told = false;
    CLEANUP_CLOSE int fd = -1;
    int r;

    snprintf(path, sizeof path, "%s/lock", state_dir);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;             /* no state directory yet: nobody holds it */
    while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EWOULDBLOCK) {
        if (!told)
            vqm_hook_worker_log("domain '%s': another virt-qed-migrate is "
                                "using the state directory '%s': waiting "
                                "for it (up to %d s)", name, state_dir,
                                WORKER_LOCK_SECONDS);
        told = true;
        if (time(NULL) - start >= WORKER_LOCK_SECONDS) {
            vqm_hook_worker_log("domain '%s': the state directory '%s' "
                                "stayed in use for %d s: not converted",
                                name, state_dir, WORKER_LOCK_SECONDS);
            return -1;
        }
        sleep(2);
    }
    if (r == 0 && told)
        vqm_hook_worker_log("domain '%s': the state directory is free "
                            "after %ld s", name,
                            (long) (time(NULL) - start));
    return 0;                 /* closed: the conversion takes the lock */
}

int
vqm_hook_worker_wait(vqm_hook_domain_state_fn state, const char *uri,
                     const char *domain, const char *state_dir, char **uuid,
                     char **name)
{
    struct vqm_error err = { 0 };

    *uuid = *name = NULL;
    /* Let the stop that ran the hook finish before asking libvirt. */
    sleep(1);
    if (wait_inactive(state, uri, domain, uuid, name) < 0)
        return -1;
    if ((!*name && !(*name = strdup(domain)))
        || (!*uuid && !(*uuid = strdup(domain))))
        return -1;
    if (wait_lock(*name, state_dir) < 0)
        return -1;
    /* Started again meanwhile: it runs on its disks, nothing to do now
     * (the next stop converts them). */
    if (state(uri, *uuid, NULL, NULL, &err) == 1) {
        vqm_hook_worker_log("domain '%s' (%s) was started again before its "
                            "conversion ran: skipped; its QED disks are "
                            "converted when it stops", *name, *uuid);
        return 0;
    }
    return 1;
}

int
vqm_hook_worker_done(const char *name, const char *uuid, int status,
                     bool incomplete)
{
    if (status == 0) {
        vqm_hook_worker_log("domain '%s' (%s): conversion finished: every "
                            "disk is qcow2 now", name, uuid);
        return 0;
    }
    vqm_hook_worker_log("domain '%s' (%s): conversion %s (exit status %d); "
                        "see the messages above and run virt-qed-migrate "
                        "--domain %s by hand", name, uuid,
                        incomplete ? "incomplete" : "failed", status, uuid);
    return 1;
}
