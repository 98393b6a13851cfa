/* virt-qed-migrate: error descriptions (see vqm-error.h). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vqm-error.h"

int
vqm_error_set(struct vqm_error *err, enum vqm_error_code code,
              const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->code = code;
    err->errnum = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int
vqm_error_set_errno(struct vqm_error *err, int errnum, const char *fmt, ...)
{
    va_list ap;
    size_t len;

    if (!err)
        return -1;
    switch (errnum) {
    case ENOSPC:
    case EDQUOT:
        err->code = VQM_ERR_NOSPC;
        break;
    case ENOENT:
        err->code = VQM_ERR_NOTFOUND;
        break;
    case ENOMEM:
        err->code = VQM_ERR_NOMEM;
        break;
    default:
        err->code = VQM_ERR_IO;
    }
    err->errnum = errnum;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    len = strlen(err->msg);
    snprintf(err->msg + len, sizeof err->msg - len, ": %s", strerror(errnum));
    return -1;
}

int
vqm_error_prefix(struct vqm_error *err, const char *fmt, ...)
{
    char prefix[512];
    char old[sizeof err->msg];
    va_list ap;

    if (!err)
        return -1;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return -1;
}

void
vqm_error_clear(struct vqm_error *err)
{
    if (err) {
        err->code = VQM_ERR_NONE;
        err->errnum = 0;
        err->msg[0] = '\0';
    }
}
