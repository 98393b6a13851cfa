/* Unit test: QED header validation, table-driven over in-memory headers
 * (written to a sparse memfd).  No external tools.  Cases override
 * fields of a default header (hence -Wno-override-init).  Each case patches a
 * valid header and says whether qed_open_fd must succeed, with how many
 * warnings, or fail with which error code and message fragment.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qed.h"
#include "vqm-endian.h"

struct hdr {
    uint32_t cs, ts, hs;
    uint64_t features, compat, autoclear, l1, size;
    uint32_t bf_off, bf_size;
    uint64_t file_len;
    const char *name;           /* backing name written at bf_off */
    size_t name_len;
};

struct tcase {
    const char *what;
    struct hdr h;
    int ok;                     /* 1: opens */
    size_t warnings;            /* when ok */
    enum vqm_error_code code;   /* when not ok */
    const char *msg;            /* fragment of the message */
};

#define CS 65536u
#define DEF .cs = CS, .ts = 4, .hs = 1, .l1 = CS, .size = 1u << 30, \
            .file_len = 5 * CS

static char long_name[5000];
static const char nul_name[] = "abc\0def";

static const struct tcase cases[] = {
    { "default", { DEF }, 1, 0, 0, NULL },
    { "cluster 4k table 2", { .cs = 4096, .ts = 2, .hs = 1, .l1 = 4096,
      .size = 4u << 20, .file_len = 3 * 4096 }, 1, 0, 0, NULL },
    { "capacity exactly", { .cs = 4096, .ts = 2, .hs = 1, .l1 = 4096,
      .size = 4ull << 30, .file_len = 3 * 4096 }, 1, 0, 0, NULL },
    { "capacity + 512", { .cs = 4096, .ts = 2, .hs = 1, .l1 = 4096,
      .size = (4ull << 30) + 512, .file_len = 3 * 4096 }, 0, 0,
      VQM_ERR_CORRUPT, "exceeds the table capacity" },
    { "table size 1 (QEMU refuses)", { .cs = CS, .ts = 1, .hs = 1, .l1 = CS,
      .size = 1u << 20, .file_len = 2 * CS }, 1, 1, 0, NULL },
    { "2M/16 wraps QEMU's 64-bit capacity", { .cs = 2u << 20, .ts = 16,
      .hs = 1, .l1 = 2u << 20, .size = 1u << 30,
      .file_len = 17ull * (2u << 20) }, 1, 1, 0, NULL },
    { "64M/16: 2^80 capacity, exact", { .cs = 64u << 20, .ts = 16, .hs = 1,
      .l1 = 64u << 20, .size = UINT64_MAX - 511,
      .file_len = 17ull * (64u << 20) }, 1, 1, 0, NULL },
    { "header area above 32 bits (QEMU refuses)", { .cs = CS, .ts = 4,
      .hs = 65536, .l1 = 65536ull * CS, .size = 1u << 30,
      .file_len = 65540ull * CS }, 1, 1, 0, NULL },
    { "unknown compat and autoclear bits", { DEF, .compat = 1,
      .autoclear = 2 }, 1, 2, 0, NULL },
    { "need check", { DEF, .features = QED_F_NEED_CHECK }, 1, 0, 0, NULL },
    { "backing name", { DEF, .features = 5, .bf_off = 64, .bf_size = 8,
      .name = "base.raw", .name_len = 8 }, 1, 0, 0, NULL },
    { "backing name of 5000 bytes (QEMU refuses)", { DEF, .features = 1,
      .bf_off = 64, .bf_size = 5000, .name = long_name, .name_len = 5000 },
      1, 1, 0, NULL },
    { "backing name with a NUL", { DEF, .features = 1, .bf_off = 100,
      .bf_size = 7, .name = nul_name, .name_len = 7 }, 1, 1, 0, NULL },
    { "no-probe bit alone", { DEF, .features = 4 }, 1, 1, 0, NULL },
    { "unknown feature", { DEF, .features = 8 }, 0, 0,
      VQM_ERR_UNSUPPORTED, "unknown QED incompatible features 0x8" },
    { "cluster size 0", { DEF, .cs = 0 }, 0, 0, VQM_ERR_CORRUPT,
      "invalid QED cluster size 0" },
    { "cluster size 128M", { DEF, .cs = 128u << 20 }, 0, 0, VQM_ERR_CORRUPT,
      "invalid QED cluster size" },
    { "cluster size not a power of 2", { DEF, .cs = 65537 }, 0, 0,
      VQM_ERR_CORRUPT, "invalid QED cluster size" },
    { "table size 0", { DEF, .ts = 0 }, 0, 0, VQM_ERR_CORRUPT,
      "invalid QED table size 0" },
    { "table size 6", { DEF, .ts = 6 }, 0, 0, VQM_ERR_CORRUPT,
      "invalid QED table size 6" },
    { "table size 32", { DEF, .ts = 32 }, 0, 0, VQM_ERR_CORRUPT,
      "invalid QED table size 32" },
    { "header size 0", { DEF, .hs = 0 }, 0, 0, VQM_ERR_CORRUPT,
      "invalid QED header size 0" },
    { "header area covers the file", { DEF, .hs = 5 }, 0, 0,
      VQM_ERR_CORRUPT, "covers the whole file" },
    { "size not a multiple of 512", { DEF, .size = 1000 }, 0, 0,
      VQM_ERR_CORRUPT, "not a multiple of 512" },
    { "L1 in the header area", { DEF, .l1 = 0 }, 0, 0, VQM_ERR_CORRUPT,
      "in the header area" },
    { "L1 unaligned", { DEF, .l1 = CS + 8 }, 0, 0, VQM_ERR_CORRUPT,
      "not cluster aligned" },
    { "L1 past EOF", { DEF, .l1 = 1ull << 62 }, 0, 0, VQM_ERR_CORRUPT,
      "past the end of the file" },
    { "L1 at 2^64 - cs", { DEF, .l1 = 0ull - CS }, 0, 0, VQM_ERR_CORRUPT,
      "past the end of the file" },
    { "L1 table past EOF", { DEF, .l1 = 2 * CS }, 0, 0, VQM_ERR_CORRUPT,
      "table extends past the end of the file" },
    { "L1 in a partial last cluster", { DEF, .l1 = 5 * CS,
      .file_len = 5 * CS + 100 }, 0, 0, VQM_ERR_CORRUPT,
      "partial last cluster" },
    { "backing name outside the header", { DEF, .features = 1,
      .bf_off = CS - 4, .bf_size = 8 }, 0, 0, VQM_ERR_CORRUPT,
      "outside the header area" },
    { "backing name offset + size wraps 32 bits", { DEF, .features = 1,
      .bf_off = 0xfffffff0u, .bf_size = 0x20 }, 0, 0, VQM_ERR_CORRUPT,
      "outside the header area" },
    { "backing name over the header struct", { DEF, .features = 1,
      .bf_off = 8, .bf_size = 8 }, 0, 0, VQM_ERR_CORRUPT,
      "overlaps the header" },
    { "backing name empty", { DEF, .features = 1, .bf_off = 64 }, 0, 0,
      VQM_ERR_CORRUPT, "backing file name is empty" },
    { "file too short", { DEF, .file_len = 40 }, 0, 0, VQM_ERR_CORRUPT,
      "too short" },
};

