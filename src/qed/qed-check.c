/* virt-qed-migrate: strict consistency check of a QED image.
 *
 * Walks the L1 table and every L2 table, validates every entry with
 * exact arithmetic, records each referenced host cluster in a sparse
 * bitmap and reports every problem through the callback: invalid or
 * unaligned offsets, references into the header area or past the end of
 * the file, duplicate references, and leaked clusters (as leaks, not
 * corruption).
 * Invariant: memory is bounded whatever the tables say.  The bitmap is
 * kept in 2048-cluster chunks, only for chunks that hold references, so
 * its cost follows the tables, not the file's size.  When the tables
 * could reference more chunks than WINDOW_BYTES hold, a first walk
 * counts references per host range and the check runs in several walks,
 * each over a window of host clusters whose bitmap fits (every duplicate
 * lies within one window, so each is found exactly once).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "overflow.h"
#include "qed-internal.h"
#include "vqm-endian.h"

#define CHUNK_BITS 11                         /* clusters per chunk: 2048 */
#define CHUNK_CLUSTERS ((uint64_t) 1 << CHUNK_BITS)
#define CHUNK_BYTES (CHUNK_CLUSTERS / 8)      /* 1 bit per cluster */
/* The bitmap of one walk is planned to stay within WINDOW_BYTES; a
 * window that cannot be split further (one histogram bucket, only for
 * files of many petabytes) may grow to MAP_MAX_BYTES, then the check is
 * refused: the whole process stays under 64 MiB whatever the tables say.
 * Dense references, as QEMU allocates them, cost under 2 bits per
 * cluster: a single walk covers about 100 million clusters (400 GiB of
 * data at 4 KiB clusters, 6 TiB at QED's default 64 KiB).
 */
#define MAP_MAX_BYTES ((uint64_t) 40 * 1024 * 1024)
#define WINDOW_BYTES ((uint64_t) 24 * 1024 * 1024)
#define CHUNK_COST (CHUNK_BYTES + 16 + 3 * sizeof(struct chunk))
#define BUCKETS 65536u           /* of the reference histogram */

enum { MARK_DATA = 1, MARK_TABLE = 2 };
/* The map keeps one bit per cluster (referenced or not); what the first
 * reference was is found again only for a duplicate, for its message. */
#define DESCRIBE_MAX 100

struct chunk {
    uint64_t key;                 /* cluster index >> CHUNK_BITS */
    uint8_t *bits;
};

/* Open-addressing hash map from chunk key to its bit array. */
struct clmap {
    struct chunk *slots;
    size_t cap, used;
};

