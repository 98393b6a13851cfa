/* virt-qed-migrate: the libvirt qemu hook (--hook=OP[:SUBOP]) and the
 * domain XML filter (--hook-filter).
 *
 * libvirt runs hooks synchronously and waits for their exit and for EOF
 * on their stdout and stderr, so everything here is cheap and bounded:
 * the domain XML from stdin, the first bytes of the images it names, a
 * small configuration file and one stat of the journal.  Never libvirt:
 * a hook that calls back into the daemon stalls the operation.  Deferred
 * work (convert-on-stop) runs in a fully detached worker process.
 *
 * stdout carries only XML (filter operations); diagnostics go to stderr,
 * which libvirt hands to the API caller when the hook fails, and to
 * syslog.
 */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifdef VQM_WITH_LIBVIRT
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif
#include <libxml/parser.h>

#include "cleanup.h"
#include "domxml/domxml.h"
#include "hooks/hook-paths.h"
#include "options.h"
#include "qed/qed.h"
#include "vqm-debug.h"
#include "vqm-endian.h"
#include "vqm-error.h"
#include "vqm-io.h"
#include "vqm-open.h"
#include "vqm-quote.h"

#define HOOK_MAX_XML (16u * 1024 * 1024)
#define HOOK_DEFAULT_TIMEOUT 10
#define HOOK_MAX_DISKS 4096
#define WORKER_WAIT_SECONDS 600
/* Markers read from <state_dir>/active, and the bytes read of each. */
#define HOOK_MAX_MARKERS 4096
#define HOOK_MAX_MARKER_SIZE 65536
/* Where the first <uuid> element may start in a domain XML libvirt
 * wrote (it follows <name> at the top). */
#define HOOK_UUID_SCAN 65536
/* How long a worker waits for the state directory's lock (another
 * worker or run converting), and how long its conversion then waits for
 * the lock should another one take it first (VQM_LOCK_WAIT). */
#define WORKER_LOCK_SECONDS 1800
#define WORKER_LOCK_RACE_SECONDS "120"

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
    char *uuid;                  /* validated, or NULL */
    struct hook_disk *disks;
    size_t ndisks;
};

static const char *hook_name = "virt-qed-migrate";
static volatile sig_atomic_t hook_deny_on_timeout;
static volatile sig_atomic_t hook_filter_mode;   /* --hook-filter */
static const char *hook_log_dir;     /* the state directory, once known */

/* Append one line to <state-dir>/hook.log (never through a link). */
static void
hook_log_file(const char *kind, const char *msg)
{
    char path[PATH_MAX], ts[64];
    time_t now = time(NULL);
    struct tm tm;
    struct stat st;
    int fd;

    if (!hook_log_dir || snprintf(path, sizeof path, "%s/hook.log",
                                  hook_log_dir) >= (int) sizeof path)
        return;
    if (mkdir(hook_log_dir, 0700) < 0 && errno != EEXIST)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY
              | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0)
        return;
    /* Only a regular file of ours that nobody else can write. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()
        || (st.st_mode & 022)) {
        close(fd);
        return;
    }
    if (localtime_r(&now, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    else
        strcpy(ts, "?");
    dprintf(fd, "%s [%ld] hook: %s: %s\n", ts, (long) getpid(), kind, msg);
    close(fd);
}

/* Diagnostics: stderr (libvirt's log, and the API caller when the hook
 * fails), syslog (LOG_DAEMON: journald takes it where it runs) and, for
 * warnings and errors, hook.log in the state directory: libvirt shows a
 * hook's stderr only when the hook fails, at its default log level.
 */
static void hook_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
hook_log(int prio, const char *fmt, ...)
{
    char buf[4096];
    char *q;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Names in it are escaped already (printable, vqm_q); this catches
     * what libraries put into messages (vqm_quote_line keeps the
     * backslashes of those escapes). */
    q = vqm_quote_line(buf);
    fprintf(stderr, "%s: %s: %s\n", hook_name,
            prio <= LOG_ERR ? "error" : prio == LOG_WARNING ? "warning"
            : "hook", q ? q : buf);
    syslog(prio, "%s", q ? q : buf);
    if (prio <= LOG_WARNING)
        hook_log_file(prio <= LOG_ERR ? "error" : "warning", q ? q : buf);
    free(q);
}

static void
hook_alarm(int sig)
{
    static const char msg_deny[] =
        "virt-qed-migrate: error: the hook timed out reading the domain "
        "and its disk images; start refused\n";
    static const char msg_allow[] =
        "virt-qed-migrate: warning: the hook timed out reading the domain "
        "and its disk images; nothing done\n";
    static const char msg_filter[] =
        "virt-qed-migrate: error: --hook-filter timed out reading the "
        "domain and its disk images\n";

    (void) sig;
    if (hook_filter_mode) {
        if (write(STDERR_FILENO, msg_filter, sizeof msg_filter - 1) < 0)
            _exit(1);
        _exit(1);
    }
    if (hook_deny_on_timeout) {
        if (write(STDERR_FILENO, msg_deny, sizeof msg_deny - 1) < 0)
            _exit(1);
        _exit(1);
    }
    if (write(STDERR_FILENO, msg_allow, sizeof msg_allow - 1) < 0)
        _exit(0);
    _exit(0);
}

/* ---------------------------------------------------------------- */
/* Configuration                                                     */

static char *
trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'
                     || e[-1] == '\r'))
        *--e = '\0';
    if (e - s >= 2 && ((s[0] == '"' && e[-1] == '"')
                       || (s[0] == '\'' && e[-1] == '\''))) {
        e[-1] = '\0';
        s++;
    }
    return s;
}

static void
conf_free(struct hook_conf *c)
{
    free(c->uri);
    free(c->state_dir);
    free(c->log);
}

