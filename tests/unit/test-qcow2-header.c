/* Unit test: the qcow2 header parser (src/qcow2/qcow2-reader.c),
 * table-driven over in-memory first clusters.  No external tools.  Each
 * case patches a valid version 3 header (64 KiB clusters) and says
 * whether qcow2_header_parse must accept it, with which backing name
 * and format, or fail with which error code and message fragment.  The
 * backing offsets near 2^64 are the ones whose sum with the name's size
 * wraps: the parser must refuse them without reading anything.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2-reader.h"
#include "vqm-endian.h"

#define CS 65536u

struct tcase {
    const char *what;
    uint32_t version;               /* 0: 3 */
    uint64_t boff;
    uint32_t bsize;
    const char *name;               /* written at boff (if < CS) */
    uint32_t cluster_bits;          /* 0: 16 */
    uint32_t hlen;                  /* 0: 104 (v3) */
    uint8_t ctype;
    uint64_t incompat;
    uint32_t rorder;                /* 0: 4 */
    uint32_t ext_type, ext_len;     /* one extension at hlen (type 0: none) */
    const char *ext_data;
    size_t buf_len;                 /* 0: CS */
    int ok;
    enum vqm_error_code code;       /* when not ok */
    const char *msg;                /* when not ok: fragment; else name */
    const char *fmt;                /* when ok: backing format ("" none) */
};

#define BF 0xE2792ACAu

