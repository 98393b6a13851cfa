/* virt-qed-migrate: scope-based cleanup for the plain C resources.
 *
 * Variables marked with these macros must be initialised (to NULL or -1).
 * Hand ownership out with vqm_steal(&p).  Modules with their own types
 * (libvirt, libxml2, images) define their CLEANUP_* macros in their own
 * headers so that this file depends on nothing but libc.
 */
#ifndef VQM_CLEANUP_H
#define VQM_CLEANUP_H

#include <stdio.h>

void vqm_cleanup_free(void *ptr);
void vqm_cleanup_fclose(void *ptr);
void vqm_cleanup_close(void *ptr);

#define CLEANUP_FREE __attribute__((cleanup(vqm_cleanup_free)))
#define CLEANUP_FCLOSE __attribute__((cleanup(vqm_cleanup_fclose)))
#define CLEANUP_CLOSE __attribute__((cleanup(vqm_cleanup_close)))

/* Hand out a descriptor marked CLEANUP_CLOSE: return *fdp, set it to
 * -1. */
static inline int
vqm_steal_fd(int *fdp)
{
    int fd = *fdp;

    *fdp = -1;
    return fd;
}

/* Define fn(type *p), which releases *p unless NULL, for use as
 * __attribute__((cleanup(fn))) in a module's own CLEANUP_* macros. */
#define VQM_CLEANUP_DEFINE(fn, type, release)   \
    static inline void                          \
    fn(type *p)                                 \
    {                                           \
        if (*p)                                 \
            release(*p);                        \
    }

#endif
