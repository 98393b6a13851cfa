/* virt-qed-migrate: unit test of the domain XML module
 * (src/domxml/domxml.c), no libvirt needed.
 *
 * Parses a definition with every kind of disk, rewrites some of them by
 * lookup and proves that exactly the intended attributes changed:
 * undoing those changes on the output as text gives back the unchanged
 * document as libxml2 prints it.  Also: the hardened parse refuses a
 * document type declaration (and so every entity trick), oversized and
 * broken input; kinds that cannot hold QED are never offered to the
 * lookup; snapshot documents; namespaced look-alikes are not disks.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domxml.h"

static int failures;

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                #cond); \
        failures++; \
    } \
} while (0)

static const char domain_xml[] =
"<domain type='qemu'>\n"
"  <name>t1</name>\n"
"  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n"
"  <!-- a comment stays -->\n"
"  <metadata>\n"
"    <x:disk xmlns:x='urn:other'><x:source file='/p/top.qed'/></x:disk>\n"
"  </metadata>\n"
"  <devices>\n"
"    <disk type='file' device='disk'>\n"
"      <driver name='qemu' type='qed' cache='none'/>\n"
"      <source file='/p/top.qed'/>\n"
"      <backingStore type='file'>\n"
"        <format type='qed'/>\n"
"        <source file='/q/mid.qed'/>\n"
"        <backingStore type='file'>\n"
"          <format type='raw'/>\n"
"          <source file='/q/base.raw'/>\n"
"          <backingStore/>\n"
"        </backingStore>\n"
"      </backingStore>\n"
"      <target dev='vda' bus='virtio'/>\n"
"    </disk>\n"
"    <disk type='volume' device='disk'>\n"
"      <driver name='qemu' type='qed'/>\n"
"      <source pool='p1' volume='vol.qed'/>\n"
"      <target dev='vdb' bus='virtio'/>\n"
"    </disk>\n"
"    <disk type='block' device='disk'>\n"
"      <driver name='qemu' type='qed'/>\n"
"      <source dev='/dev/sdz'/>\n"
"      <target dev='vdc' bus='virtio'/>\n"
"    </disk>\n"
"    <disk type='file' device='disk'>\n"
"      <source file='/p/nodriver.qed'/>\n"
"      <target dev='vdd' bus='virtio'/>\n"
"    </disk>\n"
"    <disk type='file' device='cdrom'>\n"
"      <driver name='qemu' type='raw'/>\n"
"      <target dev='hdc' bus='ide'/>\n"
"      <readonly/>\n"
"    </disk>\n"
"    <disk type='network' device='disk'>\n"
"      <driver name='qemu' type='raw'/>\n"
"      <source protocol='nbd' name='x'><host name='h' port='1'/></source>\n"
"      <target dev='vde' bus='virtio'/>\n"
"    </disk>\n"
"    <disk type='file' device='floppy'>\n"
"      <driver name='qemu' type='qed'/>\n"
"      <source file='/p/floppy.qed'/>\n"
"      <target dev='fda' bus='fdc'/>\n"
"    </disk>\n"
"    <disk type='file' device='cdrom'>\n"
"      <driver name='qemu' type='qed'/>\n"
"      <source file='/p/top.qed'/>\n"
"      <target dev='hdd' bus='ide'/>\n"
"      <readonly/>\n"
"      <shareable/>\n"
"    </disk>\n"
"    <disk type='block' device='lun'>\n"
"      <driver name='qemu' type='raw'/>\n"
"      <source dev='/p/top.qed'/>\n"
"      <target dev='sda' bus='scsi'/>\n"
"    </disk>\n"
"    <graphics type='vnc' port='-1' passwd='s3cret'/>\n"
"  </devices>\n"
"</domain>\n";

/* Replace the first occurrence of from by to in *s (realloc'd). */
static void
replace(char **s, const char *from, const char *to)
{
    char *p = strstr(*s, from), *n;
    size_t a, lf = strlen(from), lt = strlen(to);

    if (!p) {
        fprintf(stderr, "expected '%s' in the output\n", from);
        failures++;
        return;
    }
    a = (size_t) (p - *s);
    n = malloc(strlen(*s) - lf + lt + 1);
    if (!n)
        abort();
    memcpy(n, *s, a);
    memcpy(n + a, to, lt);
    strcpy(n + a + lt, p + lf);
    free(*s);
    *s = n;
}

static bool
eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static struct vqm_domxml *
parse(const char *xml)
{
    struct vqm_domxml *x = NULL;
    struct vqm_error err = { 0 };

    if (vqm_domxml_parse(xml, strlen(xml), NULL, &x, &err) < 0) {
        fprintf(stderr, "parse: %s\n", err.msg);
        failures++;
    }
    return x;
}

