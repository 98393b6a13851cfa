/* virt-qed-migrate: error descriptions passed up from the libraries.
 *
 * Library functions never print and never exit.  They return -1 (or NULL)
 * and fill the optional last argument, a struct vqm_error, which the
 * command line reports once.  A NULL err is allowed everywhere.
 */
#ifndef VQM_ERROR_H
#define VQM_ERROR_H

#include <stddef.h>

enum vqm_error_code {
    VQM_ERR_NONE = 0,
    VQM_ERR_IO,          /* read/write/sync failed (EIO and friends) */
    VQM_ERR_NOSPC,       /* no space left on the device */
    VQM_ERR_CORRUPT,     /* an image's metadata is invalid */
    VQM_ERR_UNSUPPORTED, /* valid but not something we can handle */
    VQM_ERR_INVALID,     /* bad argument or usage */
    VQM_ERR_BUSY,        /* the image is in use (QEMU locks, running domain) */
    VQM_ERR_REFUSED,     /* policy refused it (unsafe backing file, ...) */
    VQM_ERR_NOMEM,
    VQM_ERR_NOTFOUND,    /* file, pool, volume or domain does not exist */
    VQM_ERR_LIBVIRT,     /* a libvirt call failed */
    VQM_ERR_INTERNAL,
};

struct vqm_error {
    enum vqm_error_code code;
    int errnum;          /* errno when the error came from a system call */
    char msg[1024];
};

/* Set err (if not NULL) from a printf format.  Always returns -1 so that
 * callers can write "return vqm_error_set (...);".
 */
int vqm_error_set(struct vqm_error *err, enum vqm_error_code code,
                  const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like vqm_error_set, appends ": strerror(errnum)" and derives the code
 * from errnum (ENOSPC/EDQUOT -> VQM_ERR_NOSPC, ENOENT -> VQM_ERR_NOTFOUND,
 * ENOMEM -> VQM_ERR_NOMEM, others -> VQM_ERR_IO).  Returns -1.
 */
int vqm_error_set_errno(struct vqm_error *err, int errnum,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the existing message with "prefix: ".  Returns -1. */
int vqm_error_prefix(struct vqm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Forget the error in err (if not NULL): an expected failure that the
 * caller handled. */
void vqm_error_clear(struct vqm_error *err);

/* Steal a pointer: return *pp and set *pp to NULL. */
#define vqm_steal(pp) \
    __extension__ ({ __typeof__(*(pp)) vqm_s_ = *(pp); *(pp) = NULL; vqm_s_; })

#endif /* VQM_ERROR_H */
