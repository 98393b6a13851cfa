/* virt-qed-migrate: command line parsing and dispatch.
 *
 * Parses every option into struct vqm_opts, checks the combinations, and
 * hands over to one sub-command.  Usage errors exit 2 with one line.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "vqm-debug.h"
#include "vqm-quote.h"
#include "vqm-io.h"

static const char *program = "virt-qed-migrate";

char **vqm_argv;

/* "virt-qed-migrate: KIND: message", the message in its printable form
 * (vqm_quote_line): names in it come from images and definitions and
 * must not fake lines or drive the terminal. */
static void
report(FILE *fp, const char *kind, const char *fmt, va_list ap)
{
    char *msg = NULL, *q = NULL;

    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    q = msg ? vqm_quote_line(msg) : NULL;
    fprintf(fp, "%s: %s: %s\n", program, kind,
            q ? q : "(out of memory)");
    free(q);
    free(msg);
}

void
vqm_report_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(stderr, "error", fmt, ap);
    va_end(ap);
}

void
vqm_report_warning(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(stderr, "warning", fmt, ap);
    va_end(ap);
}

static void
usage(FILE *fp)
{
    fprintf(fp,
"Usage:\n"
"  %1$s [-c URI] --pool NAME|--domain NAME|--all [OPTIONS]\n"
"  %1$s --file IMAGE [--output NEW.qcow2|--copy] [OPTIONS]\n"
"  %1$s --inspect IMAGE [--map] [--output=json|--json]\n"
"  %1$s [-c URI] --rollback DOMAIN [--to RUN]\n"
"  %1$s --hook-filter < DOMAIN.xml\n"
"  %1$s [-c URI] --hook-worker=DOMAIN [--state-dir DIR]\n"
"\n"
"Find the QED disk images libvirt knows of, convert them to qcow2 and\n"
"point the domain definitions at the new disks.\n"
"\n"
"Scope (libvirt):\n"
"  -c, --connect URI        libvirt connection URI (default: libvirt's default)\n"
"      --pool NAME          QED volumes of this pool and the domains using them\n"
"      --domain NAME|UUID   QED disks of this domain\n"
"      --all                every pool and every domain\n"
"      --rollback DOMAIN    restore the definition saved before migration\n"
"      --to RUN             with --rollback: the one saved by that run\n"
"      --state-dir DIR      journal directory (default " VQM_STATEDIR ")\n"
"      --report FILE        write a machine-readable XML report\n"
"      --shutdown[=SECONDS] shut running domains down, convert, start again\n"
"      --force-shutdown     with --shutdown: power off (SIGTERM to QEMU) a\n"
"                           domain still running after the timeout\n"
"      --live               convert running domains by block copy\n"
"      --bandwidth MIB      limit a live copy to MIB MiB/s\n"
"\n"
"Single files:\n"
"      --file IMAGE         convert one image file (in place by default)\n"
"  -o, --output FILE        convert by copy into FILE\n"
"      --copy               convert by copy, to IMAGE with a .qcow2 suffix\n"
"      --allow-copy         fall back to copy mode when in place is unsafe\n"
"      --inspect IMAGE      show header, backing file, check and summary\n"
"      --map                with --inspect: print the guest map\n"
"      --json, --output=json\n"
"                           with --inspect --map: qemu-img map JSON output\n"
"\n"
"Conversion:\n"
"  -n, --dry-run            say what would be done, change nothing\n"
"      --verify[=full]      prove the guest data is unchanged afterwards\n"
"      --flatten            copy mode: write a standalone image\n"
"      --repair             convert a corrupt image's valid part\n"
"      --keep-name          do not rename NAME.qed to NAME.qcow2\n"
"      --remove-source      copy mode: remove the QED after verification\n"
"      --no-punch           in place: do not punch out the old QED tables\n"
"      --cluster-size SIZE  copy mode: qcow2 cluster size (512 to 2M)\n"
"      --lazy-refcounts     copy mode: qcow2 lazy refcounts\n"
"      --compress[=ALG]     copy mode: compressed output (zlib or zstd)\n"
"      --trust-dir DIR      backing files may also live under DIR\n"
"  -p, --progress[=FD]      progress bar, or \"N/100\" lines on FD\n"
"\n"
"Hooks:\n"
"      --hook-filter        rewrite QED disks already converted (stdin XML)\n"
"      --hook=OP[:SUBOP]    run as the libvirt qemu hook for OP\n"
"      --hook-worker=DOMAIN convert-on-stop: wait until DOMAIN is shut off,\n"
"                           then convert it (the hook starts this)\n"
"\n"
"  -v, --verbose            debug messages on stderr\n"
"  -q, --quiet              only errors\n"
"  -h, --help               this help\n"
"  -V, --version            print the version\n"
"\n"
"Exit status: 0 all in scope is qcow2, 1 failure, 2 usage, 3 something\n"
"was skipped.  See virt-qed-migrate(1).\n",
    program);
}