static void
test_parse(void)
{
    struct vqm_domxml *x = parse(domain_xml);
    struct vqm_domxml_disk *d = NULL;
    size_t n = 0;
    struct vqm_error err = { 0 };

    if (!x)
        return;
    CHECK(vqm_domxml_is_domain(x));
    CHECK(eq(vqm_domxml_name(x), "t1"));
    CHECK(eq(vqm_domxml_uuid(x), "6695eb01-f6a4-8304-79aa-97f2502e193f"));
    CHECK(vqm_domxml_disks(x, &d, &n, &err) == 0);
    CHECK(n == 9);
    if (n != 9)
        goto out;
    CHECK(d[0].top.form == VQM_SOURCE_FILE && eq(d[0].top.format, "qed"));
    CHECK(eq(d[0].top.path, "/p/top.qed") && d[0].kind == VQM_DEVICE_DISK);
    CHECK(d[0].n_backing == 2);
    CHECK(eq(d[0].backing[0].path, "/q/mid.qed"));
    CHECK(eq(d[0].backing[1].format, "raw"));
    CHECK(d[1].top.form == VQM_SOURCE_VOLUME);
    CHECK(eq(d[1].top.pool, "p1") && eq(d[1].top.volume, "vol.qed"));
    CHECK(d[2].top.form == VQM_SOURCE_BLOCK && eq(d[2].top.path, "/dev/sdz"));
    CHECK(d[3].top.format == NULL);
    CHECK(d[4].kind == VQM_DEVICE_CDROM && d[4].top.path == NULL);
    CHECK(d[4].readonly && !d[4].shareable);
    CHECK(d[5].top.form == VQM_SOURCE_NETWORK);
    CHECK(!vqm_domxml_can_hold_qed(&d[5]));
    CHECK(d[6].kind == VQM_DEVICE_FLOPPY && vqm_domxml_can_hold_qed(&d[6]));
    CHECK(d[7].kind == VQM_DEVICE_CDROM && d[7].readonly && d[7].shareable);
    CHECK(d[8].kind == VQM_DEVICE_LUN && !vqm_domxml_can_hold_qed(&d[8]));
    CHECK(d[8].index == 8 && eq(d[8].target, "sda"));
    CHECK(eq(vqm_domxml_device_name(d[8].kind), "lun"));
    CHECK(eq(vqm_domxml_source_name(d[1].top.form), "volume"));
 out:
    vqm_domxml_disks_free(d, n);
    vqm_domxml_free(x);
}

/* What the hardened parse refuses, each with one clear message. */
static void
test_refused(void)
{
    static const char *const bad[] = {
        "<domain><devices>",
        "<!DOCTYPE domain [<!ENTITY a 'x'>]><domain><name>&a;</name>"
        "</domain>",
        "<!DOCTYPE domain SYSTEM 'http://127.0.0.1:1/x.dtd'><domain/>",
        "<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
        "<domain><name>&x;</name></domain>",
        "<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;"
        "&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>"
        "<domain><name>&c;</name></domain>",
        "<pool/>",
        "<q:domain xmlns:q='urn:x'/>",
    };
    size_t i, big = VQM_DOMXML_MAX_SIZE + 1;
    struct vqm_domxml *x = NULL;
    struct vqm_error err = { 0 };
    char *huge;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        x = NULL;
        CHECK(vqm_domxml_parse(bad[i], strlen(bad[i]), NULL, &x, &err) < 0);
        CHECK(x == NULL && err.msg[0]);
        if (strstr(bad[i], "DOCTYPE"))
            CHECK(err.code == VQM_ERR_REFUSED
                  && strstr(err.msg, "document type declaration"));
        vqm_domxml_free(x);
    }
    huge = malloc(big);
    if (!huge)
        abort();
    memset(huge, ' ', big);
    memcpy(huge, "<domain>", 8);
    memcpy(huge + big - 9, "</domain>", 9);
    CHECK(vqm_domxml_parse(huge, big, NULL, &x, &err) < 0);
    CHECK(strstr(err.msg, "larger than") != NULL);
    free(huge);
}

/* The lookup of the test: every layer named in the table moves. */
struct move_map {
    const char *from, *to;       /* path or volume */
};
static const struct move_map moves[] = {
    { "/p/top.qed", "/p/top.qcow2" },
    { "/q/mid.qed", "/q/mid.qcow2" },
    { "vol.qed", "vol.qcow2" },
    { "/dev/sdz", "/dev/sdz" },
    { "/p/nodriver.qed", "/p/nodriver.qed" },
    { "/p/floppy.qed", "/p/floppy.qcow2" },
};