static uint64_t
hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int
clmap_grow(struct clmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64, i;
    struct chunk *ns = calloc(ncap, sizeof *ns);

    if (!ns)
        return -1;
    for (i = 0; i < m->cap; i++) {
        if (m->slots[i].bits) {
            size_t j = hash64(m->slots[i].key) & (ncap - 1);
            while (ns[j].bits)
                j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
        }
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

static uint8_t *
clmap_get(struct clmap *m, uint64_t key, bool create)
{
    size_t j;

    if (m->cap) {
        j = hash64(key) & (m->cap - 1);
        while (m->slots[j].bits) {
            if (m->slots[j].key == key)
                return m->slots[j].bits;
            j = (j + 1) & (m->cap - 1);
        }
    }
    if (!create)
        return NULL;
    if ((m->used + 1) * 2 > m->cap && clmap_grow(m) < 0)
        return NULL;
    j = hash64(key) & (m->cap - 1);
    while (m->slots[j].bits)
        j = (j + 1) & (m->cap - 1);
    m->slots[j].bits = calloc(1, CHUNK_BYTES);
    if (!m->slots[j].bits)
        return NULL;
    m->slots[j].key = key;
    m->used++;
    return m->slots[j].bits;
}

static void
clmap_free(struct clmap *m)
{
    size_t i;

    for (i = 0; i < m->cap; i++)
        free(m->slots[i].bits);
    free(m->slots);
}

static int
cmp_chunk(const void *a, const void *b)
{
    const struct chunk *x = a, *y = b;

    return x->key < y->key ? -1 : x->key > y->key;
}

struct checker {
    struct qed_image *img;
    struct qed_check_result *res;
    qed_problem_fn fn;
    void *opaque;
    struct clmap map;
    struct vqm_error *err;
    uint64_t l1_done;             /* L1 entries whose L2 table is marked */
    uint64_t described;           /* duplicates described so far */
    /* The walk: the window of host clusters [lo, hi) it marks; the
     * first walk also reports entry problems and counts what does not
     * depend on the map.  hist, when not NULL: count references per
     * bucket of bw clusters instead of marking.
     */
    uint64_t lo, hi;
    bool first_walk;
    bool multi;                   /* several walks: every table walked */
    uint32_t *hist;
    uint64_t bw, nb;              /* bucket width (clusters), buckets */
    uint64_t last_key;            /* the chunk used last */
    uint8_t *last_bits;
    uint64_t run_start, run_len;  /* leaked clusters not reported yet */
};

static void
problem(struct checker *c, enum qed_problem_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(struct checker *c, enum qed_problem_kind kind, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (kind == QED_PROBLEM_CORRUPTION)
        c->res->corruptions++;
    if (!c->fn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->fn(c->opaque, kind, msg);
}

static const char *
mark_name(unsigned m)
{
    return m == MARK_DATA ? "data" : "table";
}

/* What a reference is, for a message: described only when there is a
 * problem (the check runs before every conversion, for every cluster).
 */
enum ref_what { REF_L1, REF_L2, REF_DATA };

static const char *
ref_describe(char *buf, size_t len, enum ref_what what, uint64_t arg)
{
    switch (what) {
    case REF_L1:
        return "L1 table";
    case REF_L2:
        snprintf(buf, len, "L2 table of L1 entry %" PRIu64, arg);
        return buf;
    case REF_DATA:
    default:
        snprintf(buf, len, "data cluster of guest offset 0x%" PRIx64, arg);
        return buf;
    }
}

/* What the cluster at host offset off was first referenced as: a table
 * (the L1 table or an L2 table marked so far) or data.  Costs a walk of
 * the L1 table, so it is done for the first DESCRIBE_MAX duplicates only
 * (0 = not described).
 */
static unsigned
first_kind(struct checker *c, uint64_t off)
{
    const struct qed_info *h = &c->img->info;
    uint64_t tlen = (uint64_t) h->table_size * h->cluster_size, i, l2;
    struct vqm_error e2 = { 0 };

    if (c->described >= DESCRIBE_MAX)
        return 0;
    c->described++;
    if (off - h->l1_table_offset < tlen)
        return MARK_TABLE;
    for (i = 0; i < c->l1_done && i < h->table_entries; i++) {
        if (qed_read_entry(c->img, h->l1_table_offset, i, &l2, &e2) < 0)
            return 0;
        if (l2 && !qed_table_offset_problem(c->img, l2) && off >= l2 &&
            off - l2 < tlen)
            return MARK_TABLE;
    }
    return MARK_DATA;
}

/* Mark the cluster at host offset off as kind; report a duplicate.
 * Returns 1 if it was already referenced, 0 if not, 2 if it lies
 * outside this walk's window, -1 on error.
 */
static int
mark(struct checker *c, uint64_t off, unsigned kind, enum ref_what what,
     uint64_t what_arg)
{
    uint64_t cl = off >> c->img->info.cluster_bits;
    uint64_t idx = cl & (CHUNK_CLUSTERS - 1), key = cl >> CHUNK_BITS;
    uint8_t *bits;
    uint8_t bit = (uint8_t) (1u << (idx & 7));
    uint64_t end;

    if (c->first_walk) {
        end = off + c->img->info.cluster_size;
        if (end > c->res->highest_used_end)
            c->res->highest_used_end = end;
    }
    if (c->hist) {
        uint32_t *b = &c->hist[cl / c->bw < c->nb ? cl / c->bw : c->nb - 1];
        if (*b != UINT32_MAX)
            (*b)++;
        return 2;
    }
    if (cl < c->lo || cl >= c->hi)
        return 2;
    if (c->last_bits && c->last_key == key) {
        bits = c->last_bits;
    } else {
        bits = clmap_get(&c->map, key, false);
        if (!bits) {
            /* The bit arrays (with malloc's overhead) and the slots,
             * counting the old and the new slot arrays while the map
             * grows. */
            if ((uint64_t) (c->map.used + 1) * (CHUNK_BYTES + 16) +
                (uint64_t) (c->map.cap ? c->map.cap : 64) * 3 *
                sizeof(struct chunk) > MAP_MAX_BYTES)
                return vqm_error_set(c->err, VQM_ERR_UNSUPPORTED,
                                     "'%s': too many scattered cluster "
                                     "references to check within %u MiB "
                                     "of memory", c->img->name,
                                     (unsigned) (MAP_MAX_BYTES >> 20));
            bits = clmap_get(&c->map, key, true);
            if (!bits)
                return vqm_error_set_errno(c->err, ENOMEM, "out of memory");
        }
        c->last_key = key;
        c->last_bits = bits;
    }
    if (bits[idx >> 3] & bit) {
        char buf[96];
        unsigned old = first_kind(c, off);

        if (old)
            problem(c, QED_PROBLEM_CORRUPTION,
                    "cluster at host offset 0x%" PRIx64 " is referenced "
                    "twice (%s/%s): %s", off, mark_name(old),
                    mark_name(kind),
                    ref_describe(buf, sizeof buf, what, what_arg));
        else
            problem(c, QED_PROBLEM_CORRUPTION,
                    "cluster at host offset 0x%" PRIx64 " is referenced "
                    "twice: %s", off,
                    ref_describe(buf, sizeof buf, what, what_arg));
        return 1;
    }
    bits[idx >> 3] |= bit;
    return 0;
}

/* Mark the table_size clusters of a table.  1 if any was a duplicate. */
static int
mark_table(struct checker *c, uint64_t off, enum ref_what what,
           uint64_t what_arg)
{
    const struct qed_info *h = &c->img->info;
    uint32_t i;
    int dup = 0, r;

    for (i = 0; i < h->table_size; i++) {
        r = mark(c, off + (uint64_t) i * h->cluster_size, MARK_TABLE, what,
                 what_arg);
        if (r < 0)
            return -1;
        dup |= r == 1;
    }
    return dup;
}

/* The guest offset of entry j of the L2 table of L1 entry i, saturated
 * (entries past the image still count).  i < 2^table_bits <= 2^27.
 */
static uint64_t
guest_of(const struct qed_info *h, uint64_t i, uint64_t j)
{
    uint64_t idx = (i << h->table_bits) + j;

    if (idx > (UINT64_MAX >> h->cluster_bits))
        return UINT64_MAX;
    return idx << h->cluster_bits;
}

static int
check_l2(struct checker *c, uint64_t l1_index, uint64_t l2)
{
    const struct qed_info *h = &c->img->info;
    uint64_t j = 0, entry, guest, cs = h->cluster_size;
    uint64_t hdr = (uint64_t) h->header_size * cs;
    const char *p;

    while (j < h->table_entries) {
        const uint8_t *ep;
        uint64_t cnt, k;

        if (qed_read_span(c->img, l2, j, &ep, &cnt, c->err) < 0)
            return -1;
        if (cnt > h->table_entries - j)
            cnt = h->table_entries - j;
        for (k = 0; k < cnt; k++, j++) {
            entry = vqm_ld_le64(ep + 8 * k);
            if (entry == 0)
                continue;
            if (entry == QED_ZERO_ENTRY) {
                if (c->first_walk && guest_of(h, l1_index, j) < h->image_size)
                    c->res->zero_clusters++;
                continue;
            }
            /* The usual case first: aligned, past the header, in the
             * file. */
            if ((entry & (cs - 1)) || entry < hdr || entry >= h->file_size) {
                if (!c->first_walk)
                    continue;
                p = qed_cluster_offset_problem(c->img, entry);
                problem(c, QED_PROBLEM_CORRUPTION,
                        "L2 table at 0x%" PRIx64 " entry %" PRIu64
                        " (guest offset 0x%" PRIx64 "): data cluster offset "
                        "0x%" PRIx64 " is invalid (%s)", l2, j,
                        guest_of(h, l1_index, j), entry, p ? p : "?");
                continue;
            }
            switch (mark(c, entry, MARK_DATA, REF_DATA,
                         guest_of(h, l1_index, j))) {
            case -1:
                return -1;
            case 0:
                guest = guest_of(h, l1_index, j);
                c->res->data_clusters++;
                if (guest < h->image_size)
                    c->res->allocated_bytes += h->image_size - guest < cs ?
                        h->image_size - guest : cs;
                break;
            }
        }
    }
    return 0;
}

static void
flush_run(struct checker *c)
{
    const struct qed_info *h = &c->img->info;

    if (!c->run_len)
        return;
    c->res->leaks += c->run_len;
    problem(c, QED_PROBLEM_LEAK, "%" PRIu64 " leaked cluster%s at host "
            "offset 0x%" PRIx64 " (not referenced)", c->run_len,
            c->run_len == 1 ? "" : "s", c->run_start << h->cluster_bits);
    c->run_len = 0;
}

static void
add_run(struct checker *c, uint64_t start, uint64_t len)
{
    if (c->run_len && c->run_start + c->run_len == start) {
        c->run_len += len;
    } else {
        flush_run(c);
        c->run_start = start;
        c->run_len = len;
    }
}

/* The unmarked clusters of the window [lo, hi) past the header area,
 * as runs (a run may go on in the next window: see flush_run).
 */
static int
find_leaks(struct checker *c)
{
    const struct qed_info *h = &c->img->info;
    uint64_t nclusters = h->file_size >> h->cluster_bits;
    uint64_t cl = h->header_size, top = nclusters;
    struct chunk *list = NULL;
    size_t n = 0, i, k;

    if (cl < c->lo)
        cl = c->lo;
    if (top > c->hi)
        top = c->hi;
    if (c->map.used) {
        list = malloc(c->map.used * sizeof *list);
        if (!list)
            return vqm_error_set_errno(c->err, ENOMEM, "out of memory");
        for (i = 0; i < c->map.cap; i++)
            if (c->map.slots[i].bits)
                list[n++] = c->map.slots[i];
        qsort(list, n, sizeof *list, cmp_chunk);
    }
    for (k = 0; k <= n && cl < top; k++) {
        uint64_t cstart = k < n ? list[k].key << CHUNK_BITS : top;

        if (cstart > top)
            cstart = top;
        if (cl < cstart) {                 /* whole chunks with no marks */
            add_run(c, cl, cstart - cl);
            cl = cstart;
        }
        if (k < n) {
            uint64_t base = list[k].key << CHUNK_BITS, idx;
            for (idx = 0; idx < CHUNK_CLUSTERS; idx++) {
                uint64_t x = base + idx;
                if (x < cl)
                    continue;
                if (x >= top)
                    break;
                if (!(list[k].bits[idx >> 3] & (1u << (idx & 7))))
                    add_run(c, x, 1);
            }
            cl = base + CHUNK_CLUSTERS > cl ? base + CHUNK_CLUSTERS : cl;
        }
    }
    free(list);
    return 0;
}

/* One walk of the L1 table and every L2 table. */
/* Ask the kernel to read the L2 tables of the L1 entries up to
 * RA_TABLES ahead of entry i, so that a cold table is on its way while
 * the ones before it are checked (they are scattered among the data).
 */
#define RA_TABLES 16
static int
read_ahead(struct checker *c, uint64_t i, uint64_t *ra)
{
    struct qed_image *img = c->img;
    const struct qed_info *h = &img->info;
    uint64_t l2, tbytes = (uint64_t) h->table_size * h->cluster_size;

    for (; *ra < h->table_entries && *ra <= i + RA_TABLES; (*ra)++) {
        if (qed_read_entry(img, h->l1_table_offset, *ra, &l2, c->err) < 0)
            return -1;
        if (l2 && !qed_table_offset_problem(img, l2))
            (void) posix_fadvise(img->fd, (off_t) l2, (off_t) tbytes,
                                 POSIX_FADV_WILLNEED);
    }
    return 0;
}

static int
walk(struct checker *c)
{
    struct qed_image *img = c->img;
    const struct qed_info *h = &img->info;
    uint64_t i, l2, ra = 0;
    const char *p;
    int r;

    c->last_bits = NULL;
    c->l1_done = 0;
    if (mark_table(c, h->l1_table_offset, REF_L1, 0) < 0)
        return -1;
    for (i = 0; i < h->table_entries; i++) {
        if (read_ahead(c, i, &ra) < 0 ||
            qed_read_entry(img, h->l1_table_offset, i, &l2, c->err) < 0)
            return -1;
        if (l2 == 0)
            continue;
        if ((p = qed_table_offset_problem(img, l2)) != NULL) {
            if (c->first_walk)
                problem(c, QED_PROBLEM_CORRUPTION,
                        "L1 entry %" PRIu64 ": L2 table offset 0x%" PRIx64
                        " is invalid (%s)", i, l2, p);
            continue;
        }
        c->l1_done = i;               /* its own table is not "earlier" */
        r = mark_table(c, l2, REF_L2, i);
        c->l1_done = i + 1;
        if (r < 0)
            return -1;
        /* Shared with something else: not walked (when every duplicate
         * is seen in this one walk). */
        if (r > 0 && !c->multi)
            continue;
        if (c->first_walk)
            c->res->l2_tables++;
        if (check_l2(c, i, l2) < 0)
            return -1;
    }
    return 0;
}

/* Could the tables reference more chunks than one window holds?  The
 * chunks of the file, and the references the tables can hold, bound it.
 */
static int
needs_windows(struct checker *c, bool *multi)
{
    const struct qed_info *h = &c->img->info;
    uint64_t nclusters = h->file_size >> h->cluster_bits;
    uint64_t chunks = (nclusters >> CHUNK_BITS) + 1, tables = 0, i, l2;
    uint64_t refs;

    *multi = false;
    if (chunks * CHUNK_COST <= WINDOW_BYTES)
        return 0;
    for (i = 0; i < h->table_entries; i++) {
        if (qed_read_entry(c->img, h->l1_table_offset, i, &l2, c->err) < 0)
            return -1;
        tables += l2 != 0;
    }
    if (vqm_mul_overflow(tables, h->table_entries + h->table_size, &refs))
        refs = UINT64_MAX;
    *multi = refs > WINDOW_BYTES / CHUNK_COST;
    return 0;
}

int
qed_check(struct qed_image *img, struct qed_check_result *res,
          qed_problem_fn fn, void *opaque, struct vqm_error *err)
{
    const struct qed_info *h = &img->info;
    struct checker c = { .img = img, .res = res, .fn = fn,
                         .opaque = opaque, .err = err };
    uint64_t nclusters = h->file_size >> h->cluster_bits, b, nb;
    uint64_t budget = WINDOW_BYTES / CHUNK_COST;
    uint32_t *hist = NULL;
    bool multi;
    int ret = -1;

    memset(res, 0, sizeof *res);
    if (needs_windows(&c, &multi) < 0)
        return -1;
    if (!multi) {
        c.lo = 0;
        c.hi = UINT64_MAX;
        c.first_walk = true;
        if (walk(&c) < 0 || find_leaks(&c) < 0)
            goto out;
        flush_run(&c);
        ret = 0;
        goto out;
    }

    /* References per bucket of bw clusters, then windows of whole
     * buckets whose chunks fit the budget (a bucket of n references
     * spanning m chunks touches at most min(n, m + 1) of them).
     */
    c.multi = true;
    c.bw = vqm_div_round_up(nclusters ? nclusters : 1, BUCKETS);
    nb = vqm_div_round_up(nclusters ? nclusters : 1, c.bw);
    c.nb = nb;
    hist = calloc(nb, sizeof *hist);
    if (!hist) {
        vqm_error_set_errno(err, ENOMEM, "out of memory");
        goto out;
    }
    c.hist = hist;
    if (walk(&c) < 0)
        goto out;
    c.hist = NULL;
    c.first_walk = true;
    memset(res, 0, sizeof *res);
    for (b = 0; b < nb; ) {
        uint64_t cost = 0, e = b;

        while (e < nb) {
            uint64_t span = (c.bw >> CHUNK_BITS) + 2;
            uint64_t k = hist[e] < span ? hist[e] : span;

            if (e > b && cost + k > budget)
                break;
            cost += k;
            e++;
        }
        c.lo = b * c.bw;
        c.hi = e == nb ? UINT64_MAX : e * c.bw;
        if (walk(&c) < 0 || find_leaks(&c) < 0)
            goto out;
        clmap_free(&c.map);
        memset(&c.map, 0, sizeof c.map);
        c.first_walk = false;
        b = e;
    }
    flush_run(&c);
    ret = 0;
out:
    free(hist);
    clmap_free(&c.map);
    return ret;
}
