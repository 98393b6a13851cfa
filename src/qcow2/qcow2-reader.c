/* virt-qed-migrate: the qcow2 header parser and a read-only reader.
 *
 * The header parser is the only code that interprets a qcow2 header:
 * discovery, the guest view, --inspect and the engine's backing rewrite
 * all go through it.  It reads from a buffer holding the first cluster
 * (bytes past its end read as zeros) and checks every offset and length
 * against the cluster size before using it, so no value from the file
 * can make it read outside the buffer.
 *
 * The reader adds enough of qcow2 (docs/interop/qcow2.txt in QEMU) to
 * read a backing file or verify a converted image: QEMU's remaining
 * open-time checks, L1/L2 lookup through a small chunk cache, zero
 * clusters and zlib/zstd compressed clusters.  Encryption, external
 * data files and extended L2 entries are refused.
 * Invariant: memory is bounded (the first cluster while opening, cache
 * slots and one cluster buffer), and every offset read from the file is
 * masked and checked for alignment before use.
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

#include "overflow.h"
#include "qcow2-reader.h"
#include "qcow2-writer.h"
#include "vqm-endian.h"
#include "vqm-io.h"

#define Q2_INCOMPAT_DIRTY 1u
#define Q2_INCOMPAT_CORRUPT 2u
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

/* ---- The header parser ---- */

/* Big-endian loads from the file's first len bytes; zeros past len. */
static uint32_t
hdr_be32(const uint8_t *b, size_t len, uint64_t off)
{
    uint8_t v[4] = { 0 };
    size_t i;

    for (i = 0; i < 4; i++)
        if (off + i < len)
            v[i] = b[off + i];
    return vqm_ld_be32(v);
}

static uint64_t
hdr_be64(const uint8_t *b, size_t len, uint64_t off)
{
    return (uint64_t) hdr_be32(b, len, off) << 32 | hdr_be32(b, len, off + 4);
}

/* Copy n bytes at off (within the first cluster) as a C string: stops at
 * a NUL, zeros past len.  out has room for n + 1 bytes. */
static void
hdr_string(const uint8_t *b, size_t len, uint64_t off, uint64_t n, char *out)
{
    uint64_t i;

    for (i = 0; i < n && off + i < len && b[off + i]; i++)
        out[i] = (char) b[off + i];
    out[i] = '\0';
}

int
qcow2_header_next_ext(const struct qcow2_header *h, const void *buf,
                      size_t len, uint64_t *pos, uint32_t *type,
                      uint64_t *data_off, uint32_t *data_len,
                      const char *name, struct vqm_error *err)
{
    const uint8_t *b = buf;
    uint64_t off = *pos, end = h->ext_end, padded;

    /* off and end are at most the cluster size (2 MiB): no sum below
     * can wrap, and each is checked before it is used. */
    if (off > end || end - off < 8)
        return 0;
    *type = hdr_be32(b, len, off);
    *data_len = hdr_be32(b, len, off + 4);
    if (*type == 0)
        return 0;
    off += 8;
    if (*data_len > end - off)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 header "
                             "extension 0x%08" PRIx32 " too large", name,
                             *type);
    *data_off = off;
    padded = vqm_align_up(*data_len, 8);
    *pos = padded < end - off ? off + padded : end;
    return 1;
}

int
qcow2_header_parse(const void *buf, size_t len, const char *name,
                   struct qcow2_header *h, struct vqm_error *err)
{
    const uint8_t *b = buf;
    uint64_t pos, data_off, name_end;
    uint32_t type, data_len;
    int r;

    memset(h, 0, sizeof *h);
    if (hdr_be32(b, len, 0) != QCOW2_MAGIC)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s' is not a qcow2 "
                             "image (bad magic)", name);
    h->version = hdr_be32(b, len, 4);
    if (h->version != 2 && h->version != 3)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': unsupported "
                             "qcow2 version %" PRIu32, name, h->version);
    h->backing_offset = hdr_be64(b, len, 8);
    h->backing_size = hdr_be32(b, len, 16);
    h->cluster_bits = hdr_be32(b, len, 20);
    h->size = hdr_be64(b, len, 24);
    h->crypt_method = hdr_be32(b, len, 32);
    h->l1_size = hdr_be32(b, len, 36);
    h->l1_offset = hdr_be64(b, len, 40);
    h->rt_offset = hdr_be64(b, len, 48);
    h->rt_clusters = hdr_be32(b, len, 56);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 "
                             "cluster bits %u", name, h->cluster_bits);
    h->cluster_size = (uint64_t) 1 << h->cluster_bits;
    if (h->version == 3) {
        h->incompatible_features = hdr_be64(b, len, 72);
        h->compatible_features = hdr_be64(b, len, 80);
        h->refcount_order = hdr_be32(b, len, 96);
        h->header_length = hdr_be32(b, len, 100);
        if (h->header_length < 104 || h->header_length % 8 ||
            h->header_length > h->cluster_size)
            return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 "
                                 "header length %" PRIu32, name,
                                 h->header_length);
        if (h->header_length > 104)
            h->compression_type = (uint8_t) (hdr_be32(b, len, 104) >> 24);
    }
    else {
        h->refcount_order = 4;
        h->header_length = 72;
    }
    if ((h->compression_type != 0) !=
        ((h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) != 0) ||
        h->compression_type > 1)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 "
                             "compression type %u", name,
                             (unsigned) h->compression_type);
    if (h->refcount_order > 6)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 "
                             "refcount order %" PRIu32, name,
                             h->refcount_order);

    /* The backing name lies in the first cluster: offset and end are
     * checked on their own, so an offset near 2^64 cannot wrap. */
    if (h->backing_offset) {
        if (h->backing_offset > h->cluster_size)
            return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 "
                                 "backing file offset 0x%" PRIx64, name,
                                 h->backing_offset);
        if (h->backing_size > QCOW2_MAX_BACKING_NAME ||
            vqm_add_overflow(h->backing_offset, (uint64_t) h->backing_size,
                             &name_end) ||
            name_end > h->cluster_size)
            return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 backing "
                                 "file name too long", name);
        hdr_string(b, len, h->backing_offset, h->backing_size,
                   h->backing_name);
        h->ext_end = h->backing_offset;
    }
    else
        h->ext_end = h->cluster_size;

    pos = h->header_length;
    while ((r = qcow2_header_next_ext(h, buf, len, &pos, &type, &data_off,
                                      &data_len, name, err)) > 0) {
        if (type != QCOW2_EXT_BACKING_FORMAT)
            continue;
        if (data_len >= sizeof h->backing_format)
            return vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 backing "
                                 "format name too long", name);
        hdr_string(b, len, data_off, data_len, h->backing_format);
    }
    return r;
}