static int
make(const struct hdr *h)
{
    uint8_t b[64] = { 0 };
    int fd = memfd_create("hdr", MFD_CLOEXEC);

    if (fd < 0 || ftruncate(fd, (off_t) h->file_len) < 0) {
        perror("memfd");
        exit(1);
    }
    vqm_st_le32(b, QED_MAGIC);
    vqm_st_le32(b + 4, h->cs);
    vqm_st_le32(b + 8, h->ts);
    vqm_st_le32(b + 12, h->hs);
    vqm_st_le64(b + 16, h->features);
    vqm_st_le64(b + 24, h->compat);
    vqm_st_le64(b + 32, h->autoclear);
    vqm_st_le64(b + 40, h->l1);
    vqm_st_le64(b + 48, h->size);
    vqm_st_le32(b + 56, h->bf_off);
    vqm_st_le32(b + 60, h->bf_size);
    if (pwrite(fd, b, h->file_len < 64 ? h->file_len : 64, 0) < 0 ||
        (h->name && pwrite(fd, h->name, h->name_len, h->bf_off) < 0)) {
        perror("pwrite");
        exit(1);
    }
    return fd;
}

int
main(void)
{
    size_t i, failures = 0;

    memset(long_name, 'x', sizeof long_name);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tcase *c = &cases[i];
        struct qed_image *img = NULL;
        struct vqm_error err = { 0 };
        int fd = make(&c->h), r;
        const char *const *w;
        size_t nw = 0;

        r = qed_open_fd(fd, "t.qed", &img, &err);
        if (r == 0)
            nw = qed_warnings(img, &w);
        if (c->ok && r < 0) {
            printf("FAIL %s: %s\n", c->what, err.msg);
            failures++;
        }
        else if (c->ok && nw != c->warnings) {
            printf("FAIL %s: %zu warnings, expected %zu\n", c->what, nw,
                   c->warnings);
            failures++;
        }
        else if (!c->ok && r == 0) {
            printf("FAIL %s: opened\n", c->what);
            failures++;
        }
        else if (!c->ok && (err.code != c->code ||
                            !strstr(err.msg, c->msg))) {
            printf("FAIL %s: code %d '%s'\n", c->what, (int) err.code,
                   err.msg);
            failures++;
        }
        else
            printf("ok   %s%s%s\n", c->what, r < 0 ? ": " : "",
                   r < 0 ? err.msg : "");
        if (img && c->h.name == nul_name &&
            strcmp(qed_get_info(img)->backing_name, "abc") != 0) {
            printf("FAIL %s: name '%s'\n", c->what,
                   qed_get_info(img)->backing_name);
            failures++;
        }
        qed_close(img);
        close(fd);
    }
    printf("%zu failures\n", failures);
    return failures ? 1 : 0;
}
