/* virt-qed-migrate: connections to another host (see virt-remote.h).
 *
 * The remote probe copies the head of a volume into an anonymous memory
 * file sized like the volume (sparse), so that the same header checks as
 * for local files (vqm_probe_file, the shared QED reader) judge it.
 * Nothing is written on the remote host.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include "cleanup.h"
#include "domxml/xml-cleanup.h"
#include "virt-internal.h"
#include "virt-remote.h"

#define HEAD_LEN 65536
/* Size given to a volume whose size libvirt cannot report (fact 1 of the
 * libvirt notes: QED over a non-raw backing file). */
#define UNKNOWN_SIZE (1ULL << 40)

bool
vqm_virt_uri_remote(const char *uri, char *host, size_t hostlen)
{
    CLEANUP_XML_URI xmlURIPtr u = NULL;
    bool remote = false;
    char self[256] = "";

    if (!uri || !*uri || !(u = xmlParseURI(uri)))
        return false;
    if (u->server && *u->server && (!u->scheme || !strstr(u->scheme, "+unix"))
        && strcmp(u->server, "localhost") != 0
        && strcmp(u->server, "127.0.0.1") != 0
        && strcmp(u->server, "::1") != 0 && strcmp(u->server, "[::1]") != 0) {
        remote = true;
        if (gethostname(self, sizeof self - 1) == 0
            && strcmp(self, u->server) == 0)
            remote = false;
        if (host && hostlen)
            snprintf(host, hostlen, "%s", u->server);
    }
    return remote;
}

char *
vqm_virt_uri_on_host(const char *uri)
{
    CLEANUP_XML_URI xmlURIPtr u = NULL;
    char *s = NULL;
    size_t n;

    if (!uri || !(u = xmlParseURI(uri)))
        return NULL;
    if (u->scheme) {
        n = strcspn(u->scheme, "+");
        if (asprintf(&s, "%.*s://%s", (int) n, u->scheme,
                     u->path ? u->path : "/") < 0)
            s = NULL;
    }
    return s;
}

char *
vqm_remote_backing_path(const char *image_path, const char *name)
{
    const char *slash = strrchr(image_path, '/');
    char *s;

    if (strncmp(name, "file:", 5) == 0)
        name += 5;
    if (name[0] == '/' || !slash)
        return strdup(name);
    if (asprintf(&s, "%.*s/%s", (int) (slash - image_path), image_path,
                 name) < 0)
        return NULL;
    return s;
}

int
vqm_remote_probe(void *conn, const char *path, struct vqm_probe *p,
                 struct vqm_error *err)
{
    CLEANUP_VIR_VOL virStorageVolPtr vol = NULL;
    CLEANUP_VIR_STREAM virStreamPtr st = NULL;
    virStorageVolInfo info;
    CLEANUP_FREE char *buf = NULL;
    CLEANUP_CLOSE int fd = -1;
    uint64_t size = UNKNOWN_SIZE;
    size_t len = 0;
    int r;

    memset(p, 0, sizeof *p);
    if (!(vol = virStorageVolLookupByPath(conn, path))) {
        virResetLastError();
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s' is not a "
                             "storage volume on the remote host: its header "
                             "cannot be read from here", path);
    }
    if (virStorageVolGetInfoFlags(vol, &info,
                                  VIR_STORAGE_VOL_GET_PHYSICAL) == 0
        && info.allocation > 0)
        size = info.allocation;
    virResetLastError();
    if (!(buf = malloc(HEAD_LEN)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (!(st = virStreamNew(conn, 0))
        || virStorageVolDownload(vol, st, 0, HEAD_LEN, 0) < 0)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot read '%s' "
                              "through libvirt", path);
    while (len < HEAD_LEN
           && (r = virStreamRecv(st, buf + len, HEAD_LEN - len)) > 0)
        len += (size_t) r;
    if (r < 0) {
        vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot read '%s' through "
                       "libvirt", path);
        virStreamAbort(st);
        return -1;
    }
    if (len < HEAD_LEN)
        virStreamFinish(st);
    else
        virStreamAbort(st);
    virResetLastError();

    fd = memfd_create("vqm-remote-probe", MFD_CLOEXEC);
    if (fd < 0 || pwrite(fd, buf, len, 0) != (ssize_t) len
        || ftruncate(fd, (off_t) (size > len ? size : len)) < 0)
        return vqm_error_set_errno(err, errno, "cannot probe '%s'", path);
    /* Probed on the memory file's descriptor: there is no path to open,
     * and errors name the volume. */
    if (vqm_probe_fd(fd, path, p, err) < 0)
        return -1;
    p->dev = 0;
    p->ino = 0;
    p->file_size = size == UNKNOWN_SIZE ? 0 : size;
    return 0;
}
