/* virt-qed-migrate: the hook modes of the full program.
 *
 *   --hook=OP[:SUBOP]    the libvirt qemu hook (what the helper
 *                        virt-qed-migrate-hook runs; src/hook)
 *   --hook-filter        the domain XML filter, by hand
 *   --hook-worker=DOMAIN the convert-on-stop worker the hook starts: it
 *                        waits for the domain to stop, then converts it
 *                        as --domain does
 */
#include <config.h>

#include <stdlib.h>
#include <syslog.h>

#include "cleanup.h"
#include "hook/hook.h"
#include "virt/virt-poll.h"
#include "options.h"
#include "vqm-io.h"

/* How long the worker's conversion waits for the state directory's lock
 * should another worker take it first (VQM_LOCK_WAIT). */
#define WORKER_LOCK_RACE_SECONDS "120"

int
vqm_cmd_hook(const struct vqm_opts *o)
{
    struct vqm_error err = { 0 };

    if (!o->hook_filter)
        return vqm_hook_run(o->hook, o->state_dir);
    if (vqm_hook_filter(o->state_dir, &err) < 0) {
        vqm_report_error("%s", err.msg);
        return VQM_EXIT_FAILED;
    }
    return VQM_EXIT_OK;
}

/* The conversion of the domain with that UUID, as "virt-qed-migrate -c
 * URI --domain UUID --state-dir DIR" runs it (the journal and the
 * markers name that command). */
static int
convert_domain(const struct vqm_opts *o, char *uuid)
{
    static char *argv[8];
    char *one[2] = { uuid, NULL };
    struct vqm_opts sub = *o;
    int n = 0;

    argv[n++] = (char *) "virt-qed-migrate";
    if (o->uri) {
        argv[n++] = (char *) "-c";
        argv[n++] = (char *) o->uri;
    }
    argv[n++] = (char *) "--domain";
    argv[n++] = uuid;
    if (o->state_dir) {
        argv[n++] = (char *) "--state-dir";
        argv[n++] = (char *) o->state_dir;
    }
    argv[n] = NULL;
    vqm_argv = argv;
    sub.hook_worker = NULL;
    sub.domains.v = one;
    sub.domains.n = 1;
    /* Another worker may take the lock first: the conversion waits. */
    setenv("VQM_LOCK_WAIT", WORKER_LOCK_RACE_SECONDS, 1);
    vqm_interrupt_install();
    return vqm_cmd_virt(&sub);
}

int
vqm_cmd_hook_worker(const struct vqm_opts *o)
{
    CLEANUP_FREE char *uuid = NULL;
    CLEANUP_FREE char *name = NULL;
    int r, status;

    openlog("virt-qed-migrate", LOG_PID, LOG_DAEMON);
    r = vqm_hook_worker_wait(vqm_virt_domain_active, o->uri, o->hook_worker,
                             o->state_dir ? o->state_dir : VQM_STATEDIR,
                             &uuid, &name);
    if (r <= 0)
        return r < 0 ? VQM_EXIT_FAILED : VQM_EXIT_OK;
    status = convert_domain(o, uuid);
    return vqm_hook_worker_done(name, uuid, status,
                                status == VQM_EXIT_SKIPPED);
}