int
qcow2_header_read(int fd, const char *name, struct qcow2_header *h,
                  uint8_t **cluster0, struct vqm_error *err)
{
    uint8_t fixed[QCOW2_HEADER_FIXED_LEN];
    uint8_t *c0;
    size_t cs;

    if (cluster0)
        *cluster0 = NULL;
    /* The fixed part alone first, for the cluster size: what it refuses
     * the whole cluster would refuse too (bytes past it read as zeros,
     * so only the header fields and the first extension count). */
    if (vqm_pread_full(fd, fixed, sizeof fixed, 0, 1, name, err) < 0 ||
        qcow2_header_parse(fixed, sizeof fixed, name, h, err) < 0)
        return -1;
    cs = (size_t) h->cluster_size;
    if (!(c0 = malloc(cs)))
        return vqm_error_set_errno(err, errno, "out of memory");
    if (vqm_pread_full(fd, c0, cs, 0, 1, name, err) < 0 ||
        qcow2_header_parse(c0, cs, name, h, err) < 0) {
        free(c0);
        return -1;
    }
    if (cluster0)
        *cluster0 = c0;
    else
        free(c0);
    return 0;
}

/* ---- The reader ---- */

int
q2_open(int fd, const char *name, struct qcow2r **out, struct vqm_error *err)
{
    struct qcow2r *q;
    struct qcow2_header h;
    struct stat st;
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
    if (qcow2_header_read(fd, name, &h, NULL, err) < 0)
        goto out;
    q->version = h.version;
    q->cluster_bits = h.cluster_bits;
    q->cs = h.cluster_size;
    q->l2_entries = q->cs / 8;
    q->size = h.size;
    q->l1_size = h.l1_size;
    q->l1_offset = h.l1_offset;
    q->compression_type = h.compression_type;
    if (h.crypt_method != 0) {
        vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': encrypted qcow2 "
                      "images are not supported", name);
        goto out;
    }
    if (h.incompatible_features & ~(uint64_t) (Q2_INCOMPAT_DIRTY |
                                               Q2_INCOMPAT_CORRUPT |
                                               QCOW2_INCOMPAT_COMPRESSION)) {
        vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': unsupported qcow2 "
                      "incompatible features 0x%" PRIx64, name,
                      h.incompatible_features);
        goto out;
    }
    if (h.rt_clusters == 0 || (h.rt_offset & (q->cs - 1))) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 refcount "
                      "table", name);
        goto out;
    }
    if ((q->l1_offset & (q->cs - 1)) || q->l1_offset == 0 ||
        (uint64_t) q->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': invalid qcow2 L1 table "
                      "(offset 0x%" PRIx64 ", %" PRIu32 " entries)", name,
                      q->l1_offset, q->l1_size);
        goto out;
    }
    /* Bytes covered by one L1 entry: cs * cs / 8 (<= 2^39). */
    if (vqm_div_round_up(q->size, q->cs * q->l2_entries) > q->l1_size) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 L1 table is too "
                      "small for the image size", name);
        goto out;
    }
    if (q->size > (uint64_t) INT64_MAX) {
        vqm_error_set(err, VQM_ERR_CORRUPT, "'%s': qcow2 image size too "
                      "large", name);
        goto out;
    }
    if ((h.backing_name[0] && !(q->backing_name = strdup(h.backing_name))) ||
        (h.backing_format[0] &&
         !(q->backing_format = strdup(h.backing_format)))) {
        vqm_error_set_errno(err, errno, "out of memory");
        goto out;
    }
    q->chunk_size = q->cs < Q2_CHUNK_MAX ? (uint32_t) q->cs : Q2_CHUNK_MAX;
    *out = q;
    q = NULL;
    ret = 0;
out:
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
    l2 = l1e & QCOW2_OFFSET_MASK;
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
    if (e & QCOW2_OFLAG_COMPRESSED) {
        *kind = Q2_COMPRESSED;
        return 0;
    }
    *host = e & QCOW2_OFFSET_MASK;
    if (e & QCOW2_OFLAG_ZERO) {
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