enum {
    OPT_POOL = 256, OPT_DOMAIN, OPT_ALL, OPT_ROLLBACK, OPT_STATE_DIR,
    OPT_REPORT, OPT_SHUTDOWN, OPT_LIVE, OPT_BANDWIDTH, OPT_FILE, OPT_COPY,
    OPT_ALLOW_COPY, OPT_INSPECT, OPT_MAP, OPT_JSON, OPT_VERIFY, OPT_FLATTEN,
    OPT_REPAIR, OPT_KEEP_NAME, OPT_REMOVE_SOURCE, OPT_NO_PUNCH,
    OPT_CLUSTER_SIZE, OPT_LAZY_REFCOUNTS, OPT_COMPRESS, OPT_TRUST_DIR,
    OPT_HOOK_FILTER, OPT_HOOK, OPT_HOOK_WORKER, OPT_FORCE_SHUTDOWN, OPT_TO,
};

static const struct option long_options[] = {
    { "connect", required_argument, NULL, 'c' },
    { "pool", required_argument, NULL, OPT_POOL },
    { "domain", required_argument, NULL, OPT_DOMAIN },
    { "all", no_argument, NULL, OPT_ALL },
    { "rollback", required_argument, NULL, OPT_ROLLBACK },
    { "to", required_argument, NULL, OPT_TO },
    { "state-dir", required_argument, NULL, OPT_STATE_DIR },
    { "report", required_argument, NULL, OPT_REPORT },
    { "shutdown", optional_argument, NULL, OPT_SHUTDOWN },
    { "force-shutdown", no_argument, NULL, OPT_FORCE_SHUTDOWN },
    { "live", no_argument, NULL, OPT_LIVE },
    { "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
    { "file", required_argument, NULL, OPT_FILE },
    { "output", required_argument, NULL, 'o' },
    { "copy", no_argument, NULL, OPT_COPY },
    { "allow-copy", no_argument, NULL, OPT_ALLOW_COPY },
    { "inspect", required_argument, NULL, OPT_INSPECT },
    { "map", no_argument, NULL, OPT_MAP },
    { "json", no_argument, NULL, OPT_JSON },
    { "dry-run", no_argument, NULL, 'n' },
    { "verify", optional_argument, NULL, OPT_VERIFY },
    { "flatten", no_argument, NULL, OPT_FLATTEN },
    { "repair", no_argument, NULL, OPT_REPAIR },
    { "keep-name", no_argument, NULL, OPT_KEEP_NAME },
    { "remove-source", no_argument, NULL, OPT_REMOVE_SOURCE },
    { "no-punch", no_argument, NULL, OPT_NO_PUNCH },
    { "cluster-size", required_argument, NULL, OPT_CLUSTER_SIZE },
    { "lazy-refcounts", no_argument, NULL, OPT_LAZY_REFCOUNTS },
    { "compress", optional_argument, NULL, OPT_COMPRESS },
    { "trust-dir", required_argument, NULL, OPT_TRUST_DIR },
    { "progress", optional_argument, NULL, 'p' },
    { "hook-filter", no_argument, NULL, OPT_HOOK_FILTER },
    { "hook", required_argument, NULL, OPT_HOOK },
    { "hook-worker", required_argument, NULL, OPT_HOOK_WORKER },
    { "verbose", no_argument, NULL, 'v' },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

static void
strlist_add(struct vqm_strlist *l, char *s)
{
    char **v = realloc(l->v, (l->n + 2) * sizeof *v);

    if (!v) {
        vqm_report_error("out of memory");
        exit(VQM_EXIT_FAILED);
    }
    v[l->n++] = s;
    v[l->n] = NULL;
    l->v = v;
}

/* Parse a size with an optional K/M/G suffix (powers of 1024). */
static int
parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end == 'B')
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int
usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(stderr, "error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", program);
    return VQM_EXIT_USAGE;
}

