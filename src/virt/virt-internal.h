/* virt-qed-migrate: src/virt internals shared between its files. */
#ifndef VQM_VIRT_INTERNAL_H
#define VQM_VIRT_INTERNAL_H

#include <stdbool.h>
#include <stdlib.h>
#include <sys/types.h>

#include <libvirt/libvirt.h>

#include "cleanup.h"
#include "virt.h"

/* ---- scope cleanup of libvirt objects ----
 *
 * As CLEANUP_FREE in common/cleanup.h: a variable marked so must be
 * initialised (NULL); its object is released when the variable goes out
 * of scope; hand it out with vqm_steal(&p).  Releasing resets libvirt's
 * last error, which is why vqm_virt_error() must read it before the
 * scope ends (a "return vqm_virt_error(...)" does).
 */
VQM_CLEANUP_DEFINE(vqm_cleanup_vir_connect, virConnectPtr, virConnectClose)
VQM_CLEANUP_DEFINE(vqm_cleanup_vir_domain, virDomainPtr, virDomainFree)
VQM_CLEANUP_DEFINE(vqm_cleanup_vir_pool, virStoragePoolPtr,
                   virStoragePoolFree)
VQM_CLEANUP_DEFINE(vqm_cleanup_vir_vol, virStorageVolPtr, virStorageVolFree)
VQM_CLEANUP_DEFINE(vqm_cleanup_vir_stream, virStreamPtr, virStreamFree)
VQM_CLEANUP_DEFINE(vqm_cleanup_vir_domain_snapshot, virDomainSnapshotPtr,
                   virDomainSnapshotFree)

#define CLEANUP_VIR_CONNECT __attribute__((cleanup(vqm_cleanup_vir_connect)))
#define CLEANUP_VIR_DOMAIN __attribute__((cleanup(vqm_cleanup_vir_domain)))
#define CLEANUP_VIR_POOL __attribute__((cleanup(vqm_cleanup_vir_pool)))
#define CLEANUP_VIR_VOL __attribute__((cleanup(vqm_cleanup_vir_vol)))
#define CLEANUP_VIR_STREAM __attribute__((cleanup(vqm_cleanup_vir_stream)))
#define CLEANUP_VIR_DOMAIN_SNAPSHOT \
    __attribute__((cleanup(vqm_cleanup_vir_domain_snapshot)))

/* The arrays virConnectListAll* and friends return: the objects and the
 * array are released together (n < 0: an empty list). */
#define VQM_VIRT_DEFINE_LIST(name, type, release)       \
    struct name {                                       \
        type *v;                                        \
        int n;                                          \
    };                                                  \
    static inline void                                  \
    name##_clear(struct name *l)                        \
    {                                                   \
        int i;                                          \
                                                        \
        for (i = 0; i < l->n; i++)                      \
            if (l->v[i])                                \
                release(l->v[i]);                       \
        free(l->v);                                     \
    }

VQM_VIRT_DEFINE_LIST(vqm_vir_domain_list, virDomainPtr, virDomainFree)
VQM_VIRT_DEFINE_LIST(vqm_vir_pool_list, virStoragePoolPtr, virStoragePoolFree)
VQM_VIRT_DEFINE_LIST(vqm_vir_vol_list, virStorageVolPtr, virStorageVolFree)
VQM_VIRT_DEFINE_LIST(vqm_vir_snapshot_list, virDomainSnapshotPtr,
                     virDomainSnapshotFree)

#define CLEANUP_VIR_DOMAIN_LIST \
    __attribute__((cleanup(vqm_vir_domain_list_clear)))
#define CLEANUP_VIR_POOL_LIST __attribute__((cleanup(vqm_vir_pool_list_clear)))
#define CLEANUP_VIR_VOL_LIST __attribute__((cleanup(vqm_vir_vol_list_clear)))
#define CLEANUP_VIR_SNAPSHOT_LIST \
    __attribute__((cleanup(vqm_vir_snapshot_list_clear)))

/* A struct vqm_probe (initialised with { 0 }) cleared at the end of its
 * scope. */
#define CLEANUP_PROBE __attribute__((cleanup(vqm_probe_clear)))

