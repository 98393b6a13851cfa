/* virt-qed-migrate: libvirt discovery, planning and migration.
 *
 * vqm_virt_plan() connects to libvirt, finds every image the selected
 * pools and domains use (following backing chains by reading the image
 * headers ourselves: libvirt's volume format is only a hint), and decides
 * for each QED image whether it is converted, how, and what blocks it.
 * vqm_virt_execute() then carries the plan out: shut down (if asked),
 * convert (bases before overlays), rename, rewrite backing references,
 * redefine the domains, refresh the pools and start again what it
 * stopped, recording each step in the journal (virt-journal.c) before and
 * after it happens.
 *
 * Contract with the libvirt hook: while a domain's disks are being
 * migrated, the file <state-dir>/active/<domain-uuid> exists (created
 * before the first change to any image of that domain, removed after its
 * definition was rewritten, or left in place when the run is interrupted
 * until a rerun finishes the job).  The hook refuses to start a domain
 * while that file exists.
 *
 * Library rules: nothing here prints; errors go into struct vqm_error.
 */
#ifndef VQM_VIRT_H
#define VQM_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vqm-error.h"

enum vqm_outcome {
    VQM_OUTCOME_NONE,        /* nothing to do (not QED, left alone) */
    VQM_OUTCOME_PLANNED,     /* dry run: would be done */
    VQM_OUTCOME_DONE,        /* converted / redefined */
    VQM_OUTCOME_SKIPPED,     /* refused or blocked: see reason */
    VQM_OUTCOME_FAILED,      /* tried and failed: see reason */
};

const char *vqm_outcome_name(enum vqm_outcome o);

/* One image file (a disk or a layer of a backing chain).  Images are
 * shared: two domains using the same file point at the same object.
 */
struct vqm_vimage {
    char *path;                  /* absolute path as referenced */
    char *cur_path;              /* where the file is now (differs from
                                    path after an interrupted rename) */
    char *new_path;              /* after migration (== path if kept) */
    char *format;                /* from the header: qed, qcow2, raw, ... */
    char *backing_name;          /* as stored in the header, or NULL */
    char *backing_format;        /* recorded in the header, or NULL */
    struct vqm_vimage *backing;  /* the backing image, or NULL */
    char *pool, *volume;         /* libvirt volume for this file, or NULL */
    char *vol_format;            /* libvirt's volume format, or NULL */
    char *xml_backing_format;    /* a domain's <backingStore><format> for
                                    this image's backing file, or NULL */
    dev_t dev;
    ino_t ino;
    bool exists;
    bool block_device;
    bool symlink;
    bool in_scope;               /* selected by --pool/--domain/--all */
    bool migrate;                /* QED (or converted by an interrupted
                                    run) that this run handles */
    bool convert;                /* still needs the conversion */
    bool rename;                 /* cur_path -> new_path after it */
    bool visiting;               /* chain walk in progress */
    bool copy;                   /* by copy instead of in place */
    bool converted_before;       /* a previous (interrupted) run did it */
    bool used_by_running;        /* in a running domain's live chain */
    bool live;                   /* copied live by virt-live.c (--live) */
    bool verified;               /* the engine verified the result */
    bool recovered;              /* an interrupted run's work, finished
                                    here whatever the scope */
    bool unread;                 /* not opened or read at all (reason) */
    long writer_pid;             /* a process with it open for writing */
    char writer_comm[32];        /* (vqm_virt_scan_writers), its name */
    unsigned depth;              /* 0 = no backing file */
    uint64_t virtual_size;
    uint64_t file_size;          /* before */
    uint64_t new_file_size;      /* after */
    uint64_t space_needed;       /* bytes the conversion writes (plan) */
    uint64_t fsid;               /* file system it writes to (plan) */
    double seconds;
    enum vqm_outcome outcome;
    char note[256];              /* e.g. why the name was kept */
    char reason[768];            /* why skipped or failed */
};

/* One <disk> of a domain. */
struct vqm_vdisk {
    char *target;                /* vda */
    char *device;                /* disk, cdrom, floppy, lun */
    char *type;                  /* file, block, volume, network, ... */
    bool can_hold_qed;           /* vqm_domxml_can_hold_qed */
    bool readonly, shareable, transient;
    char *source;                /* path, or pool/volume */
    char *src_pool, *src_volume; /* type='volume' */
    char *xml_format;            /* <driver type>, or NULL */
    char *new_source;            /* after migration */
    struct vqm_vimage *image;    /* top image, or NULL when left alone */
    bool has_qed;                /* some layer is QED (before) */
    enum vqm_outcome outcome;
    char reason[768];            /* why left alone, skipped or failed */
};

struct vqm_vdomain {
    char *name;
    char uuid[40];
    bool active;
    bool persistent;
    bool managed_save;
    bool in_scope;               /* named by --domain or --all */
    bool involved;               /* uses an image in scope */
    bool affected;               /* its definition must be rewritten */
    bool needs_shutdown;         /* --shutdown: stop it first */
    bool shut_down;              /* we stopped it */
    bool restart_owed;           /* stopped by an interrupted run */
    bool restarted;
    bool define_failed;          /* images changed, definition not */
    bool live;                   /* running: its disks are copied live */
    bool forced_off;             /* --force-shutdown powered it off */
    bool recovered;              /* finishes an interrupted migration */
    char *xml;                   /* inactive definition (secure) */
    struct vqm_vdisk *disks;
    size_t n_disks;
    enum vqm_outcome outcome;
    char reason[768];
    double seconds;
};

