/* virt-qed-migrate: parsed command line, shared by the sub-commands.
 *
 * main.c parses everything into one struct vqm_opts and dispatches to
 * one of the vqm_cmd_* functions below, each in its own file.  They
 * return the process exit status.
 */
#ifndef VQM_OPTIONS_H
#define VQM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2/qcow2-writer.h"

#define VQM_EXIT_OK 0
#define VQM_EXIT_FAILED 1
#define VQM_EXIT_USAGE 2
#define VQM_EXIT_SKIPPED 3

struct vqm_strlist {
    char **v;
    size_t n;
};

struct vqm_opts {
    /* general */
    bool verbose;
    bool quiet;
    bool dry_run;

    /* --inspect FILE [--map] [--json] */
    const char *inspect;
    bool map;
    bool json;

    /* --file IMAGE [--output NEW] [--copy] */
    const char *file;
    const char *output;
    bool copy;                    /* --copy: force copy mode */
    bool allow_copy;              /* --allow-copy: fall back to copy */
    bool verify;                  /* --verify */
    bool verify_full;             /* --verify=full */
    bool flatten;
    bool repair;
    bool keep_name;
    bool remove_source;
    bool no_punch;
    uint32_t cluster_size;        /* --cluster-size */
    bool lazy_refcounts;
    enum qcow2w_compress compress; /* --compress[=ALG] */
    bool progress;                /* -p: bar on a terminal */
    int progress_fd;              /* --progress=FD: "N/100" lines; -1 */
    struct vqm_strlist trust_dirs;   /* --trust-dir DIR */

    /* libvirt: -c URI, --pool, --domain, --all */
    const char *uri;
    struct vqm_strlist pools;
    struct vqm_strlist domains;
    bool all;
    const char *state_dir;
    const char *report;
    const char *rollback;         /* --rollback DOMAIN */
    const char *rollback_to;      /* --to RUN */
    bool shutdown;                /* --shutdown[=SECONDS] */
    unsigned shutdown_timeout;
    bool force_shutdown;          /* --force-shutdown: destroy after it */
    bool live;
    uint64_t bandwidth;           /* --bandwidth, bytes/s (a plain number
                                     was MiB/s), 0 = unlimited */

    /* hooks */
    bool hook_filter;             /* --hook-filter: XML in, XML out */
    const char *hook;             /* --hook=OPERATION[:SUBOP] */
    const char *hook_worker;      /* --hook-worker=DOMAIN */
};

int vqm_cmd_inspect(const struct vqm_opts *o);
int vqm_cmd_file(const struct vqm_opts *o);
int vqm_cmd_virt(const struct vqm_opts *o);
int vqm_cmd_rollback(const struct vqm_opts *o);
int vqm_cmd_hook(const struct vqm_opts *o);
int vqm_cmd_hook_worker(const struct vqm_opts *o);

/* The command line of the run (main.c), as the journal and the markers
 * name it (the hook worker sets the one of its conversion).
 */
extern char **vqm_argv;

/* Print "virt-qed-migrate: error: MSG" on stderr (one line). */
void vqm_report_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
void vqm_report_warning(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
