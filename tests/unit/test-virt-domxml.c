/* virt-qed-migrate: unit test of the domain XML reader and rewriter
 * (src/virt/virt-domxml.c), no libvirt needed.
 *
 * Parses a definition with every kind of disk, rewrites some of them and
 * proves that exactly the intended attributes changed: undoing those
 * changes on the output as text gives back the unchanged document as
 * libxml2 prints it.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virt/virt.h"

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

static void
test_parse(void)
{
    struct vqm_domxml_disk *d = NULL;
    size_t n = 0;
    char *name = NULL, *uuid = NULL;
    struct vqm_error err = { 0 };

    CHECK(vqm_domxml_disks(domain_xml, &d, &n, &name, &uuid, &err) == 0);
    CHECK(n == 6);
    if (n != 6)
        return;
    CHECK(strcmp(name, "t1") == 0);
    CHECK(strcmp(uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f") == 0);
    CHECK(strcmp(d[0].type, "file") == 0 && strcmp(d[0].format, "qed") == 0);
    CHECK(strcmp(d[0].file, "/p/top.qed") == 0);
    CHECK(d[0].n_backing == 2);
    CHECK(strcmp(d[0].backing_paths[0], "/q/mid.qed") == 0);
    CHECK(strcmp(d[0].backing_formats[1], "raw") == 0);
    CHECK(strcmp(d[1].type, "volume") == 0);
    CHECK(strcmp(d[1].pool, "p1") == 0 && strcmp(d[1].volume, "vol.qed") == 0);
    CHECK(strcmp(d[2].file, "/dev/sdz") == 0);
    CHECK(d[3].format == NULL);
    CHECK(strcmp(d[4].device, "cdrom") == 0 && d[4].file == NULL);
    CHECK(strcmp(d[5].type, "network") == 0);
    vqm_domxml_disks_free(d, n);
    free(name);
    free(uuid);

    CHECK(vqm_domxml_disks("<domain><devices>", &d, &n, NULL, NULL,
                           &err) < 0);
    CHECK(strstr(err.msg, "cannot parse") != NULL);
    CHECK(vqm_domxml_disks("<pool/>", &d, &n, NULL, NULL, &err) < 0);
}

static void
test_rewrite(void)
{
    const char *old_paths[] = { "/q/mid.qed" };
    const char *new_paths[] = { "/q/mid.qcow2" };
    const char *new_formats[] = { "qcow2" };
    struct vqm_domxml_change ch[] = {
        { .target = "vda", .new_file = "/p/top.qcow2", .new_format = "qcow2",
          .old_paths = old_paths, .new_paths = new_paths,
          .new_formats = new_formats, .n_layers = 1 },
        { .target = "vdb", .new_volume = "vol.qcow2", .new_format = "qcow2" },
        { .target = "vdc", .new_format = "qcow2" },
        { .target = "vdd", .new_format = "qcow2" },
        { .target = "nonexistent", .new_format = "qcow2" },
    };
    struct vqm_error err = { 0 };
    char *out = NULL, *same = NULL;
    struct vqm_domxml_disk *d = NULL;
    size_t n = 0;

    CHECK(vqm_domxml_rewrite(domain_xml, ch, 5, &out, &err) == 0);
    CHECK(vqm_domxml_rewrite(domain_xml, NULL, 0, &same, &err) == 0);
    if (!out || !same)
        return;
    CHECK(strstr(out, "<?xml") == NULL);
    CHECK(strstr(out, "passwd=\"s3cret\"") != NULL);
    CHECK(strstr(out, "<!-- a comment stays -->") != NULL);

    /* The new values, read back. */
    CHECK(vqm_domxml_disks(out, &d, &n, NULL, NULL, &err) == 0);
    if (n == 6) {
        CHECK(strcmp(d[0].file, "/p/top.qcow2") == 0);
        CHECK(strcmp(d[0].format, "qcow2") == 0);
        CHECK(strcmp(d[0].backing_paths[0], "/q/mid.qcow2") == 0);
        CHECK(strcmp(d[0].backing_formats[0], "qcow2") == 0);
        CHECK(strcmp(d[0].backing_paths[1], "/q/base.raw") == 0);
        CHECK(strcmp(d[0].backing_formats[1], "raw") == 0);
        CHECK(strcmp(d[1].volume, "vol.qcow2") == 0);
        CHECK(strcmp(d[1].pool, "p1") == 0);
        CHECK(strcmp(d[1].type, "volume") == 0);
        CHECK(strcmp(d[2].file, "/dev/sdz") == 0);
        CHECK(strcmp(d[2].format, "qcow2") == 0);
        CHECK(d[3].format && strcmp(d[3].format, "qcow2") == 0);
        CHECK(strcmp(d[4].format, "raw") == 0);
        CHECK(strcmp(d[5].format, "raw") == 0);
    } else {
        CHECK(n == 6);
    }
    vqm_domxml_disks_free(d, n);

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
    if (strcmp(out, same) != 0) {
        fprintf(stderr, "unexpected changes:\n--- got\n%s\n--- want\n%s\n",
                out, same);
        failures++;
    }
    free(out);
    free(same);
}

/* Attributes in another namespace are not ours: they are neither read
 * nor duplicated by a rewrite; a disk without <target> has no target
 * (and so nothing can be rewritten in it by mistake).
 */
static void
test_foreign_attributes(void)
{
    static const char xml[] =
        "<domain xmlns:q='urn:x'><name>n</name><devices>"
        "<disk type='file' device='disk'><driver q:type='qed' type='qed'/>"
        "<source q:file='/evil' file='/a.qed'/><target dev='vda'/></disk>"
        "<disk type='file' dev='vdb'><driver type='qed'/>"
        "<source file='/b.qed'/></disk>"
        "</devices></domain>";
    struct vqm_domxml_change ch[] = {
        { .target = "vda", .new_file = "/a.qcow2", .new_format = "qcow2" },
    };
    struct vqm_error err = { 0 };
    struct vqm_domxml_disk *d = NULL;
    size_t n = 0;
    char *out = NULL;

    CHECK(vqm_domxml_disks(xml, &d, &n, NULL, NULL, &err) == 0);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(strcmp(d[0].file, "/a.qed") == 0);
        CHECK(d[1].target == NULL);
    }
    vqm_domxml_disks_free(d, n);
    CHECK(vqm_domxml_rewrite(xml, ch, 1, &out, &err) == 0);
    if (!out)
        return;
    CHECK(strstr(out, "q:file=\"/evil\" file=\"/a.qcow2\"") != NULL);
    CHECK(strstr(out, "q:type=\"qed\" type=\"qcow2\"") != NULL);
    CHECK(strstr(out, "/b.qed") != NULL);
    free(out);
}

int
main(void)
{
    test_parse();
    test_rewrite();
    test_foreign_attributes();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
