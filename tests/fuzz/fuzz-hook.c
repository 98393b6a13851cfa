/* fuzz-sources: src/hook/hook.c src/hook/hook-conf.c src/hook/hook-domain.c src/hook/hook-filter.c src/hook/hook-log.c src/hook/hook-markers.c src/hook/hook-spawn.c src/domxml/*.c src/qed/*.c src/common/*.c */
/* fuzz-libs: -Wl,--wrap=open -Wl,--wrap=open64 -Wl,--wrap=syslog -Wl,--wrap=__syslog_chk */
/* fuzz-pkgs: libxml-2.0 */
/* fuzz-seeds: hook domxml */
/* fuzz-dict: tests/fuzz/xml.dict */
/* fuzz-args: -max_len=65536 -close_fd_mask=3 */
/* virt-qed-migrate: libFuzzer target for the libvirt hook's parsers
 * (src/hook, without the worker's libvirt part, hook-worker.c).
 *
 * The input is a hook.conf, a line "%%", then the domain XML libvirt
 * passes on stdin (without the "%%" line, the whole input is tried as
 * both).  The configuration is loaded (vqm_hook_conf_load), the XML
 * parsed (vqm_hook_domain_parse, with the shared module src/domxml: the
 * disks and backing layers it names are classified by their headers),
 * the migration markers are matched (vqm_hook_check_markers) and the
 * "prepare" decision is taken (vqm_hook_op_prepare: only messages, no
 * libvirt) and the migrate/restore filter rewrites the XML
 * (vqm_hook_filter_domain, vqm_hook_write_xml), whose output must parse
 * as a <domain>.  libxml2 must never try to load a file or URL.
 * The worker of convert-on-stop (vqm_hook_op_release) is never started.
 *
 * Files are only opened below the scratch directory ("/vqmfuzz/" in
 * inputs; other paths look missing), which holds still.qed (QED),
 * inplace.qed (qcow2 under a QED name), renamed.qcow2 (without
 * renamed.qed), raw.img, fifo.qed (a FIFO) and state/active/<uuid> (a
 * migration in progress).  The link wraps open() and syslog() (the
 * fuzz-libs line above, and tests/fuzz.mk) for that, and for no system
 * log from the fuzzer.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "hook/hook-internal.h"
#include "qed/qed.h"
#define FUZZ_WITH_LIBXML 1
#include "fuzz-common.h"

#define BUSY_UUID "2a7c1e44-0b8d-4f3e-9d6a-5e1f7c3b9a20"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);
void __wrap_syslog(int prio, const char *fmt, ...);
void __wrap___syslog_chk(int prio, int flag, const char *fmt, ...);

void
__wrap_syslog(int prio, const char *fmt, ...)
{
    (void) prio;
    (void) fmt;
}

/* syslog() under _FORTIFY_SOURCE. */
void
__wrap___syslog_chk(int prio, int flag, const char *fmt, ...)
{
    (void) prio;
    (void) flag;
    (void) fmt;
}

/* Only paths below the scratch directory open, and /proc/PID/stat (a
 * marker's run, vqm_proc_starttime). */
static bool
fuzz_path_allowed(const char *path)
{
    size_t dl = strlen(fuzz_dir), n;

    if (strncmp(path, "/proc/", 6) == 0) {
        n = strspn(path + 6, "0123456789");
        return n > 0 && strcmp(path + 6 + n, "/stat") == 0;
    }
    return dl && strncmp(path, fuzz_dir, dl) == 0 && path[dl] == '/'
        && !strstr(path, "/../") && !strstr(path, "/./");
}

static int
checked_open(int (*real)(const char *, int, ...), const char *path,
             int flags, va_list ap)
{
    mode_t mode = flags & O_CREAT ? (mode_t) va_arg(ap, int) : 0;

    if (!fuzz_path_allowed(path)) {
        errno = ENOENT;
        return -1;
    }
    return real(path, flags, mode);
}

int
__wrap_open(const char *path, int flags, ...)
{
    va_list ap;
    int r;

    va_start(ap, flags);
    r = checked_open(__real_open, path, flags, ap);
    va_end(ap);
    return r;
}

int
__wrap_open64(const char *path, int flags, ...)
{
    va_list ap;
    int r;

    va_start(ap, flags);
    r = checked_open(__real_open64, path, flags, ap);
    va_end(ap);
    return r;
}

static void
le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static void
le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static int out_fd = -1;

static void
setup(void)
{
    static unsigned char qed[8192], qcow2[512];
    char path[512];

    unsetenv("VQM_HOOK_DOMAIN");
    unsetenv("VQM_DEBUG");
    fuzz_forbid_loads();
    /* A 1 MiB QED image, byte for byte what "qemu-img create -f qed -o
     * cluster_size=4k,table_size=1" writes: an empty L1 table. */
    le32(qed, QED_MAGIC);
    le32(qed + 4, 4096);
    le32(qed + 8, 1);
    le32(qed + 12, 1);
    le64(qed + 40, 4096);
    le64(qed + 48, 1024 * 1024);
    memcpy(qcow2, "QFI\xfb\0\0\0\3", 8);
    fuzz_scratch();
    fuzz_write("still.qed", qed, sizeof qed);
    fuzz_write("inplace.qed", qcow2, sizeof qcow2);
    fuzz_write("renamed.qcow2", qcow2, sizeof qcow2);
    fuzz_write("raw.img", qed + 4096, 4096);
    snprintf(path, sizeof path, "%s/fifo.qed", fuzz_dir);
    if (mkfifo(path, 0600) < 0)
        abort();
    fuzz_mkdir("state");
    fuzz_mkdir("state/active");
    fuzz_write("state/active/" BUSY_UUID, "1\n", 2);
    out_fd = memfd_create("fuzz-hook-out", MFD_CLOEXEC);
    if (out_fd < 0)
        abort();
}

