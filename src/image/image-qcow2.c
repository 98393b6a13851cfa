/* virt-qed-migrate: a minimal read-only qcow2 reader.
 *
 * Enough of qcow2 (docs/interop/qcow2.txt in QEMU) to read a backing
 * file or verify a converted image: the header with QEMU's open-time
 * checks, header extensions (backing format), L1/L2 lookup through a
 * small chunk cache, zero clusters and zlib/zstd compressed clusters.
 * Encryption, external data files and extended L2 entries are refused.
 * Invariant: memory is bounded (cache slots and one cluster buffer),
 * and every offset read from the file is masked and checked for
 * alignment before use.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "image-internal.h"
#include "overflow.h"
#include "vqm-endian.h"
#include "vqm-io.h"

#define Q2_MAGIC 0x514649fbu
#define Q2_OFFSET_MASK 0x00fffffffffffe00ULL
#define Q2_F_COMPRESSED (1ULL << 62)
#define Q2_F_ZERO 1ULL
#define Q2_INCOMPAT_DIRTY 1u
#define Q2_INCOMPAT_CORRUPT 2u
#define Q2_INCOMPAT_DATA_FILE 4u
#define Q2_INCOMPAT_COMPRESSION 8u
#define Q2_INCOMPAT_EXTL2 16u
#define Q2_EXT_BACKING_FORMAT 0xE2792ACAu
#define Q2_CHUNK_MAX (64u * 1024)
#define Q2_SLOTS 16

struct q2_slot {
    uint64_t host_off, stamp;
    bool valid;
    uint8_t *buf;
};

struct qcow2r {
    int fd;
    char *name;
    uint32_t version;
    unsigned cluster_bits;
    uint64_t cs;
    uint64_t size;
    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t l2_entries;
    uint64_t file_length;
    uint32_t compression_type;
    char *backing_name;
    char *backing_format;

    uint32_t chunk_size;
    uint64_t clock;
    struct q2_slot cache[Q2_SLOTS];

    uint8_t *cbuf;                /* one decompressed cluster */
    uint64_t cbuf_entry;          /* L2 entry it came from, 0 if none */
};

static int
read_entry(struct qcow2r *q, uint64_t table, uint64_t index, uint64_t *out,
           struct vqm_error *err)
{
    uint64_t pos = table + index * 8;
    uint64_t chunk = pos & ~(uint64_t) (q->chunk_size - 1);
    struct q2_slot *s, *victim = NULL;
    size_t i;

    q->clock++;
    for (i = 0; i < Q2_SLOTS; i++) {
        s = &q->cache[i];
        if (s->valid && s->host_off == chunk) {
            s->stamp = q->clock;
            *out = vqm_ld_be64(s->buf + (pos - chunk));
            return 0;
        }
        if (!victim || (victim->valid &&
                        (!s->valid || s->stamp < victim->stamp)))
            victim = s;
    }
    if (!victim->buf && !(victim->buf = malloc(q->chunk_size)))
        return vqm_error_set_errno(err, errno, "out of memory");
    victim->valid = false;
    /* Tables may end inside the last cluster of the file: zero-fill. */
    if (vqm_pread_full(q->fd, victim->buf, q->chunk_size, chunk, 1, q->name,
                       err) < 0)
        return -1;
    victim->valid = true;
    victim->host_off = chunk;
    victim->stamp = q->clock;
    *out = vqm_ld_be64(victim->buf + (pos - chunk));
    return 0;
}

static int
parse_extensions(struct qcow2r *q, const uint8_t *hdr, uint64_t start,
                 uint64_t end, struct vqm_error *err)
{
    uint64_t off = start;

    while (off + 8 <= end) {
        uint32_t type = vqm_ld_be32(hdr + off);
        uint32_t len = vqm_ld_be32(hdr + off + 4);

        if (type == 0)
            return 0;
        off += 8;
        if (len > end - off)
            return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 header "
                                 "extension 0x%08" PRIx32 " too large",
                                 q->name, type);
        if (type == Q2_EXT_BACKING_FORMAT) {
            if (len >= 16)
                return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 "
                                     "backing format name too long",
                                     q->name);
            free(q->backing_format);
            q->backing_format = strndup((const char *) hdr + off, len);
            if (!q->backing_format)
                return vqm_error_set_errno(err, errno, "out of memory");
        }
        off += vqm_align_up(len, 8);
    }
    return 0;
}