struct vqm_virt_opts {
    const char *uri;             /* NULL = libvirt's default */
    const char *const *pools;
    size_t n_pools;
    const char *const *domains;
    size_t n_domains;
    bool all;
    bool dry_run;
    const char *state_dir;
    bool shutdown;
    unsigned shutdown_timeout;   /* seconds */
    bool force_shutdown;         /* destroy after the timeout */
    bool keep_name;
    bool copy;
    bool allow_copy;
    bool remove_source;
    bool verify;
    bool verify_full;
    bool live;                   /* --live: copy disks of running domains */
    uint64_t bandwidth;          /* --live copy limit, bytes/s; 0 = none */
    const char *const *trust_dirs;
    size_t n_trust_dirs;
    const char *command;         /* this command line (journal, markers
                                    and messages name it); may be NULL */
    /* Called as each image (d NULL) or domain (img NULL) gets its final
     * outcome, so the caller can say so at once (may be NULL). */
    void (*item_done)(void *opaque, const struct vqm_vimage *img,
                      const struct vqm_vdomain *d);
    void *item_opaque;
    /* Progress of each conversion (may be NULL). */
    void (*progress)(void *opaque, const struct vqm_vimage *img,
                     uint64_t done, uint64_t total);
    void *progress_opaque;
};

/* What a run counts (the summary, the report and the exit status agree
 * on these): images in scope or changed, every disk of the domains shown,
 * the domains shown. */
struct vqm_virt_counts {
    size_t images_converted, images_skipped, images_failed;
    size_t disks_rewritten, disks_skipped, disks_failed, disks_left_alone;
    size_t domains_rewritten, domains_skipped, domains_failed;
};

struct vqm_virt_run {
    char *uri;                   /* the connection's URI */
    struct vqm_vimage **images;  /* every image seen, bases first */
    size_t n_images;
    struct vqm_vdomain *domains;
    size_t n_domains;
    bool dry_run;
    bool remote;                 /* another host: headers via libvirt */
    bool journal_recovered;      /* an interrupted run was found */
    char *unfinished;            /* after a run: the journal's steps still
                                    unfinished, one per line, or NULL */
    char **warnings;             /* one line each */
    size_t n_warnings;
    double start, end;           /* wall clock, seconds since the epoch */
    /* private */
    void *conn;
    void *journal;
    struct vqm_virt_opts opts;
};

/* Connect, discover and plan.  Unknown pool or domain names are errors
 * (VQM_ERR_NOTFOUND).  *out is freed with vqm_virt_free.  0 or -1.
 */
int vqm_virt_plan(const struct vqm_virt_opts *opts,
                  struct vqm_virt_run **out, struct vqm_error *err);

/* Carry out a plan made with dry_run unset.  Failures of single images or
 * domains are recorded in their outcome and do not stop the rest;
 * returns -1 only when the run as a whole could not go on (state
 * directory, journal).
 */
int vqm_virt_execute(struct vqm_virt_run *run, struct vqm_error *err);

/* Exit status per options.h: 0 everything in scope is qcow2 (dry run:
 * the plan can run), 1 something failed, 3 something was skipped.
 */
int vqm_virt_status(const struct vqm_virt_run *run);

/* Count the outcomes of a run (planned counts as done in a dry run). */
void vqm_virt_count(const struct vqm_virt_run *run,
                    struct vqm_virt_counts *c);

/* Is domain d shown in the summary and the report (in scope, using an
 * image the run handles, or changed)? */
bool vqm_virt_domain_shown(const struct vqm_vdomain *d);

/* Write the XML report (schema xml/report.rng).  0 or -1. */
int vqm_virt_write_report(const struct vqm_virt_run *run, const char *path,
                          int exit_status, struct vqm_error *err);

void vqm_virt_free(struct vqm_virt_run *run);

/* --rollback: restore the definition of domain (name or UUID) saved by
 * run (NULL: the newest run that saved one) when its SHA-256 is the one
 * the journal recorded, its UUID and name are the domain's, and every
 * source image it names still exists in the format it names.  *msg (may
 * be NULL) receives a one-line description of what was done.  0 or -1.
 */
int vqm_virt_rollback(const char *uri, const char *state_dir,
                      const char *domain, const char *run, char *msg,
                      size_t msglen, struct vqm_error *err);

/* ---- building blocks (used by the above and by tests) ---- */

/* Header probe of one file: format name, backing name and recorded
 * backing format (malloc'd or NULL), guest size.  QED headers are
 * validated with the shared reader.  0 or -1.
 */
struct vqm_probe {
    char *format;
    char *backing_name;
    char *backing_format;
    uint64_t virtual_size;
    uint64_t file_size;
    bool block_device;
    dev_t dev;
    ino_t ino;
};
int vqm_probe_file(const char *path, struct vqm_probe *p,
                   struct vqm_error *err);
/* The same for a descriptor the caller opened (path names it). */
int vqm_probe_fd(int fd, const char *path, struct vqm_probe *p,
                 struct vqm_error *err);
void vqm_probe_clear(struct vqm_probe *p);

#endif