static void
check_conf(const struct hook_conf *c)
{
    if (c->policy > POLICY_INVALID
        || (c->policy == POLICY_INVALID && !c->problem[0])
        || !c->uri || !c->state_dir || c->state_dir[0] != '/'
        || (c->log && c->log[0] && c->log[0] != '/')
        || c->timeout < 1 || c->timeout > 3600) {
        fprintf(stderr, "fuzz: conf_load gave an impossible result\n");
        abort();
    }
    (void) vqm_hook_policy_name(c->policy);
}

/* The filter: write_xml prints on stdout; catch it, it must be XML. */
static void
filter(struct hook_domain *d, const char *in, size_t inlen)
{
    struct vqm_error err = { 0 };
    int saved;
    off_t len;
    char *buf;
    xmlDocPtr doc;

    if (vqm_hook_filter_domain(d) == 0)
        return;
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    if (saved < 0 || ftruncate(out_fd, 0) < 0
        || lseek(out_fd, 0, SEEK_SET) < 0
        || dup2(out_fd, STDOUT_FILENO) < 0)
        abort();
    if (vqm_hook_write_xml(d, &err) < 0) {
        fprintf(stderr, "fuzz: write_xml: %s\n", err.msg);
        abort();
    }
    if (dup2(saved, STDOUT_FILENO) < 0)
        abort();
    close(saved);
    len = lseek(out_fd, 0, SEEK_END);
    buf = malloc((size_t) len + 1);
    if (len <= 0 || !buf || pread(out_fd, buf, (size_t) len, 0) != len)
        abort();
    buf[len] = '\0';
    fuzz_check_secret(in, inlen, buf);
    doc = vqm_xml_read(buf, (size_t) len, "filter output", "domain", &err);
    if (!doc) {
        fprintf(stderr, "fuzz: the filter printed no <domain>:\n%s\n", buf);
        abort();
    }
    xmlFreeDoc(doc);
    free(buf);
}

static void
domain(const struct hook_conf *c, const char *xml, size_t len,
       const char *in, size_t inlen)
{
    struct hook_domain d;
    struct vqm_error err = { 0 };
    struct hook_markers m;
    char uuid[37];
    size_t i, n;
    char *list;
    int ret;

    if (vqm_hook_domain_parse(xml, len, &d, &err) < 0) {
        if (!err.msg[0])
            abort();
        vqm_hook_domain_free(&d);
        return;
    }
    fuzz_check_secret(in, inlen, d.name);
    if (!d.name || (d.uuid && !vqm_hook_uuid_valid(d.uuid))
        || d.ndisks > HOOK_MAX_DISKS)
        abort();
    for (i = 0; i < d.ndisks; i++) {
        fuzz_check_secret(in, inlen, d.disks[i].path);
        fuzz_check_secret(in, inlen, d.disks[i].claimed);
        fuzz_check_secret(in, inlen, d.disks[i].target);
    }
    n = vqm_hook_count_qed(&d);
    list = vqm_hook_qed_list(&d);
    if (n > 0 && (!list || !*list))
        abort();
    free(list);

    /* The markers: refused exactly when one names the domain; the UUID
     * scan finds only valid UUIDs. */
    vqm_hook_markers_load(c, &m);
    if ((vqm_hook_check_markers(c, &m, d.name, d.uuid, NULL) != HOOK_ALLOW)
        != (vqm_hook_markers_match(&m, d.name, d.uuid) != NULL))
        abort();
    if (vqm_hook_scan_uuid(xml, len, uuid) && !vqm_hook_uuid_valid(uuid))
        abort();
    vqm_hook_markers_free(&m);

    /* prepare:begin refuses, by policy, QED. */
    ret = vqm_hook_op_prepare(c, &d);
    if ((ret == HOOK_REFUSE)
        != (n > 0 && (c->policy == POLICY_DENY
                      || c->policy == POLICY_INVALID))) {
        fprintf(stderr, "fuzz: prepare returned %d (policy %s, %zu QED)\n",
                ret, vqm_hook_policy_name(c->policy), n);
        abort();
    }
    if (c->policy != POLICY_CONVERT_ON_STOP
        && vqm_hook_op_release(c, &d) != HOOK_ALLOW)
        abort();

    filter(&d, in, inlen);
    vqm_hook_domain_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hook_conf c;
    char conf_path[512];
    size_t len, conf_len, xml_off;
    char *text, *sep;

    if (out_fd < 0)
        setup();
    text = fuzz_expand(data, size, &len);

    /* hook.conf, "%%", domain XML. */
    if (len >= 3 && memcmp(text, "%%\n", 3) == 0) {
        conf_len = 0;
        xml_off = 3;
    } else if ((sep = memmem(text, len, "\n%%\n", 4))) {
        conf_len = (size_t) (sep - text) + 1;
        xml_off = conf_len + 3;
    } else {
        conf_len = len;
        xml_off = 0;
    }
    fuzz_write("hook.conf", text, conf_len);
    snprintf(conf_path, sizeof conf_path, "%s/hook.conf", fuzz_dir);
    if (vqm_hook_conf_load(&c, conf_path, NULL) < 0)
        abort();
    check_conf(&c);
    domain(&c, text + xml_off, len - xml_off, text, len);
    vqm_hook_conf_free(&c);
    free(text);
    return 0;
}