int
q2_open(int fd, const char *name, struct qcow2r **out, struct vqm_error *err)
{
    struct qcow2r *q;
    uint8_t *hdr = NULL;
    uint64_t incompat = 0, bf_off, l1_needed, ext_end, hlen, rt_off;
    uint32_t bf_size, rt_clusters, refcount_order = 4;
    struct stat st;
    size_t hdr_len;
    int ret = -1;

    *out = NULL;
    q = calloc(1, sizeof *q);
    if (!q || !(q->name = strdup(name))) {
        free(q);
        return vqm_error_set_errno(err, errno, "out of memory");
    }
    q->fd = fd;
    if (fstat(fd, &st) < 0) {
        vqm_error_set_errno(err, errno, "cannot stat '%s'", name);
        goto out;
    }
    if (S_ISBLK(st.st_mode)) {
        off_t e = lseek(fd, 0, SEEK_END);
        if (e < 0) {
            vqm_error_set_errno(err, errno, "cannot get the size of '%s'",
                                name);
            goto out;
        }
        q->file_length = (uint64_t) e;
    }
    else
        q->file_length = (uint64_t) st.st_size;
    if (q->file_length < 72) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s' is too short to be a qcow2 "
                      "image", name);
        goto out;
    }
    /* Read the first cluster lazily: first the fixed header. */
    hdr = calloc(1, 112);
    if (!hdr) {
        vqm_error_set_errno(err, errno, "out of memory");
        goto out;
    }
    if (vqm_pread_full(fd, hdr, 112, 0, 1, name, err) < 0)
        goto out;
    if (vqm_ld_be32(hdr) != Q2_MAGIC) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s' is not a qcow2 image (bad "
                      "magic)", name);
        goto out;
    }
    q->version = vqm_ld_be32(hdr + 4);
    if (q->version != 2 && q->version != 3) {
        vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': unsupported qcow2 "
                      "version %" PRIu32, name, q->version);
        goto out;
    }
    bf_off = vqm_ld_be64(hdr + 8);
    bf_size = vqm_ld_be32(hdr + 16);
    q->cluster_bits = vqm_ld_be32(hdr + 20);
    q->size = vqm_ld_be64(hdr + 24);
    if (q->cluster_bits < 9 || q->cluster_bits > 21) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 cluster "
                      "bits %u", name, q->cluster_bits);
        goto out;
    }
    q->cs = (uint64_t) 1 << q->cluster_bits;
    q->l2_entries = q->cs / 8;
    if (vqm_ld_be32(hdr + 32) != 0) {
        vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': encrypted qcow2 "
                      "images are not supported", name);
        goto out;
    }
    q->l1_size = vqm_ld_be32(hdr + 36);
    q->l1_offset = vqm_ld_be64(hdr + 40);
    rt_off = vqm_ld_be64(hdr + 48);
    rt_clusters = vqm_ld_be32(hdr + 56);
    if (q->version == 3) {
        incompat = vqm_ld_be64(hdr + 72);
        refcount_order = vqm_ld_be32(hdr + 96);
        hlen = vqm_ld_be32(hdr + 100);
        if (hlen < 104 || hlen % 8 || hlen > q->cs) {
            vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 header "
                          "length %" PRIu64, name, hlen);
            goto out;
        }
        if (hlen > 104)
            q->compression_type = hdr[104];
    }
    else
        hlen = 72;
    if (bf_off > q->cs) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 backing "
                      "file offset", name);
        goto out;
    }
    if ((q->compression_type != 0) !=
        ((incompat & Q2_INCOMPAT_COMPRESSION) != 0) ||
        q->compression_type > 1) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 compression "
                      "type %" PRIu32, name, q->compression_type);
        goto out;
    }
    if (incompat & ~(uint64_t) (Q2_INCOMPAT_DIRTY | Q2_INCOMPAT_CORRUPT |
                                Q2_INCOMPAT_COMPRESSION)) {
        vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': unsupported qcow2 "
                      "incompatible features 0x%" PRIx64, name, incompat);
        goto out;
    }
    if (refcount_order > 6) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 refcount "
                      "order", name);
        goto out;
    }
    if (rt_clusters == 0 || (rt_off & (q->cs - 1))) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 refcount "
                      "table", name);
        goto out;
    }
    if ((q->l1_offset & (q->cs - 1)) || q->l1_offset == 0 ||
        (uint64_t) q->l1_size * 8 > 32 * 1024 * 1024) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 L1 table "
                      "(offset 0x%" PRIx64 ", %" PRIu32 " entries)", name,
                      q->l1_offset, q->l1_size);
        goto out;
    }
    {
        /* Bytes covered by one L1 entry: cs * cs / 8 (<= 2^39). */
        uint64_t span = q->cs * q->l2_entries;
        l1_needed = vqm_div_round_up(q->size, span);
        if (l1_needed > q->l1_size) {
            vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 L1 table is too "
                          "small for the image size", name);
            goto out;
        }
        if (q->size > (uint64_t) INT64_MAX) {
            vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 image size too "
                          "large", name);
            goto out;
        }
    }

    /* Extensions and the backing name live in the first cluster. */
    ext_end = bf_off ? bf_off : q->cs;
    hdr_len = (size_t) q->cs;
    free(hdr);
    hdr = malloc(hdr_len);
    if (!hdr) {
        vqm_error_set_errno(err, errno, "out of memory");
        goto out;
    }
    if (vqm_pread_full(fd, hdr, hdr_len, 0, 1, name, err) < 0)
        goto out;
    if (hlen < ext_end && parse_extensions(q, hdr, hlen, ext_end, err) < 0)
        goto out;
    if (bf_off) {
        if (bf_size > 1023 || bf_size > q->cs - bf_off) {
            vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 backing file "
                          "name too long", name);
            goto out;
        }
        q->backing_name = strndup((const char *) hdr + bf_off, bf_size);
        if (!q->backing_name) {
            vqm_error_set_errno(err, errno, "out of memory");
            goto out;
        }
        if (!*q->backing_name) {
            free(q->backing_name);
            q->backing_name = NULL;
        }
    }
    q->chunk_size = q->cs < Q2_CHUNK_MAX ? (uint32_t) q->cs : Q2_CHUNK_MAX;
    *out = q;
    q = NULL;
    ret = 0;