/* ---- virt-journal.c: the state directory ----
 *
 * Layout of <state-dir> (mode 0700, owned by the effective uid; every
 * entry is checked on its descriptor and never followed if a link):
 *   lock                 flock()ed by the run in progress
 *   journal              the current journal, one record per line
 *   history/journal-RUN  journals of runs that completed
 *   domains/UUID/RUN.xml definition a run replaced (0600: secrets); one
 *                        file per run, never overwritten
 *   domains/UUID.xml     the same, written by older versions (no digest:
 *                        --rollback refuses it)
 *   active/UUID          exists while that domain is being migrated
 *                        (the hook refuses to start it); holds
 *                        "PID\nname=NAME", the name to the end of file
 * RUN, a run id, is TIME.USECZ-PID (20261202T113012.123456Z-4242): it
 * sorts by time.
 *
 * A record is written and synced before a step starts ("B") and after it
 * ended ("D" done, "F" failed; "S" settled: begun by an interrupted run
 * and found consistent by a later one).  Steps and their arguments:
 *   migrate UUID NAME             a domain's migration (until redefined
 *                                 and, if we stopped it, started again)
 *   shutdown UUID NAME            we stopped this domain
 *   start UUID NAME               we started it again
 *   convert PATH OUTPUT MODE:DEV:INO
 *   rename OLD NEW
 *   rebase IMAGE NAME FORMAT      backing reference rewritten
 *   define UUID NAME
 *   save UUID RUN SHA256          domains/UUID/RUN.xml written, its digest
 *   remove PATH                   --remove-source
 *   run COMMAND                   a run of COMMAND (its command line)
 * Recovery works from what the files are now plus these records, see
 * virt-migrate.c.
 */
struct vqm_journal;

/* Open (creating with mode 0700 unless read_only) and lock the state
 * directory and read the journal.  read_only (dry run): nothing is
 * created or locked; a missing directory is an empty journal.
 */
int vqm_journal_open(const char *dir, bool read_only,
                     struct vqm_journal **out, struct vqm_error *err);
/* Close; with archive, move the journal to history/ first. */
void vqm_journal_close(struct vqm_journal *j, bool archive);
/* Did an interrupted run leave unfinished steps? */
bool vqm_journal_found(const struct vqm_journal *j);
/* Are there unfinished steps now? */
bool vqm_journal_pending(const struct vqm_journal *j);

/* Returns the record number (> 0) or -1. */
int vqm_journal_begin(struct vqm_journal *j, const char *step,
                      const char *a1, const char *a2, const char *a3,
                      struct vqm_error *err);
int vqm_journal_done(struct vqm_journal *j, int seq, struct vqm_error *err);
int vqm_journal_fail(struct vqm_journal *j, int seq, const char *msg,
                     struct vqm_error *err);

/* Queries over every record (this run and interrupted earlier ones). */
/* The new name of a file renamed (or being renamed) by a run, or NULL. */
const char *vqm_journal_renamed(const struct vqm_journal *j,
                                const char *old);
/* Was a conversion of this very file (path, device, inode) started? */
bool vqm_journal_converted(const struct vqm_journal *j, const char *path,
                           dev_t dev, ino_t ino);
/* Output of a copy conversion of path that completed, or NULL. */
const char *vqm_journal_copy_output(const struct vqm_journal *j,
                                    const char *path);
/* Was uuid stopped by us and not started again? */
bool vqm_journal_restart_owed(const struct vqm_journal *j,
                              const char *uuid);
/* Is a migration of uuid begun and not finished? */
bool vqm_journal_migrating(const struct vqm_journal *j, const char *uuid);
/* Uuids of the unfinished migrations (borrowed strings), NULL-ended;
 * free the array only. */
const char **vqm_journal_unfinished(const struct vqm_journal *j);

/* Saved definitions and active markers. */
/* Save xml, the definition of uuid this run replaces, as
 * domains/UUID/RUN.xml (a new file) and record its SHA-256.  0 or -1. */
int vqm_journal_save_xml(struct vqm_journal *j, const char *uuid,
                         const char *xml, struct vqm_error *err);
/* The definition of uuid saved by run (NULL: by the newest run that
 * saved one), found through the save records of the journal and of
 * history/, read and checked against the recorded SHA-256.  *xml and
 * *path (the file) are malloc'ed.  0, or -1 with err set (refused when
 * the digest differs or only an old-layout file without a digest is
 * there). */
int vqm_journal_saved_xml(struct vqm_journal *j, const char *uuid,
                          const char *run, char **xml, char **path,
                          struct vqm_error *err);
/* This run's id (see the layout above). */
const char *vqm_journal_run_id(const struct vqm_journal *j);
/* Create (on) or remove the active marker of uuid; name is written into
 * it for the hook.  Anything but a regular file of ours there is
 * refused. */
int vqm_journal_set_active(struct vqm_journal *j, const char *uuid,
                           const char *name, bool on,
                           struct vqm_error *err);
const char *vqm_journal_dir(const struct vqm_journal *j);
/* After a successful --rollback of domain uuid: close its interrupted
 * migration (if any), forget the copies and renames made for the source
 * paths, and drop its active marker.  0 or -1. */
int vqm_journal_rolled_back(struct vqm_journal *j, const char *uuid,
                            const char *name, const char *const *paths,
                            size_t n, struct vqm_error *err);
/* Record the start of a run ("run COMMAND"; its D is written when it
 * ends) and keep command for the active markers.  seq or -1. */
int vqm_journal_run_begin(struct vqm_journal *j, const char *command,
                          struct vqm_error *err);
/* The command line of the latest interrupted run recorded in the journal
 * (before this one), else this run's; NULL when none is known. */