static int
conf_set_str(char **dst, const char *v)
{
    char *s = strdup(v);

    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

/* Load the policy file.  A missing file means the defaults (warn); a
 * file that cannot be read or does not parse makes the policy
 * POLICY_INVALID with the reason in c->problem.
 */
static int
conf_load(struct hook_conf *c, const char *path, const char *state_dir)
{
    CLEANUP_FCLOSE FILE *fp = NULL;
    char line[1024];
    unsigned lineno = 0;

    memset(c, 0, sizeof *c);
    c->path = path;
    c->policy = POLICY_WARN;
    c->timeout = HOOK_DEFAULT_TIMEOUT;
    if (conf_set_str(&c->uri, "qemu:///system") < 0
        || conf_set_str(&c->state_dir, VQM_STATEDIR) < 0)
        return -1;

    fp = fopen(path, "re");
    if (!fp) {
        if (errno != ENOENT) {
            snprintf(c->problem, sizeof c->problem, "cannot read %s: %s",
                     path, strerror(errno));
            c->policy = POLICY_INVALID;
        }
        goto out;
    }
    while (fgets(line, sizeof line, fp)) {
        char *key, *val, *eq, *hash;

        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            snprintf(c->problem, sizeof c->problem, "%s:%u: line too long",
                     path, lineno);
            c->policy = POLICY_INVALID;
            break;
        }
        hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        key = trim(line);
        if (!*key)
            continue;
        eq = strchr(key, '=');
        if (!eq) {
            snprintf(c->problem, sizeof c->problem,
                     "%s:%u: expected KEY=VALUE", path, lineno);
            c->policy = POLICY_INVALID;
            break;
        }
        *eq = '\0';
        key = trim(key);
        val = trim(eq + 1);
        if (strcmp(key, "policy") == 0) {
            if (strcmp(val, "warn") == 0)
                c->policy = POLICY_WARN;
            else if (strcmp(val, "deny") == 0)
                c->policy = POLICY_DENY;
            else if (strcmp(val, "convert-on-stop") == 0)
                c->policy = POLICY_CONVERT_ON_STOP;
            else {
                snprintf(c->problem, sizeof c->problem,
                         "%s:%u: unknown policy '%.64s' (warn, deny or "
                         "convert-on-stop)", path, lineno, val);
                c->policy = POLICY_INVALID;
                break;
            }
        } else if (strcmp(key, "uri") == 0) {
            if (conf_set_str(&c->uri, val) < 0)
                return -1;
        } else if (strcmp(key, "state_dir") == 0) {
            if (*val != '/') {
                snprintf(c->problem, sizeof c->problem,
                         "%s:%u: state_dir must be an absolute path",
                         path, lineno);
                c->policy = POLICY_INVALID;
                break;
            }
            if (conf_set_str(&c->state_dir, val) < 0)
                return -1;
        } else if (strcmp(key, "log") == 0) {
            if (*val && *val != '/') {
                snprintf(c->problem, sizeof c->problem,
                         "%s:%u: log must be an absolute path",
                         path, lineno);
                c->policy = POLICY_INVALID;
                break;
            }
            if (conf_set_str(&c->log, val) < 0)
                return -1;
        } else if (strcmp(key, "timeout") == 0) {
            char *end;
            unsigned long t;

            errno = 0;
            t = strtoul(val, &end, 10);
            if (errno || end == val || *end || t == 0 || t > 3600) {
                snprintf(c->problem, sizeof c->problem,
                         "%s:%u: timeout must be 1 to 3600 seconds",
                         path, lineno);
                c->policy = POLICY_INVALID;
                break;
            }
            c->timeout = (unsigned) t;
        } else {
            /* Unknown keys are reported but do not change the policy. */
            fprintf(stderr, "%s: warning: %s:%u: unknown key '%.64s'\n",
                    hook_name, path, lineno, key);
        }
    }
 out:
    /* --state-dir on the command line wins over the file. */
    if (state_dir && conf_set_str(&c->state_dir, state_dir) < 0)
        return -1;
    return 0;
}

static const char *
policy_name(enum hook_policy p)
{
    switch (p) {
    case POLICY_WARN: return "warn";
    case POLICY_DENY: return "deny";
    case POLICY_CONVERT_ON_STOP: return "convert-on-stop";
    case POLICY_INVALID: break;
    }
    return "invalid";
}

/* ---------------------------------------------------------------- */
/* Images: headers only                                              */

/* Classify the image at path from its first bytes.  Opened by vqm_open
 * (O_NONBLOCK, no planted symlink) so that a FIFO or a device can neither
 * block the hook nor be opened; it reads
 * only regular files and block devices.
 */
/* The kind of the image open on fd (path for messages). */
static enum img_kind
image_kind_fd(int fd, const char *path, uint64_t *size)
{
    unsigned char buf[64];
    ssize_t r;
    const char *fmt;

    do
        r = pread(fd, buf, sizeof buf, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return IMG_UNREADABLE;
    fmt = vqm_probe_format(buf, (size_t) r);
    if (strcmp(fmt, "qcow2") == 0) {
        uint32_t version = vqm_ld_be32(buf + 4);
        if (version == 2 || version == 3)
            return IMG_QCOW2;
        return IMG_OTHER;
    }
    if (strcmp(fmt, "qed") == 0) {
        struct qed_image *img = NULL;
        struct vqm_error err = { 0 };

        /* The shared reader validates the header; a QED image it refuses
         * is still a QED image to the policy.
         */
        if (qed_open_fd(fd, path, &img, &err) == 0) {
            *size = qed_get_info(img)->image_size;
            qed_close(img);
        } else {
            vqm_debug("%s: %s", path, err.msg);
        }
        return IMG_QED;
    }
    return IMG_OTHER;
}

static enum img_kind
image_kind(const char *path, uint64_t *size)
{
    struct vqm_file f = { .fd = -1 };
    struct vqm_error err = { 0 };
    enum img_kind kind;

    *size = 0;
    /* vqm_open looks before it opens: a character device or a FIFO the
     * XML names is never opened (opening some devices has side effects),
     * and no symlink planted by someone else is followed. */
    if (vqm_open(path, 0, NULL, &f, &err) < 0)
        return err.code == VQM_ERR_NOTFOUND ? IMG_MISSING : IMG_UNREADABLE;
    kind = image_kind_fd(f.fd, path, size);
    vqm_file_close(&f);
    return kind;
}

/* ---------------------------------------------------------------- */
/* Domain XML                                                        */

static bool
uuid_valid(const char *u)
{
    size_t i;

    if (!u || strlen(u) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char) u[i])) {
            return false;
        }
    }
    return true;
}