out:
    free(hdr);
    q2_close(q);
    return ret;
}

void
q2_close(struct qcow2r *q)
{
    size_t i;

    if (!q)
        return;
    for (i = 0; i < Q2_SLOTS; i++)
        free(q->cache[i].buf);
    free(q->cbuf);
    free(q->backing_name);
    free(q->backing_format);
    free(q->name);
    free(q);
}

uint64_t
q2_size(const struct qcow2r *q)
{
    return q->size;
}

const char *
q2_backing_name(const struct qcow2r *q)
{
    return q->backing_name;
}

const char *
q2_backing_format(const struct qcow2r *q)
{
    return q->backing_format;
}

/* Raw L2 entry of the cluster holding off (0 when its L1 entry is 0),
 * and *l1_empty when the whole L1 range is unallocated. */
static int
get_entry(struct qcow2r *q, uint64_t off, uint64_t *entry, bool *l1_empty,
          struct vqm_error *err)
{
    unsigned l2_bits = q->cluster_bits - 3;
    uint64_t l1_index = off >> (q->cluster_bits + l2_bits);
    uint64_t l1e, l2;

    *l1_empty = false;
    *entry = 0;
    if (l1_index >= q->l1_size) {
        *l1_empty = true;
        return 0;
    }
    if (read_entry(q, q->l1_offset, l1_index, &l1e, err) < 0)
        return -1;
    l2 = l1e & Q2_OFFSET_MASK;
    if (l2 == 0) {
        *l1_empty = true;
        return 0;
    }
    if (l2 & (q->cs - 1))
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 L2 table "
                             "offset 0x%" PRIx64 " unaligned", q->name, l2);
    if (l2 >= q->file_length)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 L2 table "
                             "offset 0x%" PRIx64 " past the end of the file",
                             q->name, l2);
    return read_entry(q, l2, (off >> q->cluster_bits) & (q->l2_entries - 1),
                      entry, err);
}

static int
classify(struct qcow2r *q, uint64_t e, enum q2_kind *kind, uint64_t *host,
         bool *has_offset, struct vqm_error *err)
{
    *host = 0;
    *has_offset = false;
    if (e & Q2_F_COMPRESSED) {
        *kind = Q2_COMPRESSED;
        return 0;
    }
    *host = e & Q2_OFFSET_MASK;
    if (e & Q2_F_ZERO) {
        if (q->version < 3)
            return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': zero cluster "
                                 "in a qcow2 version 2 image", q->name);
        *kind = Q2_ZERO;
    }
    else if (*host == 0) {
        *kind = Q2_UNALLOCATED;
        return 0;
    }
    else
        *kind = Q2_DATA;
    if (*host) {
        if (*host & (q->cs - 1))
            return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 data "
                                 "cluster offset 0x%" PRIx64 " unaligned",
                                 q->name, *host);
        *has_offset = true;
    }
    return 0;
}

int
q2_extent_at(struct qcow2r *q, uint64_t off, uint64_t len,
             struct q2_extent *ext, struct vqm_error *err)
{
    uint64_t pos = off, end, e, host, next_host = 0;
    uint64_t l1_span = q->cs << (q->cluster_bits - 3);
    enum q2_kind kind;
    bool first = true, empty, has_off;