static unsigned asked_lun, asked_network, asked_other;

static bool
lookup(void *opaque, const struct vqm_domxml_disk *d, unsigned depth,
       const struct vqm_domxml_layer *l, struct vqm_domxml_move *mv)
{
    const char *key = l->form == VQM_SOURCE_VOLUME ? l->volume : l->path;
    size_t i;

    (void) opaque;
    (void) depth;
    if (d->kind == VQM_DEVICE_LUN)
        asked_lun++;
    if (l->form == VQM_SOURCE_NETWORK)
        asked_network++;
    if (!key)
        return false;
    for (i = 0; i < sizeof moves / sizeof moves[0]; i++) {
        if (strcmp(key, moves[i].from) != 0)
            continue;
        if (l->form == VQM_SOURCE_VOLUME)
            mv->new_volume = moves[i].to;
        else
            mv->new_path = moves[i].to;
        mv->new_format = "qcow2";
        return true;
    }
    asked_other++;
    return false;
}

static void
test_rewrite(void)
{
    struct vqm_domxml *x = parse(domain_xml), *y = NULL;
    struct vqm_error err = { 0 };
    char *out = NULL, *same = NULL;
    struct vqm_domxml_disk *d = NULL;
    size_t n = 0, changed = 0;

    if (!x)
        return;
    CHECK(vqm_domxml_format(x, &same, &err) == 0);
    CHECK(vqm_domxml_rewrite(x, lookup, NULL, &changed, &err) == 0);
    /* vda, its mid layer, vdb, vdc, vdd, fda, hdd (base.raw: no). */
    CHECK(changed == 7);
    CHECK(asked_lun == 0 && asked_network == 0);
    CHECK(asked_other == 1);                     /* /q/base.raw */
    CHECK(vqm_domxml_format(x, &out, &err) == 0);
    if (!out || !same)
        goto out;
    CHECK(strstr(out, "<?xml") == NULL);
    CHECK(strstr(out, "passwd=\"s3cret\"") != NULL);
    CHECK(strstr(out, "<!-- a comment stays -->") != NULL);

    /* The new values, read back; a second rewrite changes nothing. */
    y = parse(out);
    if (y && vqm_domxml_disks(y, &d, &n, &err) == 0 && n == 9) {
        CHECK(eq(d[0].top.path, "/p/top.qcow2"));
        CHECK(eq(d[0].top.format, "qcow2"));
        CHECK(eq(d[0].backing[0].path, "/q/mid.qcow2"));
        CHECK(eq(d[0].backing[0].format, "qcow2"));
        CHECK(eq(d[0].backing[1].path, "/q/base.raw"));
        CHECK(eq(d[0].backing[1].format, "raw"));
        CHECK(eq(d[1].top.volume, "vol.qcow2") && eq(d[1].top.pool, "p1"));
        CHECK(eq(d[2].top.path, "/dev/sdz") && eq(d[2].top.format, "qcow2"));
        CHECK(eq(d[3].top.format, "qcow2"));
        CHECK(eq(d[4].top.format, "raw"));
        CHECK(eq(d[5].top.format, "raw"));
        CHECK(eq(d[6].top.path, "/p/floppy.qcow2"));
        CHECK(eq(d[7].top.path, "/p/top.qcow2") && d[7].readonly);
        CHECK(eq(d[8].top.path, "/p/top.qed") && eq(d[8].top.format, "raw"));
        CHECK(vqm_domxml_rewrite(y, lookup, NULL, &changed, &err) == 0);
        CHECK(changed == 0);
    } else {
        CHECK(n == 9);
    }
    vqm_domxml_disks_free(d, n);
    vqm_domxml_free(y);

    /* Nothing else changed: undo the intended changes as text. */
    replace(&out, "type=\"qcow2\" cache=\"none\"",
            "type=\"qed\" cache=\"none\"");
    replace(&out, "/p/top.qcow2", "/p/top.qed");
    replace(&out, "<format type=\"qcow2\"/>", "<format type=\"qed\"/>");
    replace(&out, "/q/mid.qcow2", "/q/mid.qed");
    replace(&out, "type=\"qcow2\"/>\n      <source pool",
            "type=\"qed\"/>\n      <source pool");
    replace(&out, "vol.qcow2", "vol.qed");
    replace(&out, "type=\"qcow2\"/>\n      <source dev",
            "type=\"qed\"/>\n      <source dev");
    replace(&out, "<driver name=\"qemu\" type=\"qcow2\"/>", "");
    replace(&out, "type=\"qcow2\"/>\n      <source file=\"/p/floppy.qcow2",
            "type=\"qed\"/>\n      <source file=\"/p/floppy.qed");
    replace(&out, "type=\"qcow2\"/>\n      <source file=\"/p/top.qcow2",
            "type=\"qed\"/>\n      <source file=\"/p/top.qed");
    if (strcmp(out, same) != 0) {
        fprintf(stderr, "unexpected changes:\n--- got\n%s\n--- want\n%s\n",
                out, same);
        failures++;
    }
 out:
    free(out);
    free(same);
    vqm_domxml_free(x);
}

