/* virt-qed-migrate: one look at a domain's state, for the hook's
 * convert-on-stop worker (src/hook/hook-worker.c), which polls it. */
#ifndef VQM_VIRT_POLL_H
#define VQM_VIRT_POLL_H

#include "vqm-error.h"

/* Is the domain (UUID or name) running on uri (NULL: libvirt's
 * default)?  1 running, 0 not, -1 unknown (err set: no connection, no
 * such domain).  When name or uuid are not NULL and the domain was
 * found, they receive its name and UUID (malloc'ed; the caller frees
 * what they held). */
int vqm_virt_domain_active(const char *uri, const char *domain, char **name,
                           char **uuid, struct vqm_error *err);

#endif