    if (off >= q->size)
        return vqm_error_set(err, VQM_ERR_INVALID, "'%s': offset %" PRIu64
                             " past the end of the image", q->name, off);
    end = len < q->size - off ? off + len : q->size;
    memset(ext, 0, sizeof *ext);
    while (pos < end) {
        uint64_t next;

        if (get_entry(q, pos, &e, &empty, err) < 0)
            return -1;
        if (empty) {
            kind = Q2_UNALLOCATED;
            has_off = false;
            host = 0;
            next = (pos & ~(l1_span - 1)) + l1_span;
        }
        else {
            if (classify(q, e, &kind, &host, &has_off, err) < 0)
                return -1;
            next = (pos & ~(q->cs - 1)) + q->cs;
        }
        if (first) {
            ext->kind = kind;
            ext->has_offset = has_off;
            if (has_off)
                ext->host_offset = host + (pos & (q->cs - 1));
            first = false;
        }
        else if (kind != ext->kind || has_off != ext->has_offset ||
                 (has_off && host != next_host))
            break;
        next_host = host + q->cs;
        pos = next < end && next > pos ? next : end;
    }
    ext->length = pos - off;
    return 0;
}

static int
read_compressed(struct qcow2r *q, uint64_t e, struct vqm_error *err)
{
    unsigned x = 62 - (q->cluster_bits - 8);
    uint64_t coff = e & (((uint64_t) 1 << x) - 1);
    uint64_t nsect = ((e >> x) & (((uint64_t) 1 << (q->cluster_bits - 8)) - 1))
        + 1;
    uint64_t csize = nsect * 512 - (coff & 511);
    uint8_t *in = NULL;
    int ok = 0;

    if (q->cbuf_entry == e && q->cbuf)
        return 0;
    q->cbuf_entry = 0;
    if (!q->cbuf && !(q->cbuf = malloc(q->cs)))
        return vqm_error_set_errno(err, errno, "out of memory");
    if (coff >= q->file_length)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': compressed cluster "
                             "at 0x%" PRIx64 " past the end of the file",
                             q->name, coff);
    in = malloc(csize);
    if (!in)
        return vqm_error_set_errno(err, errno, "out of memory");
    if (vqm_pread_full(q->fd, in, csize, coff, 1, q->name, err) < 0) {
        free(in);
        return -1;
    }
    if (q->compression_type == 0) {
#ifdef HAVE_ZLIB
        z_stream s;
        memset(&s, 0, sizeof s);
        if (inflateInit2(&s, -12) == Z_OK) {
            int r;
            s.next_in = in;
            s.avail_in = (uInt) csize;
            s.next_out = q->cbuf;
            s.avail_out = (uInt) q->cs;
            r = inflate(&s, Z_FINISH);
            ok = (r == Z_STREAM_END || r == Z_BUF_ERROR) && s.avail_out == 0;
            inflateEnd(&s);
        }
#else
        free(in);
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': compressed "
                             "clusters not supported (built without zlib)",
                             q->name);
#endif
    }
    else {
#ifdef HAVE_ZSTD
        ZSTD_DCtx *dctx = ZSTD_createDCtx();
        if (dctx) {
            ZSTD_inBuffer ib = { in, csize, 0 };
            ZSTD_outBuffer ob = { q->cbuf, q->cs, 0 };
            size_t r;
            do {
                r = ZSTD_decompressStream(dctx, &ob, &ib);
            } while (!ZSTD_isError(r) && ob.pos < ob.size && ib.pos < ib.size
                     && r != 0);
            ok = !ZSTD_isError(r) && ob.pos == ob.size;
            ZSTD_freeDCtx(dctx);
        }
#else
        free(in);
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': zstd "
                             "compressed clusters not supported", q->name);
#endif
    }
    free(in);
    if (!ok)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': cannot decompress "
                             "the cluster at 0x%" PRIx64, q->name, coff);
    q->cbuf_entry = e;
    return 0;
}

int
q2_read(struct qcow2r *q, uint64_t off, void *buf, size_t len,
        struct vqm_error *err)
{
    char *p = buf;

    if (off > q->size || len > q->size - off)
        return vqm_error_set(err, VQM_ERR_INVALID, "'%s': read past the end "
                             "of the image", q->name);
    while (len > 0) {
        uint64_t e, host, in = off & (q->cs - 1);
        size_t n = (size_t) (q->cs - in < len ? q->cs - in : len);
        enum q2_kind kind;
        bool empty, has_off;

        if (get_entry(q, off, &e, &empty, err) < 0)
            return -1;
        if (empty)
            kind = Q2_UNALLOCATED;
        else if (classify(q, e, &kind, &host, &has_off, err) < 0)
            return -1;
        switch (kind) {
        case Q2_DATA:
            if (vqm_pread_full(q->fd, p, n, host + in, 1, q->name, err) < 0)
                return -1;
            break;
        case Q2_COMPRESSED:
            if (read_compressed(q, e, err) < 0)
                return -1;
            memcpy(p, q->cbuf + in, n);
            break;
        default:
            memset(p, 0, n);
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}