/* Attributes in another namespace are not ours: they are neither read
 * nor duplicated by a rewrite; a disk without <target> has no target.
 */
static void
test_foreign_attributes(void)
{
    static const char xml[] =
        "<domain xmlns:q='urn:x'><name>n</name><devices>"
        "<disk type='file' device='disk'><driver q:type='qed' type='qed'/>"
        "<source q:file='/evil' file='/p/top.qed'/><target dev='vda'/></disk>"
        "<disk type='file' dev='vdb'><driver type='qed'/>"
        "<source file='/b.qed'/></disk>"
        "<q:disk type='file'><source file='/p/top.qed'/></q:disk>"
        "</devices></domain>";
    struct vqm_domxml *x = parse(xml);
    struct vqm_error err = { 0 };
    struct vqm_domxml_disk *d = NULL;
    size_t n = 0, changed = 0;
    char *out = NULL;

    if (!x)
        return;
    CHECK(vqm_domxml_disks(x, &d, &n, &err) == 0);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(eq(d[0].top.path, "/p/top.qed"));
        CHECK(d[1].target == NULL);
    }
    vqm_domxml_disks_free(d, n);
    CHECK(vqm_domxml_rewrite(x, lookup, NULL, &changed, &err) == 0);
    CHECK(changed == 1);
    CHECK(vqm_domxml_format(x, &out, &err) == 0);
    if (out) {
        CHECK(strstr(out, "q:file=\"/evil\" file=\"/p/top.qcow2\"") != NULL);
        CHECK(strstr(out, "q:type=\"qed\" type=\"qcow2\"") != NULL);
        CHECK(strstr(out, "/b.qed") != NULL);
        CHECK(strstr(out, "<q:disk type=\"file\"><source file=\"/p/top.qed\"")
              != NULL);
    }
    free(out);
    vqm_domxml_free(x);
}

/* A snapshot: the embedded domain's disks and the snapshot's own
 * <disks> are listed and rewritten; name and uuid are the domain's. */
static void
test_snapshot(void)
{
    static const char xml[] =
        "<domainsnapshot><name>s1</name><disks>"
        "<disk name='vda' snapshot='external' type='file'>"
        "<driver type='qcow2'/><source file='/p/ov.qcow2'/></disk>"
        "<disk name='hdc' snapshot='no'/></disks>"
        "<domain><name>t1</name><uuid>u</uuid><devices>"
        "<disk type='file' device='cdrom'><driver type='qed'/>"
        "<source file='/p/top.qed'/><target dev='hdc'/></disk>"
        "</devices></domain></domainsnapshot>";
    struct vqm_domxml *x = parse(xml);
    struct vqm_error err = { 0 };
    struct vqm_domxml_disk *d = NULL;
    size_t n = 0, changed = 0;
    char *out = NULL;

    if (!x)
        return;
    CHECK(!vqm_domxml_is_domain(x));
    CHECK(eq(vqm_domxml_name(x), "t1") && eq(vqm_domxml_uuid(x), "u"));
    CHECK(vqm_domxml_disks(x, &d, &n, &err) == 0);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(!d[0].snapshot_disk && d[0].kind == VQM_DEVICE_CDROM);
        CHECK(d[1].snapshot_disk && eq(d[1].target, "vda"));
        CHECK(eq(d[1].top.path, "/p/ov.qcow2"));
        CHECK(d[2].top.path == NULL);
    }
    vqm_domxml_disks_free(d, n);
    CHECK(vqm_domxml_rewrite(x, lookup, NULL, &changed, &err) == 0);
    CHECK(changed == 1);
    CHECK(vqm_domxml_format(x, &out, &err) == 0);
    CHECK(out && strstr(out, "<driver type=\"qcow2\"/><source file=\""
                        "/p/top.qcow2\"/><target dev=\"hdc\"/>"));
    free(out);
    vqm_domxml_free(x);
}

int
main(void)
{
    test_parse();
    test_refused();
    test_rewrite();
    test_foreign_attributes();
    test_snapshot();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