static const struct tcase cases[] = {
    { "default", .ok = 1, .msg = "", .fmt = "" },
    { "version 2", .version = 2, .ok = 1, .msg = "", .fmt = "" },
    { "backing name and format", .boff = 512, .bsize = 8, .name = "base.img",
      .ext_type = BF, .ext_len = 3, .ext_data = "raw", .ok = 1,
      .msg = "base.img", .fmt = "raw" },
    { "name at the end of the cluster", .boff = CS - 8, .bsize = 8,
      .name = "base.img", .ok = 1, .msg = "base.img", .fmt = "" },
    { "name past the end of a short file reads as zeros", .boff = 4000,
      .bsize = 8, .buf_len = 200, .ok = 1, .msg = "", .fmt = "" },
    { "name with a NUL stops there", .boff = 512, .bsize = 8,
      .name = "ab\0cdefg", .ok = 1, .msg = "ab", .fmt = "" },
    { "size without an offset is ignored", .bsize = 5000, .ok = 1,
      .msg = "", .fmt = "" },
    { "offset 2^64-256, size 1024 (wraps to 768)",
      .boff = UINT64_MAX - 255, .bsize = 1024, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 backing file offset" },
    { "offset 2^64-256, size 1023 (wraps to 767)",
      .boff = UINT64_MAX - 255, .bsize = 1023, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 backing file offset" },
    { "offset 2^64-256 in a short file", .boff = UINT64_MAX - 255,
      .bsize = 1023, .buf_len = 120, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 backing file offset" },
    { "offset past the cluster", .boff = CS + 8, .bsize = 8,
      .code = VQM_ERR_CORRUPT, .msg = "invalid qcow2 backing file offset" },
    { "name one byte past the cluster", .boff = CS - 7, .bsize = 8,
      .code = VQM_ERR_CORRUPT, .msg = "backing file name too long" },
    { "name of 1024 bytes", .boff = 512, .bsize = 1024,
      .code = VQM_ERR_CORRUPT, .msg = "backing file name too long" },
    { "name of 1023 bytes", .boff = 512, .bsize = 1023, .ok = 1,
      .msg = "", .fmt = "" },
    { "bad magic", .code = VQM_ERR_CORRUPT,
      .msg = "not a qcow2 image" },
    { "version 1", .version = 1, .code = VQM_ERR_UNSUPPORTED,
      .msg = "unsupported qcow2 version 1" },
    { "version 4", .version = 4, .code = VQM_ERR_UNSUPPORTED,
      .msg = "unsupported qcow2 version 4" },
    { "cluster bits 8", .cluster_bits = 8, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 cluster bits 8" },
    { "cluster bits 22", .cluster_bits = 22, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 cluster bits 22" },
    { "header length 100", .hlen = 100, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 header length 100" },
    { "header length 108", .hlen = 108, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 header length 108" },
    { "header length past the cluster", .hlen = CS + 8,
      .code = VQM_ERR_CORRUPT, .msg = "invalid qcow2 header length" },
    { "zstd with the bit", .hlen = 112, .ctype = 1, .incompat = 8, .ok = 1,
      .msg = "", .fmt = "" },
    { "zstd without the bit", .hlen = 112, .ctype = 1,
      .code = VQM_ERR_CORRUPT, .msg = "invalid qcow2 compression type 1" },
    { "the bit without zstd", .hlen = 112, .incompat = 8,
      .code = VQM_ERR_CORRUPT, .msg = "invalid qcow2 compression type 0" },
    { "compression type 2", .hlen = 112, .ctype = 2, .incompat = 8,
      .code = VQM_ERR_CORRUPT, .msg = "invalid qcow2 compression type 2" },
    { "refcount order 7", .rorder = 7, .code = VQM_ERR_CORRUPT,
      .msg = "invalid qcow2 refcount order 7" },
    { "extension of 2^32-1 bytes", .ext_type = 0x12345678,
      .ext_len = UINT32_MAX, .code = VQM_ERR_CORRUPT,
      .msg = "extension 0x12345678 too large" },
    { "extension cut by the backing name", .boff = 116, .bsize = 4,
      .name = "base", .ext_type = BF, .ext_len = 5, .ext_data = "qcow2",
      .code = VQM_ERR_CORRUPT, .msg = "extension 0xe2792aca too large" },
    { "backing format of 16 bytes", .ext_type = BF, .ext_len = 16,
      .ext_data = "qqqqqqqqqqqqqqqq", .code = VQM_ERR_CORRUPT,
      .msg = "backing format name too long" },
    { "backing format of 15 bytes", .ext_type = BF, .ext_len = 15,
      .ext_data = "qqqqqqqqqqqqqqq", .ok = 1, .msg = "",
      .fmt = "qqqqqqqqqqqqqqq" },
};

static uint8_t buf[CS];

static void
build(const struct tcase *c)
{
    uint32_t v = c->version ? c->version : 3;
    uint32_t hlen = c->hlen ? c->hlen : 104;

    memset(buf, 0, sizeof buf);
    if (strcmp(c->what, "bad magic") != 0)
        memcpy(buf, "QFI\xfb", 4);
    vqm_st_be32(buf + 4, v);
    vqm_st_be64(buf + 8, c->boff);
    vqm_st_be32(buf + 16, c->bsize);
    vqm_st_be32(buf + 20, c->cluster_bits ? c->cluster_bits : 16);
    vqm_st_be64(buf + 24, 1u << 20);
    vqm_st_be32(buf + 36, 1);
    vqm_st_be64(buf + 40, 3 * CS);
    vqm_st_be64(buf + 48, CS);
    vqm_st_be32(buf + 56, 1);
    if (v == 3) {
        vqm_st_be64(buf + 72, c->incompat);
        vqm_st_be32(buf + 96, c->rorder ? c->rorder : 4);
        vqm_st_be32(buf + 100, hlen);
        buf[104] = c->ctype;
    }
    else
        hlen = 72;
    if (c->ext_type && hlen + 8 <= CS) {
        vqm_st_be32(buf + hlen, c->ext_type);
        vqm_st_be32(buf + hlen + 4, c->ext_len);
        if (c->ext_data)
            memcpy(buf + hlen + 8, c->ext_data, strlen(c->ext_data));
    }
    if (c->name && c->boff < CS)
        memcpy(buf + c->boff, c->name, c->bsize);
}

/* Every extension the walker returns lies inside the area. */
static int
walk_ok(const struct qcow2_header *h, size_t len)
{
    uint64_t pos = h->header_length, off;
    uint32_t type, elen;
    struct vqm_error err = { 0 };
    int r, n = 0;

    while ((r = qcow2_header_next_ext(h, buf, len, &pos, &type, &off, &elen,
                                      "walk", &err)) > 0) {
        if (off + elen > h->ext_end || pos > h->ext_end || ++n > 8192)
            return 0;
    }
    return r == 0;
}

int
main(void)
{
    size_t i, failed = 0;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tcase *c = &cases[i];
        struct qcow2_header h;
        struct vqm_error err = { 0 };
        size_t len = c->buf_len ? c->buf_len : CS;
        int r, good;

        build(c);
        r = qcow2_header_parse(buf, len, "t.qcow2", &h, &err);
        if (c->ok)
            good = r == 0 && strcmp(h.backing_name, c->msg) == 0 &&
                strcmp(h.backing_format, c->fmt) == 0 && walk_ok(&h, len);
        else
            good = r < 0 && err.code == c->code && strstr(err.msg, c->msg);
        printf("%s %zu - %s", good ? "ok" : "not ok", i + 1, c->what);
        if (!good)
            printf(" (got %d, code %d, '%s', name '%s')", r, (int) err.code,
                   err.msg, r == 0 ? h.backing_name : "");
        printf("\n");
        failed += !good;
    }
    printf("1..%zu\n", sizeof cases / sizeof cases[0]);
    return failed ? 1 : 0;
}
