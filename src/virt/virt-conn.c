/* virt-qed-migrate: connections and the libvirt error boundary.
 *
 * Connections are opened with libvirt's default authentication callback
 * (virConnectAuthPtrDefault), as virsh and libguestfs do: a URI that
 * needs a SASL user name, a password or a polkit answer prompts on the
 * terminal instead of failing.
 *
 * libvirt prints every error on stderr by default; we install a no-op
 * error function once and copy libvirt's last error into our own
 * struct vqm_error instead, so that the command line reports it once.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "virt-internal.h"

static void
ignore_error(void *opaque, virErrorPtr e)
{
}

void
vqm_virt_init_errors(void)
{
    static bool done;

    if (!done) {
        virSetErrorFunc(NULL, ignore_error);
        done = true;
    }
}

virConnectPtr
vqm_virt_connect(const char *uri, bool read_only)
{
    vqm_virt_init_errors();
    return virConnectOpenAuth(uri, virConnectAuthPtrDefault,
                              read_only ? VIR_CONNECT_RO : 0);
}

int
vqm_virt_error(struct vqm_error *err, enum vqm_error_code code,
               const char *fmt, ...)
{
    char prefix[512];
    va_list ap;
    virErrorPtr e = virGetLastError();

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (e && e->code == VIR_ERR_NO_DOMAIN)
        code = VQM_ERR_NOTFOUND;
    return vqm_error_set(err, code, "%s: %s", prefix,
                         e && e->message ? e->message : "unknown libvirt "
                         "error");
}

double
vqm_now(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (double) tv.tv_sec + tv.tv_usec / 1e6;
}

char *
vqm_virt_volume_path(virConnectPtr conn, const char *pool,
                     const char *volume, bool refresh)
{
    CLEANUP_VIR_POOL virStoragePoolPtr sp =
        virStoragePoolLookupByName(conn, pool);
    CLEANUP_VIR_VOL virStorageVolPtr v = NULL;

    if (!sp)
        return NULL;
    if (refresh)
        virStoragePoolRefresh(sp, 0);
    if (!(v = virStorageVolLookupByName(sp, volume)))
        return NULL;
    return virStorageVolGetPath(v);
}