int
main(int argc, char *argv[])
{
    /* static: the option lists stay reachable until exit (LeakSanitizer) */
    static struct vqm_opts o = { .progress_fd = -1, .shutdown_timeout = 300 };
    int c, modes;
    uint64_t v;

    vqm_argv = argv;
    vqm_debug_init();

    while ((c = getopt_long(argc, argv, "c:o:np::vqhV", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'c': o.uri = optarg; break;
        case OPT_POOL: strlist_add(&o.pools, optarg); break;
        case OPT_DOMAIN: strlist_add(&o.domains, optarg); break;
        case OPT_ALL: o.all = true; break;
        case OPT_ROLLBACK: o.rollback = optarg; break;
        case OPT_TO: o.rollback_to = optarg; break;
        case OPT_STATE_DIR: o.state_dir = optarg; break;
        case OPT_REPORT: o.report = optarg; break;
        case OPT_SHUTDOWN:
            o.shutdown = true;
            if (optarg) {
                if (parse_size(optarg, &v) < 0 || v > 86400)
                    return usage_error("--shutdown: invalid timeout '%s' "
                                       "(seconds)", optarg);
                o.shutdown_timeout = (unsigned) v;
            }
            break;
        case OPT_FORCE_SHUTDOWN:
            o.shutdown = o.force_shutdown = true;
            break;
        case OPT_LIVE: o.live = true; break;
        case OPT_BANDWIDTH:
            if (parse_size(optarg, &v) < 0)
                return usage_error("--bandwidth: invalid value '%s'", optarg);
            if (!optarg[strspn(optarg, "0123456789")])
                v <<= 20;                    /* a plain number: MiB/s */
            o.bandwidth = v;
            break;
        case OPT_FILE: o.file = optarg; break;
        case 'o': o.output = optarg; break;
        case OPT_COPY: o.copy = true; break;
        case OPT_ALLOW_COPY: o.allow_copy = true; break;
        case OPT_INSPECT: o.inspect = optarg; break;
        case OPT_MAP: o.map = true; break;
        case OPT_JSON: o.json = true; break;
        case 'n': o.dry_run = true; break;
        case OPT_VERIFY:
            o.verify = true;
            if (optarg) {
                if (strcmp(optarg, "full") == 0)
                    o.verify_full = true;
                else if (strcmp(optarg, "map") != 0)
                    return usage_error("--verify: unknown mode '%s' "
                                       "(map or full)", optarg);
            }
            break;
        case OPT_FLATTEN: o.flatten = true; break;
        case OPT_REPAIR: o.repair = true; break;
        case OPT_KEEP_NAME: o.keep_name = true; break;
        case OPT_REMOVE_SOURCE: o.remove_source = true; break;
        case OPT_NO_PUNCH: o.no_punch = true; break;
        case OPT_CLUSTER_SIZE:
            if (parse_size(optarg, &v) < 0 || v < 512 || v > 2 * 1024 * 1024
                || (v & (v - 1)) != 0)
                return usage_error("--cluster-size: '%s' is not a power of "
                                   "two from 512 to 2M", optarg);
            o.cluster_size = (uint32_t) v;
            break;
        case OPT_LAZY_REFCOUNTS: o.lazy_refcounts = true; break;
        case OPT_COMPRESS:
            if (!optarg || strcmp(optarg, "zlib") == 0)
                o.compress = QCOW2W_COMPRESS_ZLIB;
            else if (strcmp(optarg, "zstd") == 0)
                o.compress = QCOW2W_COMPRESS_ZSTD;
            else
                return usage_error("--compress: unknown algorithm '%s' "
                                   "(zlib or zstd)", optarg);
            break;
        case OPT_TRUST_DIR: strlist_add(&o.trust_dirs, optarg); break;
        case 'p':
            o.progress = true;
            if (optarg) {
                char *end;
                long fd;
                errno = 0;
                fd = strtol(optarg, &end, 10);
                if (errno || *end || fd < 0 || fd > 1023)
                    return usage_error("--progress: invalid file descriptor "
                                       "'%s'", optarg);
                o.progress_fd = (int) fd;
            }
            break;
        case OPT_HOOK_FILTER: o.hook_filter = true; break;
        case OPT_HOOK: o.hook = optarg; break;
        case OPT_HOOK_WORKER: o.hook_worker = optarg; break;
        case 'v': o.verbose = true; vqm_debug_enabled = true; break;
        case 'q': o.quiet = true; break;
        case 'h': usage(stdout); return VQM_EXIT_OK;
        case 'V': printf("%s %s\n", program, PACKAGE_VERSION);
            return VQM_EXIT_OK;
        default:
            fprintf(stderr, "Try '%s --help' for more information.\n",
                    program);
            return VQM_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);

    modes = !!o.inspect + !!o.file + !!o.rollback + (o.hook_filter || o.hook)
        + !!o.hook_worker + (o.pools.n || o.domains.n || o.all);
    if (modes == 0)
        return usage_error("nothing to do: give --pool, --domain, --all, "
                           "--file or --inspect");
    if (modes > 1)
        return usage_error("--inspect, --file, --rollback, --hook, "
                           "--hook-worker and --pool/--domain/--all cannot "
                           "be combined");
    /* qemu-img's spelling: with --inspect, --output=json|human is the
     * output format (--json is the same as --output=json). */
    if (o.output && o.inspect) {
        if (strcmp(o.output, "json") == 0)
            o.json = true;
        else if (strcmp(o.output, "human") != 0)
            return usage_error("with --inspect, --output takes 'json' or "
                               "'human'");
        o.output = NULL;
    }
    if (o.rollback_to && !o.rollback)
        return usage_error("--to goes with --rollback");
    if ((o.map || o.json) && !o.inspect)
        return usage_error("--map and --json go with --inspect");
    if (o.output && !o.file)
        return usage_error("--output goes with --file");
    if (o.output && o.copy)
        return usage_error("--output and --copy cannot be combined");
    if (o.all && (o.pools.n || o.domains.n))
        return usage_error("--all cannot be combined with --pool or --domain");
    if (o.live && o.shutdown)
        return usage_error("--live and --shutdown cannot be combined");

    /* Results are printed as they come: a line at a time on a terminal
     * and in a pipe alike. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.inspect)
        return vqm_cmd_inspect(&o);
    if (o.file)
        return vqm_cmd_file(&o);
    if (o.rollback)
        return vqm_cmd_rollback(&o);
    if (o.hook_worker)
        return vqm_cmd_hook_worker(&o);
    if (o.hook_filter || o.hook)
        return vqm_cmd_hook(&o);
    /* SIGINT/SIGTERM say what was interrupted and how to finish it. */
    vqm_interrupt_install();
    return vqm_cmd_virt(&o);
}
