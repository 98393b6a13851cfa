/* virt-qed-migrate: the libvirt qemu hook, as the programs call it.
 *
 * vqm_hook_run and vqm_hook_filter never call libvirt: the small helper
 * virt-qed-migrate-hook ($(pkglibexecdir)), which the installed hook
 * script runs at every domain start, links them without libvirt.  The
 * convert-on-stop worker (vqm_hook_worker_*, hook-worker.c) waits for
 * the domain through libvirt and is part of the full program only.
 * Each returns a process exit status (0 allowed, 1 refused or failed).
 */
#ifndef VQM_HOOK_H
#define VQM_HOOK_H

#include <stdbool.h>

#include "vqm-error.h"

/* The hook for libvirt's OPERATION[:SUB-OPERATION], the domain XML on
 * stdin; state_dir (or NULL) overrides hook.conf's. */
int vqm_hook_run(const char *op, const char *state_dir);

/* --hook-filter: the domain XML on stdin, the rewritten XML on stdout
 * (nothing when nothing changed).  -1 with err set on failure. */
int vqm_hook_filter(const char *state_dir, struct vqm_error *err);

/* The convert-on-stop worker of one domain (name or UUID), as the full
 * program runs it (virt-qed-migrate --hook-worker=DOMAIN).
 * vqm_hook_worker_wait logs on stdout and syslog, waits until libvirt
 * reports the domain shut off and the state directory is free, and
 * returns 1 when the conversion should run now (*uuid and *name set,
 * malloc'ed), 0 when there is nothing to do, -1 on failure (logged).
 * vqm_hook_worker_done logs the outcome of the conversion (its exit
 * exit status; incomplete: something was skipped) and returns the
 * worker's exit status. */
/* How the worker asks whether a domain runs: the full program passes
 * vqm_virt_domain_active (src/virt/virt-poll.h), so that this module
 * stays free of libvirt.  1 running, 0 not, -1 unknown (err set);
 * name and uuid, when not NULL, receive the domain's (malloc'ed). */
typedef int (*vqm_hook_domain_state_fn)(const char *uri, const char *domain,
                                        char **name, char **uuid,
                                        struct vqm_error *err);
int vqm_hook_worker_wait(vqm_hook_domain_state_fn state, const char *uri,
                         const char *domain, const char *state_dir,
                         char **uuid, char **name);
int vqm_hook_worker_done(const char *name, const char *uuid, int status,
                         bool incomplete);

/* The program the hook starts as its worker: $VQM_PROGRAM, or
 * $(bindir)/virt-qed-migrate. */
const char *vqm_hook_program(void);

#endif