/* Copy s for a one-line message: control characters, escapes and bytes
 * that are not UTF-8 escaped (vqm_quote). */
static char *
printable(const char *s)
{
    return vqm_quote(s ? s : "?");
}

static void
domain_free(struct hook_domain *d)
{
    size_t i;

    for (i = 0; i < d->ndisks; i++) {
        free(d->disks[i].path);
        free(d->disks[i].claimed);
        free(d->disks[i].target);
    }
    free(d->disks);
    free(d->name);
    free(d->uuid);
    vqm_domxml_free(d->x);
    memset(d, 0, sizeof *d);
}

static int
domain_add_image(struct hook_domain *d, const struct vqm_domxml_disk *x,
                 unsigned depth, const struct vqm_domxml_layer *l,
                 struct vqm_error *err)
{
    struct hook_disk *v, *k;
    char *path = NULL;

    if (l->form == VQM_SOURCE_VOLUME) {
        /* Only libvirt can resolve pool/volume (the hook must not ask
         * it): such a disk is judged by the format its XML names.
         */
        if (!l->pool || !l->volume)
            return 0;
        if (asprintf(&path, "%s/%s", l->pool, l->volume) < 0)
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    } else if (l->form == VQM_SOURCE_FILE || l->form == VQM_SOURCE_BLOCK) {
        /* libvirt only accepts absolute paths; never guess a cwd. */
        if (!l->path || l->path[0] != '/')
            return 0;
        if (!(path = strdup(l->path)))
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    } else {
        return 0;       /* network, dir, ...: nothing to read here */
    }
    if (d->ndisks >= HOOK_MAX_DISKS) {
        free(path);
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "domain XML names more than %u images",
                             HOOK_MAX_DISKS);
    }
    v = realloc(d->disks, (d->ndisks + 1) * sizeof *v);
    if (!v) {
        free(path);
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    }
    d->disks = v;
    k = &d->disks[d->ndisks++];
    memset(k, 0, sizeof *k);
    k->index = x->index;
    k->depth = depth;
    k->form = l->form;
    k->path = path;
    k->claimed = l->format ? strdup(l->format) : NULL;
    k->target = x->target ? strdup(x->target) : NULL;
    if (l->form == VQM_SOURCE_VOLUME)
        k->kind = IMG_UNREADABLE;
    else
        k->kind = image_kind(path, &k->size);
    return 0;
}

/* Parse the domain XML libvirt gave on stdin with the shared parser (no
 * network, no DTD: a document type declaration is refused outright, no
 * entity expansion), and list every image its disks name: the disks
 * that can hold QED (disk, cdrom, floppy; never lun, network, ...), and
 * their backing chains exactly as the XML spells them, never the
 * backing names recorded in the images.
 */
static int
domain_parse(const char *buf, size_t len, struct hook_domain *d,
             struct vqm_error *err)
{
    struct vqm_domxml_disk *disks = NULL;
    size_t n = 0, i, k;
    const char *u;
    int ret = -1;

    memset(d, 0, sizeof *d);
    if (vqm_domxml_parse(buf, len, "domain XML on stdin", &d->x, err) < 0)
        return -1;
    if (!vqm_domxml_is_domain(d->x))
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "XML on stdin is not a <domain>");
    if (vqm_domxml_name(d->x) && *vqm_domxml_name(d->x)) {
        d->name = strdup(vqm_domxml_name(d->x));
    } else {
        const char *env = getenv("VQM_HOOK_DOMAIN");
        d->name = strdup(env ? env : "?");
    }
    u = vqm_domxml_uuid(d->x);
    if (uuid_valid(u) && (d->uuid = strdup(u)))
        for (char *p = d->uuid; *p; p++)
            *p = (char) tolower((unsigned char) *p);
    if (vqm_domxml_disks(d->x, &disks, &n, err) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        if (!vqm_domxml_can_hold_qed(&disks[i]))
            continue;
        if (domain_add_image(d, &disks[i], 0, &disks[i].top, err) < 0)
            goto out;
        for (k = 0; k < disks[i].n_backing; k++)
            if (domain_add_image(d, &disks[i], (unsigned) k + 1,
                                 &disks[i].backing[k], err) < 0)
                goto out;
    }
    ret = 0;
 out:
    vqm_domxml_disks_free(disks, n);
    return ret;
}

static int
read_stdin(char **out, size_t *outlen, struct vqm_error *err)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap), *nb;
    ssize_t r;

    if (!buf)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    for (;;) {
        if (len == cap) {
            if (cap >= HOOK_MAX_XML) {
                free(buf);
                return vqm_error_set(err, VQM_ERR_INVALID,
                                     "domain XML on stdin is larger than "
                                     "%u MiB", HOOK_MAX_XML >> 20);
            }
            cap *= 2;
            nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
            }
            buf = nb;
        }
        r = read(STDIN_FILENO, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return vqm_error_set_errno(err, errno, "reading stdin");
        }
        if (r == 0)
            break;
        len += (size_t) r;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

static int
load_domain(struct hook_domain *d, struct vqm_error *err)
{
    CLEANUP_FREE char *buf = NULL;
    size_t len = 0;

    memset(d, 0, sizeof *d);
    if (read_stdin(&buf, &len, err) < 0)
        return -1;
    if (len == 0)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "no domain XML on stdin");
    return domain_parse(buf, len, d, err);
}

/* A disk counts as QED when its header says so, or when the XML says so
 * and the file cannot be read.
 */
static bool
disk_is_qed(const struct hook_disk *k)
{
    if (k->kind == IMG_QED)
        return true;
    return (k->kind == IMG_MISSING || k->kind == IMG_UNREADABLE)
        && k->claimed && strcmp(k->claimed, "qed") == 0;
}

