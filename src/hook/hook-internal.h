/* virt-qed-migrate: the libvirt qemu hook, shared between its files.
 *
 *   hook-conf.c     hook.conf: policy, uri, state_dir, timeout, log
 *   hook-log.c      messages: stderr, syslog, hook.log; the worker's log
 *   hook-domain.c   the domain XML on stdin: its images and their kinds
 *   hook-filter.c   the XML filter (QED disks that are qcow2 now)
 *   hook-markers.c  migration markers (<state_dir>/active/UUID)
 *   hook-spawn.c    the detached convert-on-stop worker process
 *   hook.c          the operations (vqm_hook_run, vqm_hook_filter)
 *   hook-worker.c   the worker's waiting, in the full program (libvirt)
 *
 * Everything but hook-worker.c is cheap and bounded and never calls
 * libvirt: libvirt runs hooks synchronously.
 */
#ifndef VQM_HOOK_INTERNAL_H
#define VQM_HOOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domxml/domxml.h"
#include "vqm-error.h"

/* Exit statuses of the hook: the operation is allowed (or there was
 * nothing to do), or refused (libvirt aborts it). */
#define HOOK_ALLOW 0
#define HOOK_REFUSE 1

#define HOOK_MAX_XML (16u * 1024 * 1024)
#define HOOK_DEFAULT_TIMEOUT 10
#define HOOK_MAX_DISKS 4096
/* Markers read from <state_dir>/active, and the bytes read of each. */
#define HOOK_MAX_MARKERS 4096
#define HOOK_MAX_MARKER_SIZE 65536
/* Where the first <uuid> element may start in a domain XML libvirt
 * wrote (it follows <name> at the top). */
#define HOOK_UUID_SCAN 65536

/* ---- hook-conf.c ---- */

enum hook_policy {
    POLICY_WARN,
    POLICY_DENY,
    POLICY_CONVERT_ON_STOP,
    POLICY_INVALID,              /* config error: refuse QED starts */
};

struct hook_conf {
    const char *path;
    enum hook_policy policy;
    char *uri;
    char *state_dir;
    char *log;
    unsigned timeout;
    char problem[512];           /* why POLICY_INVALID */
};

/* Load the policy file (state_dir, when not NULL, wins over the file's).
 * A missing file means the defaults (warn); a file that cannot be read
 * or does not parse makes the policy POLICY_INVALID with the reason in
 * c->problem.  -1 only when out of memory. */
int vqm_hook_conf_load(struct hook_conf *c, const char *path,
                       const char *state_dir);
void vqm_hook_conf_free(struct hook_conf *c);
const char *vqm_hook_policy_name(enum hook_policy p);
/* VQM_HOOK_CONF, or the installed hook.conf. */
const char *vqm_hook_conf_path(void);

#define CLEANUP_HOOK_CONF __attribute__((cleanup(vqm_hook_conf_free)))

/* ---- hook-log.c ---- */

/* The state directory hook.log goes to, once known (NULL: none). */
extern const char *vqm_hook_log_dir;

/* A message on stderr ("virt-qed-migrate: error|warning|hook: ..."), to
 * syslog, and for warnings and errors to hook.log. */
void vqm_hook_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A time-stamped line of the worker on stdout (its log file) and to
 * syslog. */
void vqm_hook_worker_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ---- hook-domain.c ---- */

enum img_kind {
    IMG_MISSING,                 /* ENOENT */
    IMG_UNREADABLE,              /* other errors, or not a file/device */
    IMG_QED,
    IMG_QCOW2,
    IMG_OTHER,
};

/* One layer of a disk (its top source or a <backingStore>) naming an
 * image, as vqm_domxml_disks lists them. */
struct hook_disk {
    unsigned index;              /* the disk's position in the XML */
    unsigned depth;              /* 0: the top, 1...: backingStore */
    enum vqm_disk_source form;   /* file, block or volume */
    char *path;                  /* file/dev path, or "pool/volume" */
    char *claimed;               /* driver/format type attribute */
    char *target;                /* target dev of the disk */
    enum img_kind kind;
    uint64_t size;               /* QED virtual size when known */
};

struct hook_domain {
    struct vqm_domxml *x;
    char *name;
    char *uuid;                  /* validated, lower case, or NULL */
    struct hook_disk *disks;
    size_t ndisks;
};

enum img_kind vqm_hook_image_kind(const char *path, uint64_t *size);
bool vqm_hook_uuid_valid(const char *u);
/* Parse the domain XML in buf; d is set (and must be freed) either way. */
int vqm_hook_domain_parse(const char *buf, size_t len, struct hook_domain *d,
                          struct vqm_error *err);
/* Read stdin (HOOK_MAX_XML at most) into *out. */
int vqm_hook_read_stdin(char **out, size_t *outlen, struct vqm_error *err);
/* Read and parse the domain XML on stdin. */
int vqm_hook_domain_load(struct hook_domain *d, struct vqm_error *err);
void vqm_hook_domain_free(struct hook_domain *d);
/* The QED images of the domain, and "vda /a.qed, vdb /b.qed" for
 * messages (malloc'ed, NULL when out of memory). */
size_t vqm_hook_count_qed(const struct hook_domain *d);
char *vqm_hook_qed_list(const struct hook_domain *d);

#define CLEANUP_HOOK_DOMAIN __attribute__((cleanup(vqm_hook_domain_free)))

/* ---- hook-filter.c ---- */

/* Rewrite every image the XML calls QED that is qcow2 now; the number
 * of layers rewritten. */
size_t vqm_hook_filter_domain(struct hook_domain *d);
/* The domain's XML on stdout. */
int vqm_hook_write_xml(const struct hook_domain *d, struct vqm_error *err);

/* ---- hook-markers.c ---- */

struct hook_markers {
    bool unknown;                /* the directory exists but is unreadable */
    size_t n;
    char **uuid;
    char **name;                 /* NULL when the marker names none */
};

void vqm_hook_markers_load(const struct hook_conf *c, struct hook_markers *m);
void vqm_hook_markers_free(struct hook_markers *m);
/* The marker for this name or uuid (either may be NULL), or NULL. */
const char *vqm_hook_markers_match(const struct hook_markers *m,
                                   const char *name, const char *uuid);
/* The first <uuid> of the XML in buf without parsing it (lower case). */
bool vqm_hook_scan_uuid(const char *buf, size_t len, char uuid[37]);
/* HOOK_REFUSE (with the message logged) when a marker names the
 * domain, or when load_error is set and any marker exists. */
int vqm_hook_check_markers(const struct hook_conf *c,
                           const struct hook_markers *m, const char *name,
                           const char *uuid, const char *load_error);

#define CLEANUP_HOOK_MARKERS __attribute__((cleanup(vqm_hook_markers_free)))

/* ---- hook-spawn.c ---- */

/* Start the convert-on-stop worker of domain uuid, detached. */
int vqm_hook_spawn_worker(const struct hook_conf *c, const char *name,
                          const char *uuid);

/* ---- hook.c ---- */

/* The decisions of the operations, on a parsed domain. */
int vqm_hook_op_prepare(const struct hook_conf *c, struct hook_domain *d);
int vqm_hook_op_release(const struct hook_conf *c, struct hook_domain *d);

#endif
