/* fuzz-sources: src/virt/virt-domxml.c src/common/*.c */
/* fuzz-pkgs: libxml-2.0 */
/* fuzz-seeds: domxml */
/* fuzz-dict: tests/fuzz/xml.dict */
/* fuzz-args: -max_len=65536 */
/* virt-qed-migrate: libFuzzer target for the domain XML reader and
 * rewriter (src/virt/virt-domxml.c).
 *
 * The input is a domain definition.  vqm_domxml_disks lists its disks;
 * every disk with a target is then rewritten the way a migration does
 * (source and backing layers renamed to .qcow2, format qcow2) by
 * vqm_domxml_rewrite, and the result must parse again with the same
 * name, UUID and disks.  libxml2 must never try to load a file or URL
 * (an external entity or DTD), and no string returned may hold the
 * content of a file the input names.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virt.h"
#define FUZZ_WITH_LIBXML 1
#include "fuzz-common.h"

#define MAX_CHANGES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *
renamed(const char *s)
{
    char *r;

    if (!s || asprintf(&r, "%s.qcow2", s) < 0)
        return NULL;
    return r;
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
        fuzz_check_secret(in, len, v[i].type);
        fuzz_check_secret(in, len, v[i].file);
        fuzz_check_secret(in, len, v[i].pool);
        fuzz_check_secret(in, len, v[i].volume);
        fuzz_check_secret(in, len, v[i].format);
        if (!v[i].device) {
            fprintf(stderr, "fuzz: disk %zu has no device\n", i);
            abort();
        }
        for (k = 0; k < v[i].n_backing; k++) {
            fuzz_check_secret(in, len, v[i].backing_paths[k]);
            fuzz_check_secret(in, len, v[i].backing_formats[k]);
        }
    }
}

static void
rewrite(const char *xml, size_t len, const struct vqm_domxml_disk *v,
        size_t n, const char *name, const char *uuid)
{
    struct vqm_domxml_change ch[MAX_CHANGES];
    /* Per change: the layers' old and new paths and formats. */
    const char **old[MAX_CHANGES] = { 0 }, **newp[MAX_CHANGES] = { 0 };
    const char **fmts[MAX_CHANGES] = { 0 };
    char *owned[MAX_CHANGES * 2] = { 0 };
    struct vqm_domxml_disk *v2 = NULL;
    struct vqm_error err = { 0 };
    char *out = NULL, *name2 = NULL, *uuid2 = NULL;
    size_t nch = 0, n2 = 0, i, k;

    memset(ch, 0, sizeof ch);
    for (i = 0; i < n && nch < MAX_CHANGES; i++) {
        struct vqm_domxml_change *c = &ch[nch];
        size_t nl = 0;

        if (!v[i].target)
            continue;
        c->target = v[i].target;
        owned[2 * nch] = renamed(v[i].file);
        owned[2 * nch + 1] = renamed(v[i].volume);
        c->new_file = owned[2 * nch];
        c->new_volume = owned[2 * nch + 1];
        /* Vary: every other change leaves the format alone. */
        c->new_format = nch % 2 ? NULL : "qcow2";
        old[nch] = calloc(v[i].n_backing + 1, sizeof (char *));
        newp[nch] = calloc(v[i].n_backing + 1, sizeof (char *));
        fmts[nch] = calloc(v[i].n_backing + 1, sizeof (char *));
        if (!old[nch] || !newp[nch] || !fmts[nch])
            abort();
        for (k = 0; k < v[i].n_backing; k++) {
            if (!v[i].backing_paths[k])
                continue;
            old[nch][nl] = v[i].backing_paths[k];
            /* The new name of a layer: its own path plus ".qcow2" is
             * not kept alive here, so use a fixed one. */
            newp[nch][nl] = k % 2 ? NULL : "/vqmfuzz/layer.qcow2";
            fmts[nch][nl] = k % 3 ? "qcow2" : NULL;
            nl++;
        }
        c->old_paths = old[nch];
        c->new_paths = newp[nch];
        c->new_formats = fmts[nch];
        c->n_layers = nl;
        nch++;
    }

    if (vqm_domxml_rewrite(xml, ch, nch, &out, &err) < 0) {
        fprintf(stderr, "fuzz: rewrite failed after the read worked: %s\n",
                err.msg);
        abort();
    }
    fuzz_check_secret(xml, len, out);
    /* The result is a definition again, with the same disks. */
    if (vqm_domxml_disks(out, &v2, &n2, &name2, &uuid2, &err) < 0) {
        fprintf(stderr, "fuzz: the rewritten XML does not parse: %s\n%s\n",
                err.msg, out);
        abort();
    }
    if (n2 != n || !same(name, name2) || !same(uuid, uuid2)) {
        fprintf(stderr, "fuzz: the rewritten XML has other disks (%zu, "
                "was %zu) or another name or uuid\n%s\n", n2, n, out);
        abort();
    }
    for (i = 0; i < n; i++) {
        if (!same(v[i].target, v2[i].target)
            || !same(v[i].device, v2[i].device)
            || !same(v[i].type, v2[i].type)
            || v[i].n_backing != v2[i].n_backing) {
            fprintf(stderr, "fuzz: disk %zu changed its target, device, "
                    "type or chain length\n%s\n", i, out);
            abort();
        }
    }

    vqm_domxml_disks_free(v2, n2);
    free(name2);
    free(uuid2);
    free(out);
    for (i = 0; i < nch; i++) {
        free(old[i]);
        free(newp[i]);
        free(fmts[i]);
        free(owned[2 * i]);
        free(owned[2 * i + 1]);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vqm_domxml_disk *v = NULL;
    struct vqm_error err = { 0 };
    char *name = NULL, *uuid = NULL;
    size_t len, n = 0;
    char *xml;
    static bool ready;

    if (!ready) {
        fuzz_forbid_loads();
        ready = true;
    }
    xml = fuzz_expand(data, size, &len);
    if (vqm_domxml_disks(xml, &v, &n, &name, &uuid, &err) == 0) {
        check_disks(xml, len, v, n, name, uuid);
        rewrite(xml, len, v, n, name, uuid);
        vqm_domxml_disks_free(v, n);
        free(name);
        free(uuid);
    } else if (v || n || !err.msg[0]) {
        fprintf(stderr, "fuzz: failed read left results or no message\n");
        abort();
    }
    free(xml);
    return 0;
}