static size_t
count_qed(const struct hook_domain *d)
{
    size_t i, n = 0;

    for (i = 0; i < d->ndisks; i++)
        n += disk_is_qed(&d->disks[i]);
    return n;
}

/* "vda /a.qed, vdb /b.qed" for messages. */
static char *
qed_list(const struct hook_domain *d)
{
    char *buf = NULL;
    size_t size = 0, i;
    FILE *fp = open_memstream(&buf, &size);
    bool first = true;

    if (!fp)
        return NULL;
    for (i = 0; i < d->ndisks; i++) {
        CLEANUP_FREE char *t = NULL;
        CLEANUP_FREE char *p = NULL;

        if (!disk_is_qed(&d->disks[i]))
            continue;
        t = printable(d->disks[i].target);
        p = printable(d->disks[i].path);
        fprintf(fp, "%s%s %s", first ? "" : ", ", t ? t : "?",
                p ? p : "?");
        first = false;
    }
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---------------------------------------------------------------- */
/* The XML filter: point QED disks already converted at the qcow2     */

static bool
has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The filter's lookup: the layer the XML calls QED that is qcow2 now,
 * either the file itself (converted in place, --keep-name) or, when the
 * .qed file is gone, its .qcow2 sibling.  Only layers the XML claims to
 * be QED move: a raw disk whose guest wrote a qcow2 header is never
 * turned into qcow2.
 */
static bool
filter_lookup(void *opaque, const struct vqm_domxml_disk *x, unsigned depth,
              const struct vqm_domxml_layer *l, struct vqm_domxml_move *mv)
{
    struct hook_domain *d = opaque;
    struct hook_disk *k = NULL;
    CLEANUP_FREE char *name = NULL;
    CLEANUP_FREE char *from = NULL;
    size_t i;

    (void) l;
    for (i = 0; i < d->ndisks && !k; i++)
        if (d->disks[i].index == x->index && d->disks[i].depth == depth)
            k = &d->disks[i];
    if (!k || !k->claimed || strcmp(k->claimed, "qed") != 0)
        return false;
    name = printable(d->name);
    from = printable(k->path);
    if (k->kind == IMG_QCOW2) {
        mv->new_format = "qcow2";
        hook_log(LOG_NOTICE, "domain '%s': %s is qcow2 now: format "
                 "changed from qed to qcow2", name, from);
        return true;
    }
    if (k->kind == IMG_MISSING && (k->form == VQM_SOURCE_FILE
                                   || k->form == VQM_SOURCE_BLOCK)
        && has_suffix(k->path, ".qed")) {
        size_t base = strlen(k->path) - 4;
        CLEANUP_FREE char *to = NULL;
        uint64_t size;
        char *sib = malloc(base + sizeof ".qcow2");

        if (!sib)
            return false;
        memcpy(sib, k->path, base);
        strcpy(sib + base, ".qcow2");
        if (image_kind(sib, &size) != IMG_QCOW2) {
            free(sib);
            return false;
        }
        /* Keep the new name for the rewrite: it outlives this call. */
        free(k->path);
        k->path = sib;
        mv->new_path = sib;
        mv->new_format = "qcow2";
        to = printable(sib);
        hook_log(LOG_NOTICE, "domain '%s': %s was converted: now %s "
                 "(qcow2)", name, from, to ? to : "?");
        return true;
    }
    return false;
}

/* Rewrite every image the XML calls QED that is qcow2 now.  Returns the
 * number of layers rewritten.
 */
static size_t
filter_domain(struct hook_domain *d)
{
    size_t changed = 0;
    struct vqm_error err = { 0 };

    if (vqm_domxml_rewrite(d->x, filter_lookup, d, &changed, &err) < 0) {
        hook_log(LOG_WARNING, "%s", err.msg);
        return 0;
    }
    return changed;
}

static int
write_xml(const struct hook_domain *d, struct vqm_error *err)
{
    CLEANUP_FREE char *xml = NULL;
    size_t len, off = 0;

    if (vqm_domxml_format(d->x, &xml, err) < 0)
        return -1;
    len = strlen(xml);
    while (off < len) {
        ssize_t r = write(STDOUT_FILENO, xml + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return vqm_error_set_errno(err, errno, "writing stdout");
        off += (size_t) r;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* convert-on-stop: the detached worker                              */

static void
worker_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
worker_log(const char *fmt, ...)
{
    char buf[2048], ts[64];
    char *q;
    time_t now = time(NULL);
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (localtime_r(&now, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    else
        strcpy(ts, "?");
    /* stdout is the worker's log file (or /dev/null). */
    q = vqm_quote_line(buf);
    printf("%s [%ld] %s\n", ts, (long) getpid(), q ? q : buf);
    fflush(stdout);
    syslog(LOG_NOTICE, "%s", q ? q : buf);
    free(q);
}

#ifdef VQM_WITH_LIBVIRT
/* Wait until libvirt reports the domain inactive: the stop that ran the
 * hook has then finished.  Returns 0 when it is, -1 otherwise.
 */
static int
worker_wait_inactive(const char *uri, const char *uuid)
{
    time_t deadline = time(NULL) + WORKER_WAIT_SECONDS;
    unsigned failures = 0;

    for (;;) {
        virConnectPtr conn = virConnectOpen(uri);
        virErrorPtr e;
        int active = -1;

        if (conn) {
            virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
            if (dom) {
                active = virDomainIsActive(dom);
                virDomainFree(dom);
            }
        }
        if (active == 0) {
            virConnectClose(conn);
            return 0;
        }
        if (active < 0 && ++failures >= 5) {
            /* Transient domains are gone once stopped; a wrong uri= in
             * hook.conf fails here too.
             */
            e = virGetLastError();
            worker_log("domain %s: cannot check its state on %s: %s: "
                       "not converted", uuid, uri,
                       e && e->message ? e->message : "unknown error");
            if (conn)
                virConnectClose(conn);
            return -1;
        }
        if (conn)
            virConnectClose(conn);
        if (time(NULL) >= deadline) {
            worker_log("domain %s still running after %d s: not converted",
                       uuid, WORKER_WAIT_SECONDS);
            return -1;
        }
        sleep(2);
    }
}

/* Is the domain running (1), not running (0), or unknown (-1)? */
static int
worker_domain_active(const char *uri, const char *uuid)
{
    virConnectPtr conn = virConnectOpen(uri);
    virDomainPtr dom;
    int active = -1;

    if (!conn)
        return -1;
    if ((dom = virDomainLookupByUUIDString(conn, uuid))) {
        active = virDomainIsActive(dom);
        virDomainFree(dom);
    }
    virConnectClose(conn);
    return active;
}

/* Wait (bounded, with a log line) until no other virt-qed-migrate holds
 * the state directory's lock.  0 when free, -1 after the time limit. */
static int
worker_wait_lock(const char *name, const char *state_dir)
{
    char path[PATH_MAX];
    time_t start = time(NULL);
    bool told = false;
    int fd, r;

    snprintf(path, sizeof path, "%s/lock", state_dir);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;             /* no state directory yet: nobody holds it */
    while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EWOULDBLOCK) {
        if (!told) {
            worker_log("domain '%s': another virt-qed-migrate is using the "
                       "state directory '%s': waiting for it (up to %d s)",
                       name, state_dir, WORKER_LOCK_SECONDS);
            told = true;
        }
        if (time(NULL) - start >= WORKER_LOCK_SECONDS) {
            worker_log("domain '%s': the state directory '%s' stayed in "
                       "use for %d s: not converted", name, state_dir,
                       WORKER_LOCK_SECONDS);
            close(fd);
            return -1;
        }
        sleep(2);
    }
    if (r == 0 && told)
        worker_log("domain '%s': the state directory is free after %ld s",
                   name, (long) (time(NULL) - start));
    close(fd);                /* released: the conversion takes it */
    return 0;
}

static void
worker_quiet(void *opaque, virErrorPtr e)
{
    (void) opaque;
    (void) e;
}

static int
worker_run(const char *self, const struct hook_conf *c, const char *name,
           const char *uuid)
{
    pid_t pid;
    int status;

    worker_log("domain '%s' (%s) stopped: converting its QED disks "
               "(virt-qed-migrate -c %s --domain %s --state-dir %s)", name,
               uuid, c->uri, uuid, c->state_dir);
    /* Let the stop that ran the hook finish before touching libvirt. */
    virSetErrorFunc(NULL, worker_quiet);
    sleep(1);
    if (worker_wait_inactive(c->uri, uuid) < 0
        || worker_wait_lock(name, c->state_dir) < 0)
        return 1;
    /* Started again meanwhile: it runs on its disks, nothing to do now
     * (the next stop converts them). */
    if (worker_domain_active(c->uri, uuid) == 1) {
        worker_log("domain '%s' (%s) was started again before its "
                   "conversion ran: skipped; its QED disks are converted "
                   "when it stops", name, uuid);
        return 0;
    }
    /* Another worker may take the lock first: the conversion waits. */
    setenv("VQM_LOCK_WAIT", WORKER_LOCK_RACE_SECONDS, 1);

    pid = fork();
    if (pid < 0) {
        worker_log("domain '%s': fork failed: %s", name, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execl(self, "virt-qed-migrate", "-c", c->uri, "--domain", uuid,
              "--state-dir", c->state_dir, (char *) NULL);
        fprintf(stderr, "exec %s: %s\n", self, strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            worker_log("domain '%s': waitpid: %s", name, strerror(errno));
            return 1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == VQM_EXIT_OK) {
        worker_log("domain '%s' (%s): conversion finished: every disk is "
                   "qcow2 now", name, uuid);
        return 0;
    }
    if (WIFEXITED(status))
        worker_log("domain '%s' (%s): conversion %s (exit status %d); "
                   "see the messages above and run virt-qed-migrate "
                   "--domain %s by hand", name, uuid,
                   WEXITSTATUS(status) == VQM_EXIT_SKIPPED ? "incomplete"
                   : "failed", WEXITSTATUS(status), uuid);
    else
        worker_log("domain '%s' (%s): conversion killed by signal %d",
                   name, uuid, WTERMSIG(status));
    return 1;
}

/* The worker as handed over by the small program (see options.h). */
int
vqm_hook_worker(const struct vqm_opts *o, const char *name)
{
    struct hook_conf c = { .uri = (char *) o->uri,
                           .state_dir = (char *) o->state_dir };
    char self[PATH_MAX];
    ssize_t n;

    openlog("virt-qed-migrate", LOG_PID, LOG_DAEMON);
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) {
        worker_log("cannot find the virt-qed-migrate program: %s",
                   strerror(errno));
        return 1;
    }
    self[n] = '\0';
    return worker_run(self, &c, name, o->domains.v[0]);
}
#endif /* VQM_WITH_LIBVIRT */

/* The worker's log: log= of hook.conf, or hook.log in the state
 * directory.  Never through a link, only a regular file of ours that
 * nobody else can write, in a state directory that passes the same test
 * (created 0700 when missing).  The descriptor, or -1. */
static int
open_log(const struct hook_conf *c)
{
    struct stat st;
    int dfd = AT_FDCWD, fd;
    const char *name = c->log;

    if (!c->log || !*c->log) {
        if (mkdir(c->state_dir, 0700) < 0 && errno != EEXIST)
            return -1;
        dfd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                   | O_CLOEXEC);
        if (dfd < 0)
            return -1;
        if (fstat(dfd, &st) < 0 || st.st_uid != geteuid()
            || (st.st_mode & 022)) {
            close(dfd);
            return -1;
        }
        name = "hook.log";
    }
    fd = openat(dfd, name, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW
                | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
    if (dfd != AT_FDCWD)
        close(dfd);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
        || st.st_uid != geteuid() || (st.st_mode & 022)
        || st.st_nlink != 1) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Double fork and setsid: the worker has no controlling terminal, is not
 * our child, and holds none of the hook's descriptors (libvirt waits for
 * EOF on the hook's stdout and stderr).
 */
static int
spawn_worker(const struct hook_conf *c, const char *name, const char *uuid)
{
    char self[PATH_MAX];
    pid_t pid;
    int status;
#ifdef VQM_WITH_LIBVIRT
    ssize_t n;

    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) {
        hook_log(LOG_ERR, "cannot find the virt-qed-migrate program: %s",
                 strerror(errno));
        return -1;
    }
    self[n] = '\0';
#else
    snprintf(self, sizeof self, "%s", vqm_libvirt_program());
#endif
    fflush(stdout);
    fflush(stderr);

    pid = fork();
    if (pid < 0) {
        hook_log(LOG_ERR, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd, maxfd;

        if (setsid() < 0)
            _exit(1);
        pid = fork();
        if (pid != 0)
            _exit(pid < 0 ? 1 : 0);

        alarm(0);
        signal(SIGALRM, SIG_DFL);
        signal(SIGHUP, SIG_IGN);
        umask(077);
        if (chdir("/") < 0)
            _exit(1);
        fd = open("/dev/null", O_RDWR);
        if (fd < 0)
            _exit(1);
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
        fd = open_log(c);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        maxfd = (int) sysconf(_SC_OPEN_MAX);
        if (maxfd < 0 || maxfd > 65536)
            maxfd = 65536;
        for (fd = STDERR_FILENO + 1; fd < maxfd; fd++)
            close(fd);
#ifdef VQM_WITH_LIBVIRT
        _exit(worker_run(self, c, name, uuid));
#else
        /* Waiting for the domain to stop needs libvirt: the full program
         * does that and the conversion, in this process (same pid).
         */
        if (setenv(VQM_HOOK_WORKER_ENV, name, 1) == 0)
            execl(self, "virt-qed-migrate", "-c", c->uri, "--domain", uuid,
                  "--state-dir", c->state_dir, (char *) NULL);
        worker_log("domain '%s' (%s) stopped: not converted: cannot run "
                   "%s: %s", name, uuid, self, strerror(errno));
        _exit(1);
#endif
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            break;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* Operations                                                        */

/* ---- migration markers (<state_dir>/active/UUID, see virt-internal.h:
 * "PID\nname=NAME", the name to the end of the file) ----
 *
 * Read without following links and without parsing any XML, so that a
 * start can be refused whatever the domain XML holds.
 */
struct hook_markers {
    bool unknown;                /* the directory exists but is unreadable */
    size_t n;
    char *uuid[HOOK_MAX_MARKERS];
    char *name[HOOK_MAX_MARKERS]; /* NULL when the marker names none */
};

static void
markers_free(struct hook_markers *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->uuid[i]);
        free(m->name[i]);
    }
    m->n = 0;
}

/* The name a marker holds (malloc'ed), NULL when none. */
static char *
marker_name(int afd, const char *entry)
{
    char *buf, *p, *name = NULL;
    ssize_t r;
    size_t len = 0;
    int fd = openat(afd, entry, O_RDONLY | O_NOFOLLOW | O_NONBLOCK
                    | O_CLOEXEC | O_NOCTTY);
    struct stat st;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
        || !(buf = malloc(HOOK_MAX_MARKER_SIZE + 1))) {
        close(fd);
        return NULL;
    }
    while (len < HOOK_MAX_MARKER_SIZE
           && (r = read(fd, buf + len, HOOK_MAX_MARKER_SIZE - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        len += (size_t) r;
    }
    close(fd);
    buf[len] = '\0';
    if ((p = strstr(buf, "\nname=")) && p[6])
        name = strdup(p + 6);
    free(buf);
    return name;
}

/* Read the markers of c->state_dir.  A missing directory has none; one
 * that cannot be read (or is a link) counts as unknown. */
static void
markers_load(const struct hook_conf *c, struct hook_markers *m)
{
    DIR *dp;
    struct dirent *e;
    int sfd, afd;

    memset(m, 0, sizeof *m);
    sfd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
               | O_CLOEXEC);
    if (sfd < 0) {
        m->unknown = errno != ENOENT;
        return;
    }
    afd = openat(sfd, "active", O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                 | O_CLOEXEC);
    close(sfd);
    if (afd < 0) {
        m->unknown = errno != ENOENT;
        return;
    }
    if (!(dp = fdopendir(afd))) {
        close(afd);
        m->unknown = true;
        return;
    }
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        if (m->n == HOOK_MAX_MARKERS) {
            m->unknown = true;           /* too many to look at */
            break;
        }
        if (!(m->uuid[m->n] = strdup(e->d_name))) {
            m->unknown = true;
            break;
        }
        for (char *p = m->uuid[m->n]; *p; p++)
            *p = (char) tolower((unsigned char) *p);
        m->name[m->n] = marker_name(dirfd(dp), e->d_name);
        m->n++;
    }
    closedir(dp);
}

/* The marker for this name or uuid (either may be NULL), or NULL. */
static const char *
markers_match(const struct hook_markers *m, const char *name,
              const char *uuid)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        if (uuid && strcasecmp(m->uuid[i], uuid) == 0)
            return m->uuid[i];
        if (name && *name && m->name[i] && strcmp(m->name[i], name) == 0)
            return m->uuid[i];
    }
    return NULL;
}

/* The UUID of the domain XML in buf, found without parsing: the text of
 * the first <uuid> element within the first HOOK_UUID_SCAN bytes (libvirt
 * writes it right after <name>, whose text cannot hold a '<').  uuid
 * receives 36 characters, lower case; false when there is none. */
static bool
scan_uuid(const char *buf, size_t len, char uuid[37])
{
    static const char tag[] = "<uuid>";
    size_t i, k, lim = len < HOOK_UUID_SCAN ? len : HOOK_UUID_SCAN;

    for (i = 0; i + sizeof tag - 1 <= lim; i++) {
        if (memcmp(buf + i, tag, sizeof tag - 1) != 0)
            continue;
        i += sizeof tag - 1;
        while (i < len && isspace((unsigned char) buf[i]))
            i++;
        if (len - i < 36)
            return false;
        for (k = 0; k < 36; k++)
            uuid[k] = (char) tolower((unsigned char) buf[i + k]);
        uuid[36] = '\0';
        return uuid_valid(uuid);
    }
    return false;
}

/* The marker holds "PID STARTTIME" and the command line of its run: is
 * that run gone (no such process, or another one that reused the pid)?
 * cmd receives the command that finishes the migration ("" unknown).
 */
static bool
marker_run_gone(const char *path, char *cmd, size_t cmdlen)
{
    char buf[4096], *nl;
    long pid = 0;
    unsigned long long start = 0, now;
    ssize_t n = 0;
    int fd;

    cmd[0] = '\0';
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    buf[n > 0 ? n : 0] = '\0';
    if ((nl = strstr(buf, "\ncommand=")) && nl[9] && nl[9] != '\n') {
        snprintf(cmd, cmdlen, "%s", nl + 9);
        if ((nl = strchr(cmd, '\n')))
            *nl = '\0';
    }
    if (sscanf(buf, "%ld %llu", &pid, &start) < 1 || pid <= 0)
        return false;         /* unknown: assume it runs */
    now = vqm_proc_starttime(pid);
    return now == 0 || (start != 0 && now != start);
}

/* The start of a domain that a migration marker names is refused, and
 * so is any start whose XML cannot be read while any marker exists. */
static int
prepare_markers(const struct hook_conf *c, const struct hook_markers *m,
                const char *name, const char *uuid, const char *load_error)
{
    const char *hit = markers_match(m, name, uuid);
    char path[PATH_MAX], cmd[1024];

    if (hit) {
        /* The marker names its run: a run that is gone left the disks
         * half migrated, and the message names the command that
         * finishes the migration. */
        if (snprintf(path, sizeof path, "%s/active/%s", c->state_dir, hit)
            < (int) sizeof path && marker_run_gone(path, cmd, sizeof cmd))
            hook_log(LOG_ERR, "domain '%s' cannot start: an interrupted "
                     "virt-qed-migrate left its disks half migrated "
                     "(%s/active/%s exists, its run is gone); finish the "
                     "migration with: %s", vqm_q(name ? name : uuid),
                     vqm_q(c->state_dir), vqm_q(hit),
                     cmd[0] ? vqm_q(cmd) : "virt-qed-migrate --domain DOMAIN");
        else
            hook_log(LOG_ERR, "domain '%s' cannot start: virt-qed-migrate "
                     "is converting its disks (%s/active/%s exists); start "
                     "it again when the conversion has finished",
                     vqm_q(name ? name : uuid), vqm_q(c->state_dir),
                     vqm_q(hit));
        return VQM_EXIT_FAILED;
    }
    if (load_error && (m->n || m->unknown)) {
        hook_log(LOG_ERR, "domain '%s' cannot start: %s; virt-qed-migrate "
                 "has migrations in progress (%s/active%s), so the start "
                 "is refused until they have finished",
                 vqm_q(name ? name : "?"), load_error, vqm_q(c->state_dir),
                 m->unknown ? " cannot be read" : "");
        return VQM_EXIT_FAILED;
    }
    return VQM_EXIT_OK;
}

static int
op_prepare(const struct hook_conf *c, struct hook_domain *d)
{
    CLEANUP_FREE char *name = printable(d->name);
    CLEANUP_FREE char *list = NULL;
    size_t n;

    n = count_qed(d);
    if (n == 0)
        return VQM_EXIT_OK;
    list = qed_list(d);
    switch (c->policy) {
    case POLICY_WARN:
        hook_log(LOG_WARNING, "domain '%s' starts with %zu QED disk "
                 "image%s (%s); convert %s with: virt-qed-migrate -c %s "
                 "--domain %s", name, n, n == 1 ? "" : "s",
                 list ? list : "?", n == 1 ? "it" : "them", vqm_sq(c->uri),
                 vqm_sq(d->name));
        return VQM_EXIT_OK;
    case POLICY_CONVERT_ON_STOP:
        hook_log(LOG_WARNING, "domain '%s' starts with %zu QED disk "
                 "image%s (%s); %s converted when the domain stops",
                 name, n, n == 1 ? "" : "s", list ? list : "?",
                 n == 1 ? "it will be" : "they will be");
        return VQM_EXIT_OK;
    case POLICY_DENY:
        hook_log(LOG_ERR, "domain '%s' was not started: it uses QED disk "
                 "image%s (%s), refused by the policy in %s; convert "
                 "%s with: virt-qed-migrate -c %s --domain %s", name,
                 n == 1 ? "" : "s", list ? list : "?", vqm_q(c->path),
                 n == 1 ? "it" : "them", vqm_sq(c->uri), vqm_sq(d->name));
        return VQM_EXIT_FAILED;
    case POLICY_INVALID:
        hook_log(LOG_ERR, "domain '%s' was not started: it uses QED disk "
                 "image%s (%s) and the hook policy is unusable (%s)", name,
                 n == 1 ? "" : "s", list ? list : "?", vqm_q(c->problem));
        return VQM_EXIT_FAILED;
    }
    return VQM_EXIT_FAILED;
}

static int
op_release(const struct hook_conf *c, struct hook_domain *d)
{
    CLEANUP_FREE char *name = printable(d->name);
    size_t n;

    if (c->policy != POLICY_CONVERT_ON_STOP)
        return VQM_EXIT_OK;
    n = count_qed(d);
    if (n == 0)
        return VQM_EXIT_OK;
    if (!d->uuid) {
        hook_log(LOG_WARNING, "domain '%s' has no valid UUID in its XML: "
                 "no conversion scheduled", name);
        return VQM_EXIT_OK;
    }
    hook_log(LOG_NOTICE, "domain '%s' stopped with %zu QED disk image%s: "
             "conversion scheduled", name, n, n == 1 ? "" : "s");
    if (spawn_worker(c, name ? name : "?", d->uuid) < 0)
        return VQM_EXIT_FAILED;
    return VQM_EXIT_OK;
}

/* migrate begin / restore begin / --hook-filter: rewritten XML on
 * stdout, nothing when nothing changed.
 */
static int
op_filter(struct hook_domain *d, struct vqm_error *err)
{
    if (filter_domain(d) == 0)
        return 0;
    return write_xml(d, err);
}

int
vqm_cmd_hook(const struct vqm_opts *o)
{
    struct hook_domain d = { 0 };
    struct hook_conf c;
    struct vqm_error err = { 0 };
    static struct hook_markers markers;
    CLEANUP_FREE char *op = NULL;
    CLEANUP_FREE char *buf = NULL;
    size_t len = 0;
    const char *subop = "-";
    const char *conf_path;
    bool filter, prepare, parsed = false;
    int ret;

    openlog("virt-qed-migrate", LOG_PID, LOG_DAEMON);
    xmlInitParser();
    conf_path = getenv("VQM_HOOK_CONF");
    if (!conf_path || !*conf_path)
        conf_path = VQM_HOOK_CONF;

    if (o->hook_filter) {
        /* Stand-alone filter: no policy, errors are errors; the limits
         * of the hook (input size, hook.conf's timeout) hold. */
        if (conf_load(&c, conf_path, o->state_dir) < 0) {
            vqm_report_error("out of memory");
            conf_free(&c);
            return VQM_EXIT_FAILED;
        }
        hook_filter_mode = 1;
        signal(SIGALRM, hook_alarm);
        alarm(c.timeout);
        conf_free(&c);
        if (load_domain(&d, &err) < 0 || op_filter(&d, &err) < 0) {
            alarm(0);
            vqm_report_error("%s", err.msg);
            domain_free(&d);
            return VQM_EXIT_FAILED;
        }
        alarm(0);
        domain_free(&d);
        return VQM_EXIT_OK;
    }

    op = strdup(o->hook);
    if (!op) {
        vqm_report_error("out of memory");
        return VQM_EXIT_FAILED;
    }
    {
        char *colon = strchr(op, ':');
        if (colon) {
            *colon = '\0';
            subop = colon + 1;
        } else {
            /* --hook=OP alone: the sub-operation libvirt uses for it. */
            subop = strcmp(op, "release") == 0
                || strcmp(op, "stopped") == 0 ? "end" : "begin";
        }
    }

    /* Only these operations concern us; everything else is allowed
     * without reading anything.
     */
    filter = (strcmp(op, "migrate") == 0 || strcmp(op, "restore") == 0)
        && strcmp(subop, "begin") == 0;
    if (!filter
        && !(strcmp(op, "prepare") == 0 && strcmp(subop, "begin") == 0)
        && !(strcmp(op, "release") == 0 && strcmp(subop, "end") == 0))
        return VQM_EXIT_OK;

    if (conf_load(&c, conf_path, o->state_dir) < 0) {
        vqm_report_error("out of memory");
        conf_free(&c);
        return VQM_EXIT_FAILED;
    }
    hook_log_dir = c.state_dir;
    if (c.policy == POLICY_INVALID)
        syslog(LOG_ERR, "%s", c.problem);
    prepare = strcmp(op, "prepare") == 0;
    if (prepare)
        markers_load(&c, &markers);

    /* The time limit: reading a header from a dead NFS server must not
     * hang a start forever.  On timeout a start is refused only where
     * the policy would refuse it.
     */
    hook_deny_on_timeout = prepare
        && (c.policy == POLICY_DENY || c.policy == POLICY_INVALID
            || markers.n || markers.unknown);
    signal(SIGALRM, hook_alarm);
    alarm(c.timeout);

    vqm_debug("hook %s:%s, policy %s (%s)", op, subop,
              policy_name(c.policy), c.path);
    /* The migration markers are checked before the XML is parsed, on the
     * domain name libvirt passed (argv, VQM_HOOK_DOMAIN) and a UUID found
     * by a plain scan, so that no XML can get a start past them. */
    if (prepare) {
        const char *argname = getenv("VQM_HOOK_DOMAIN");
        char uuid[37];
        bool have_uuid = false;
        int r;

        if (read_stdin(&buf, &len, &err) == 0) {
            have_uuid = scan_uuid(buf, len, uuid);
            if (len == 0)
                vqm_error_set(&err, VQM_ERR_INVALID,
                              "no domain XML on stdin");
        }
        r = prepare_markers(&c, &markers, argname, have_uuid ? uuid : NULL,
                            NULL);
        /* While any marker exists, a parse that times out refuses the
         * start too (hook_deny_on_timeout). */
        if (r == VQM_EXIT_OK && !err.msg[0])
            parsed = domain_parse(buf, len, &d, &err) == 0;
        if (r == VQM_EXIT_OK)
            r = parsed ? prepare_markers(&c, &markers, d.name, d.uuid, NULL)
                : prepare_markers(&c, &markers, argname,
                                  have_uuid ? uuid : NULL, err.msg);
        if (r != VQM_EXIT_OK) {
            ret = r;
            goto done;
        }
        /* No marker names this domain: the policy alone decides what a
         * timeout means from here on. */
        hook_deny_on_timeout = c.policy == POLICY_DENY
            || c.policy == POLICY_INVALID;
    }
    if (prepare ? !parsed : load_domain(&d, &err) < 0) {
        if (filter) {
            /* Leave the XML as libvirt has it. */
            hook_log(LOG_WARNING, "%s; domain XML left unchanged", err.msg);
            ret = VQM_EXIT_OK;
        } else if (hook_deny_on_timeout) {
            /* deny cannot tell whether the domain uses QED: refuse. */
            hook_log(LOG_ERR, "%s", err.msg);
            ret = VQM_EXIT_FAILED;
        } else {
            hook_log(LOG_WARNING, "%s", err.msg);
            ret = VQM_EXIT_OK;
        }
    } else if (filter) {
        if (op_filter(&d, &err) < 0) {
            hook_log(LOG_WARNING, "%s", err.msg);
        }
        ret = VQM_EXIT_OK;
    } else if (prepare) {
        ret = op_prepare(&c, &d);
    } else {
        ret = op_release(&c, &d);
    }
 done:
    alarm(0);
    domain_free(&d);
    markers_free(&markers);
    conf_free(&c);
    closelog();
    return ret;
}
