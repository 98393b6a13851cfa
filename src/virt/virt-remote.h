/* virt-qed-migrate: connections to another host (-c qemu+ssh://HOST/...).
 *
 * Discovery and --dry-run work through a remote connection: image headers
 * are read through libvirt (the first 64 KiB of each storage volume,
 * downloaded with virStorageVolDownload) and probed like local files.
 * The conversion itself works on the files and must run on their host.
 */
#ifndef VQM_VIRT_REMOTE_H
#define VQM_VIRT_REMOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "virt.h"

/* Does uri name another host?  A URI with a server part (qemu+ssh://h/,
 * qemu+tcp://h/, qemu://h/, ...) other than localhost and this host's own
 * name, and not a unix-socket transport.  host (may be NULL) receives the
 * server name.  NULL or empty uri: false.
 */
bool vqm_virt_uri_remote(const char *uri, char *host, size_t hostlen);

/* The URI that names the same daemon from its own host: qemu+ssh://h/system
 * -> qemu:///system (query dropped).  malloc'd, or NULL.
 */
char *vqm_virt_uri_on_host(const char *uri);

/* The path a backing name stored in the image at image_path names on the
 * remote host: absolute as is, relative to the image's directory
 * (lexically: the file is not here to resolve links).  malloc'd, or NULL.
 */
char *vqm_remote_backing_path(const char *image_path, const char *name);

/* vqm_probe_file() for path on the host of the remote connection conn
 * (a virConnectPtr): path must be a storage volume there (files outside
 * pools cannot be read from here: VQM_ERR_UNSUPPORTED).  dev and ino are
 * 0; file_size is the volume's physical size when libvirt can tell.
 * 0 or -1.
 */
int vqm_remote_probe(void *conn, const char *path, struct vqm_probe *p,
                     struct vqm_error *err);

#endif
