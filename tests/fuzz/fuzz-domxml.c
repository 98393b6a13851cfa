/* fuzz-sources: src/domxml/*.c src/common/*.c */
/* fuzz-pkgs: libxml-2.0 */
/* fuzz-seeds: domxml */
/* fuzz-dict: tests/fuzz/xml.dict */
/* fuzz-args: -max_len=65536 */
/* virt-qed-migrate: libFuzzer target for the domain XML module
 * (src/domxml/domxml.c).
 *
 * The input is a domain definition (or a snapshot).  vqm_domxml_disks
 * lists its disks; every layer the lookup is asked about is then moved
 * the way a migration does (source renamed to .qcow2, format qcow2;
 * varied per layer) by vqm_domxml_rewrite, and the result must parse
 * again with the same name, UUID and disks, and a second rewrite must
 * change nothing.  Only layers of disks that can hold QED may be asked
 * about.  libxml2 must never try to load a file or URL (an external
 * entity or DTD), and no string returned may hold the content of a file
 * the input names.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domxml.h"
#define FUZZ_WITH_LIBXML 1
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void
check_layer(const char *in, size_t len, const struct vqm_domxml_layer *l)
{
    fuzz_check_secret(in, len, l->type);
    fuzz_check_secret(in, len, l->path);
    fuzz_check_secret(in, len, l->pool);
    fuzz_check_secret(in, len, l->volume);
    fuzz_check_secret(in, len, l->format);
}

static void
check_disks(const char *in, size_t len, const struct vqm_domxml_disk *v,
            size_t n, const char *name, const char *uuid)
{
    size_t i, k;

    fuzz_check_secret(in, len, name);
    fuzz_check_secret(in, len, uuid);
    for (i = 0; i < n; i++) {
        fuzz_check_secret(in, len, v[i].target);
        fuzz_check_secret(in, len, v[i].device);
        check_layer(in, len, &v[i].top);
        if (!v[i].device || v[i].index != i) {
            fprintf(stderr, "fuzz: disk %zu has no device or index %u\n", i,
                    v[i].index);
            abort();
        }
        for (k = 0; k < v[i].n_backing; k++)
            check_layer(in, len, &v[i].backing[k]);
    }
}

/* The migration's lookup: every other layer moves, to a name kept alive
 * in the run's buffers. */
struct run {
    char names[64][64];
    size_t n, asked;
};

static bool
lookup(void *opaque, const struct vqm_domxml_disk *d, unsigned depth,
       const struct vqm_domxml_layer *l, struct vqm_domxml_move *mv)
{
    struct run *r = opaque;
    char *name;

    if (!vqm_domxml_can_hold_qed(d)
        || (l->form != VQM_SOURCE_FILE && l->form != VQM_SOURCE_BLOCK
            && l->form != VQM_SOURCE_VOLUME)) {
        fprintf(stderr, "fuzz: asked about a layer that cannot move\n");
        abort();
    }
    if (r->asked++ % 2 || r->n >= 64)
        return false;
    name = r->names[r->n++];
    snprintf(name, 64, "/vqmfuzz/%u-%u.qcow2", d->index, depth);
    if (l->form == VQM_SOURCE_VOLUME)
        mv->new_volume = name + strlen("/vqmfuzz/");
    else
        mv->new_path = name;
    mv->new_format = depth % 3 ? NULL : "qcow2";
    return true;
}

static void
rewrite(const char *xml, size_t len, const struct vqm_domxml_disk *v,
        size_t n, const char *name, const char *uuid)
{
    struct vqm_domxml *x = NULL, *y = NULL;
    struct vqm_domxml_disk *v2 = NULL;
    struct vqm_error err = { 0 };
    struct run r;
    char *out = NULL;
    size_t n2 = 0, i, changed = 0;

    memset(&r, 0, sizeof r);
    if (vqm_domxml_parse(xml, len, NULL, &x, &err) < 0
        || vqm_domxml_rewrite(x, lookup, &r, &changed, &err) < 0
        || vqm_domxml_format(x, &out, &err) < 0) {
        fprintf(stderr, "fuzz: rewrite failed after the read worked: %s\n",
                err.msg);
        abort();
    }
    fuzz_check_secret(xml, len, out);
    /* The result is a definition again, with the same disks. */
    if (vqm_domxml_parse(out, strlen(out), NULL, &y, &err) < 0
        || vqm_domxml_disks(y, &v2, &n2, &err) < 0) {
        fprintf(stderr, "fuzz: the rewritten XML does not parse: %s\n%s\n",
                err.msg, out);
        abort();
    }
    if (n2 != n || !same(name, vqm_domxml_name(y))
        || !same(uuid, vqm_domxml_uuid(y))) {
        fprintf(stderr, "fuzz: the rewritten XML has other disks (%zu, "
                "was %zu) or another name or uuid\n%s\n", n2, n, out);
        abort();
    }
    for (i = 0; i < n; i++) {
        if (!same(v[i].target, v2[i].target)
            || !same(v[i].device, v2[i].device)
            || !same(v[i].top.type, v2[i].top.type)
            || v[i].n_backing != v2[i].n_backing) {
            fprintf(stderr, "fuzz: disk %zu changed its target, device, "
                    "type or chain length\n%s\n", i, out);
            abort();
        }
    }
    /* The same moves again: nothing left to change. */
    memset(&r, 0, sizeof r);
    if (vqm_domxml_rewrite(y, lookup, &r, &changed, &err) < 0
        || changed != 0) {
        fprintf(stderr, "fuzz: a second rewrite changed %zu layer(s)\n%s\n",
                changed, out);
        abort();
    }
    vqm_domxml_disks_free(v2, n2);
    vqm_domxml_free(x);
    vqm_domxml_free(y);
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vqm_domxml *x = NULL;
    struct vqm_domxml_disk *v = NULL;
    struct vqm_error err = { 0 };
    size_t len, n = 0;
    char *xml;
    static bool ready;

    if (!ready) {
        fuzz_forbid_loads();
        ready = true;
    }
    xml = fuzz_expand(data, size, &len);
    if (vqm_domxml_parse(xml, len, NULL, &x, &err) == 0) {
        if (vqm_domxml_disks(x, &v, &n, &err) < 0)
            abort();
        check_disks(xml, len, v, n, vqm_domxml_name(x), vqm_domxml_uuid(x));
        rewrite(xml, len, v, n, vqm_domxml_name(x), vqm_domxml_uuid(x));
        vqm_domxml_disks_free(v, n);
        vqm_domxml_free(x);
    } else if (x || !err.msg[0]) {
        fprintf(stderr, "fuzz: failed read left results or no message\n");
        abort();
    }
    free(xml);
    return 0;
}