const char *vqm_journal_command(const struct vqm_journal *j);
/* Call fn for every step begun and not ended (migrate and run apart, and
 * steps redone to the end later). */
void vqm_journal_each_open(const struct vqm_journal *j,
                           void (*fn)(void *opaque, int seq,
                                      const char *step,
                                      const char *const a[3]),
                           void *opaque);
/* Record that the step seq, begun by an interrupted run, is settled
 * ("S seq"): the files and definitions it concerns are consistent. */
int vqm_journal_settle(struct vqm_journal *j, int seq,
                       struct vqm_error *err);
/* Does the journal hold unfinished work beyond the domain uuid (steps
 * of other domains or files, other domains' migrations)? */
bool vqm_journal_open_beyond(const struct vqm_journal *j, const char *uuid);
/* The copies index (<state-dir>/copies), which outlives the journal:
 * the copy of src this tool linked and synced, when it is still the
 * same file (device and inode); *verified tells whether it was
 * verified.  NULL when none. */
const char *vqm_journal_known_copy(const struct vqm_journal *j,
                                   const char *src, bool *verified);
int vqm_journal_note_copy(struct vqm_journal *j, const char *src,
                          const char *dst, bool verified,
                          struct vqm_error *err);
/* The source of a recorded copy was removed (removed) or rolled back
 * to (the copy is stale). */
int vqm_journal_note_source_gone(struct vqm_journal *j, const char *src,
                                 bool removed, struct vqm_error *err);
/* The message of the last failed journal write. */
const char *vqm_journal_last_error(const struct vqm_journal *j);
/* Remove the active markers of every domain whose migration is not
 * unfinished (left by a run interrupted after it finished a domain). */
void vqm_journal_sweep_active(struct vqm_journal *j);

/* ---- virt-conn.c: connections and libvirt errors ---- */
/* Open a connection to uri (NULL: libvirt's default) with libvirt's
 * default authentication callback, so that SASL, password and polkit
 * prompts work as in virsh; read_only asks for VIR_CONNECT_RO.  NULL on
 * failure, with libvirt's last error set. */
virConnectPtr vqm_virt_connect(const char *uri, bool read_only);
/* Install the no-op libvirt error function (once). */
void vqm_virt_init_errors(void);
/* Copy libvirt's last error into err, prefixed with a formatted message;
 * returns -1. */
int vqm_virt_error(struct vqm_error *err, enum vqm_error_code code,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

double vqm_now(void);

/* Add a warning to the run's summary (printed and reported at the end). */
void vqm_virt_warn(struct vqm_virt_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* virt-conn.c: the path of volume pool/volume (after a refresh of the
 * pool with refresh), or NULL. */
char *vqm_virt_volume_path(virConnectPtr conn, const char *pool,
                           const char *volume, bool refresh);

/* virt-graph.c: the image graph */
/* Unknown or inactive pools and unknown domains named by the options
 * are errors, found before anything is created or changed. */
int vqm_virt_check_names(struct vqm_virt_run *run, struct vqm_error *err);
/* Add every volume of every active file-based pool to the graph. */
int vqm_virt_scan_pools(struct vqm_virt_run *run, struct vqm_error *err);
/* Read every domain and add the images of its disks to the graph. */
int vqm_virt_scan_domains(struct vqm_virt_run *run, bool read_only,
                          struct vqm_error *err);
struct vqm_vimage *vqm_virt_image_by_path(struct vqm_virt_run *run,
                                          const char *path);
void vqm_virt_image_free(struct vqm_vimage *img);
char *vqm_virt_new_backing_name(const struct vqm_vimage *img);
/* Does a disk of domain d use img, at the top or in its backing chain? */
bool vqm_virt_domain_uses(const struct vqm_vdomain *d,
                          const struct vqm_vimage *img);
/* The backing name to store for an overlay whose backing file moved to
 * new_path: the stored name with its last component replaced, so that a
 * relative name stays relative.  malloc'ed, NULL when out of memory. */
char *vqm_virt_moved_name(const char *stored, const char *new_path);

/* virt-decide.c: the decisions over the graph */
/* Decide everything of a plan (sorting the images, bases first). */
void vqm_virt_decide(struct vqm_virt_run *run);
void vqm_virt_propagate_blocks(struct vqm_virt_run *run);

/* The processes that have images open for writing, for every image
 * want() selects, in one pass over /proc (vqm_find_writers): a host's
 * worth of images costs one scan, not one each.  Fills writer_pid (0:
 * none) and writer_comm of the selected images, clears the others. */
void vqm_virt_scan_writers(struct vqm_virt_run *run,
                           bool (*want)(const struct vqm_vimage *img));
void vqm_virt_mark_affected(struct vqm_virt_run *run);
int vqm_virt_domain_xml(struct vqm_virt_run *run, struct vqm_vdomain *d,
                        bool plan, char **out, struct vqm_error *err);

#endif
