/* virt-qed-migrate: the journal and the state directory.
 *
 * Invariant: a record describing a step is on stable storage (written
 * and fdatasync'ed) before the step starts, and another one after it
 * ended, so that after a crash the journal plus the files themselves
 * tell what was happening.  Records are only ever appended.
 *
 * Test hook: VQM_TEST_KILL_AT_STEP=N sends SIGKILL to the process right
 * after the N-th record (counting from 1) of this run reached the disk.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "virt-internal.h"
#include "vqm-io.h"

/* SETTLED: begun by an interrupted run, found settled by a later one
 * (the files and definitions are consistent again). */
enum rec_state { REC_BEGUN, REC_DONE, REC_FAILED, REC_SETTLED };

struct rec {
    int seq;
    enum rec_state state;
    char *step;
    char *a[3];
};

struct vqm_journal {
    char *dir;
    char *path;
    int lock_fd;
    int fd;                       /* journal, O_APPEND; -1 when read only */
    bool read_only;
    bool found;                   /* a journal existed before this run */
    struct rec *recs;
    size_t n, cap;
    int next_seq;
    unsigned written;             /* records written by this run */
    char last_error[1024];        /* why the last record failed */
    int kill_at;
    int kill_sig;                 /* VQM_TEST_KILL_SIGNAL, default KILL */
    int first_own;                /* index of this run's first record */
    char *command;                /* this run's command line */
    struct copy *copies;          /* <state-dir>/copies, last per source */
    size_t n_copies;
};

/* One line of <state-dir>/copies: a copy this tool linked and synced
 * under dst (device and inode recorded), whether it was verified, or
 * that its source went (removed, or rolled back: the copy is stale). */
struct copy {
    char *src, *dst;
    unsigned long long dev, ino;
    bool verified;
    bool gone;
};

static char *
join(const char *a, const char *b)
{
    char *s;

    if (asprintf(&s, "%s/%s", a, b) < 0)
        return NULL;
    return s;
}

/* %-escape tab, newline, CR and '%' so that a record is one line. */
static void
put_escaped(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '%' || *s == '\t' || *s == '\n' || *s == '\r')
            fprintf(fp, "%%%02X", (unsigned char) *s);
        else
            fputc(*s, fp);
    }
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static char *
unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    size_t i;

    if (!out)
        return NULL;
    for (i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0
            && hexval(s[i + 2]) >= 0) {
            *o++ = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
            continue;
        }
        *o++ = s[i];
    }
    *o = '\0';
    return out;
}

static struct rec *
find_seq(struct vqm_journal *j, int seq)
{
    size_t i;

    for (i = j->n; i-- > 0;)
        if (j->recs[i].seq == seq)
            return &j->recs[i];
    return NULL;
}

/* A new, zeroed record at the end (the array grows geometrically). */
static struct rec *
new_rec(struct vqm_journal *j)
{
    struct rec *r;

    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64;
        struct rec *v = realloc(j->recs, cap * sizeof *v);

        if (!v)
            return NULL;
        j->recs = v;
        j->cap = cap;
    }
    r = &j->recs[j->n++];
    memset(r, 0, sizeof *r);
    return r;
}

/* Split line at its tabs into at most max fields; how many. */
static size_t
split_fields(char *line, char **f, size_t max)
{
    size_t nf = 0;
    char *p = line, *tab;

    while (nf < max) {
        f[nf++] = p;
        if (!(tab = strchr(p, '\t')))
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return nf;
}

/* Parse one line; unknown or damaged lines (a torn last line after a
 * crash) are ignored. */
static void
parse_line(struct vqm_journal *j, char *line)
{
    char *f[6] = { 0 };
    size_t nf = split_fields(line, f, 6);
    struct rec *r;

    if (nf < 2)
        return;
    if (strcmp(f[0], "B") == 0 && nf >= 3) {
        size_t k;

        if (!(r = new_rec(j)))
            return;
        r->seq = atoi(f[1]);
        r->state = REC_BEGUN;
        r->step = strdup(f[2]);
        for (k = 0; k < 3; k++)
            r->a[k] = f[3 + k] ? unescape(f[3 + k], strlen(f[3 + k]))
                : strdup("");
        /* A damaged huge number must not make the next ones overflow. */
        if (r->seq >= j->next_seq && r->seq < INT_MAX / 2)
            j->next_seq = r->seq + 1;
    } else if (strcmp(f[0], "D") == 0) {
        if ((r = find_seq(j, atoi(f[1]))))
            r->state = REC_DONE;
    } else if (strcmp(f[0], "F") == 0) {
        if ((r = find_seq(j, atoi(f[1]))))
            r->state = REC_FAILED;
    } else if (strcmp(f[0], "S") == 0) {
        if ((r = find_seq(j, atoi(f[1]))) && r->state == REC_BEGUN)
            r->state = REC_SETTLED;
    }
}

bool vqm_journal_migrating(const struct vqm_journal *j, const char *uuid);
static bool superseded(const struct vqm_journal *j, size_t i);
struct mig;
static struct mig *open_migrations(const struct vqm_journal *j,
                                   size_t *n_out);

static int
read_journal(struct vqm_journal *j, struct vqm_error *err)
{
    CLEANUP_FCLOSE FILE *fp = NULL;
    CLEANUP_FREE char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    fp = fopen(j->path, "re");
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        return vqm_error_set_errno(err, errno, "cannot read journal '%s'",
                                   j->path);
    }
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] != '\n')
            break;                  /* torn last record */
        line[len - 1] = '\0';
        parse_line(j, line);
    }
    j->found = vqm_journal_pending(j);
    return 0;
}

static struct copy *
find_copy(const struct vqm_journal *j, const char *src)
{
    size_t i;

    for (i = 0; i < j->n_copies; i++)
        if (strcmp(j->copies[i].src, src) == 0)
            return &j->copies[i];
    return NULL;
}

/* One line of the copies index: "C src dst dev:ino verified", or
 * "X src" (the copy is stale), "R src" (the source was removed). */
static void
parse_copy_line(struct vqm_journal *j, char *line)
{
    char *f[5] = { 0 };
    size_t nf = split_fields(line, f, 5);
    CLEANUP_FREE char *src = NULL;
    struct copy *c;

    if (nf < 2 || !(src = unescape(f[1], strlen(f[1]))))
        return;
    c = find_copy(j, src);
    if (strcmp(f[0], "C") == 0 && nf == 5) {
        if (!c) {
            struct copy *v = realloc(j->copies,
                                     (j->n_copies + 1) * sizeof *v);
            if (!v)
                return;
            j->copies = v;
            c = &v[j->n_copies++];
            memset(c, 0, sizeof *c);
            c->src = vqm_steal(&src);
        } else {
            free(c->dst);
        }
        c->dst = unescape(f[2], strlen(f[2]));
        if (sscanf(f[3], "%llu:%llu", &c->dev, &c->ino) != 2)
            c->dev = c->ino = 0;
        c->verified = strcmp(f[4], "verified") == 0;
        c->gone = false;
    } else if ((strcmp(f[0], "X") == 0 || strcmp(f[0], "R") == 0) && c) {
        c->gone = true;
    }
}

static int
read_copies(struct vqm_journal *j, struct vqm_error *err)
{
    CLEANUP_FREE char *path = join(j->dir, "copies");
    CLEANUP_FCLOSE FILE *fp = NULL;
    CLEANUP_FREE char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    if (!path)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (!(fp = fopen(path, "re")))
        return errno == ENOENT ? 0
            : vqm_error_set_errno(err, errno, "cannot read '%s'", path);
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] != '\n')
            break;                  /* torn last line */
        line[len - 1] = '\0';
        parse_copy_line(j, line);
    }
    return 0;
}

/* flock the state directory; with VQM_LOCK_WAIT=SECONDS (the hook's
 * workers) wait that long for another run to finish.  0 or -1. */
static int
lock_wait(int fd)
{
    const char *w = getenv("VQM_LOCK_WAIT");
    time_t end = time(NULL) + (w ? atoi(w) : 0);

    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK || time(NULL) >= end)
            return -1;
        usleep(250000);
    }
    return 0;
}

static int
mkdir_0700(const char *path, struct vqm_error *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return vqm_error_set_errno(err, errno, "cannot create '%s'", path);
    if (chmod(path, 0700) < 0)
        return vqm_error_set_errno(err, errno, "cannot chmod '%s'", path);
    return 0;
}

int
vqm_journal_open(const char *dir, bool read_only, struct vqm_journal **out,
                 struct vqm_error *err)
{
    struct vqm_journal *j = calloc(1, sizeof *j);
    const char *k;
    static const char *const subdirs[] = { "history", "domains", "active" };
    size_t i;

    *out = NULL;
    if (!j)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    j->lock_fd = j->fd = -1;
    j->read_only = read_only;
    j->next_seq = 1;
    j->dir = strdup(dir);
    j->path = join(dir, "journal");
    if (!j->dir || !j->path)
        goto nomem;
    if ((k = getenv("VQM_TEST_KILL_AT_STEP")) && *k)
        j->kill_at = atoi(k);
    j->kill_sig = SIGKILL;
    if ((k = getenv("VQM_TEST_KILL_SIGNAL")) && *k)
        j->kill_sig = atoi(k);

    if (!read_only) {
        CLEANUP_FREE char *lock = join(dir, "lock");

        if (!lock)
            goto nomem;
        if (mkdir_0700(dir, err) < 0)
            goto fail;
        for (i = 0; i < 3; i++) {
            CLEANUP_FREE char *s = join(dir, subdirs[i]);
            if (!s)
                goto nomem;
            if (mkdir_0700(s, err) < 0)
                goto fail;
        }
        j->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (j->lock_fd < 0) {
            vqm_error_set_errno(err, errno, "cannot open '%s'", lock);
            goto fail;
        }
        if (lock_wait(j->lock_fd) < 0) {
            if (errno == EWOULDBLOCK)
                vqm_error_set(err, VQM_ERR_BUSY,
                              "another virt-qed-migrate is using the state "
                              "directory '%s'", dir);
            else
                vqm_error_set_errno(err, errno, "cannot lock '%s'", lock);
            goto fail;
        }
    }
    if (read_journal(j, err) < 0 || read_copies(j, err) < 0)
        goto fail;
    j->first_own = j->next_seq;
    if (!read_only) {
        j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                     0600);
        if (j->fd < 0) {
            vqm_error_set_errno(err, errno, "cannot open journal '%s'",
                                j->path);
            goto fail;
        }
    }
    *out = j;
    return 0;

 nomem:
    vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
 fail:
    vqm_journal_close(j, false);
    return -1;
}

void
vqm_journal_close(struct vqm_journal *j, bool archive)
{
    size_t i, k;

    if (!j)
        return;
    if (archive && j->fd >= 0) {
        char name[64];
        CLEANUP_FREE char *dest = NULL;
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(name, sizeof name, "history/journal-%Y%m%dT%H%M%SZ", &tm);
        if (asprintf(&dest, "%s/%s-%ld", j->dir, name, (long) getpid()) > 0
            && rename(j->path, dest) == 0)
            vqm_sync_dir(j->path, NULL);
    }
    if (j->fd >= 0)
        close(j->fd);
    if (j->lock_fd >= 0)
        close(j->lock_fd);
    for (i = 0; i < j->n; i++) {
        free(j->recs[i].step);
        for (k = 0; k < 3; k++)
            free(j->recs[i].a[k]);
    }
    free(j->recs);
    for (i = 0; i < j->n_copies; i++) {
        free(j->copies[i].src);
        free(j->copies[i].dst);
    }
    free(j->copies);
    free(j->command);
    free(j->dir);
    free(j->path);
    free(j);
}

bool
vqm_journal_pending(const struct vqm_journal *j)
{
    struct mig *m;
    size_t i, n;

    for (i = 0; i < j->n; i++)
        if (j->recs[i].state == REC_BEGUN
            && strcmp(j->recs[i].step, "migrate") != 0
            && strcmp(j->recs[i].step, "run") != 0 && !superseded(j, i))
            return true;
    m = open_migrations(j, &n);
    free(m);
    return !m || n > 0;         /* out of memory: assume there is work */
}

bool
vqm_journal_found(const struct vqm_journal *j)
{
    return j->found;
}

const char *
vqm_journal_last_error(const struct vqm_journal *j)
{
    return j->last_error[0] ? j->last_error : "unknown error";
}

const char *
vqm_journal_dir(const struct vqm_journal *j)
{
    return j->dir;
}

/* Append one line and make it durable. */
static int
append(struct vqm_journal *j, const char *kind, int seq, const char *step,
       const char *const a[3], struct vqm_error *err)
{
    CLEANUP_FREE char *buf = NULL;
    size_t len = 0;
    FILE *fp;
    int k;

    if (j->fd < 0)
        return 0;
    fp = open_memstream(&buf, &len);
    if (!fp)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    fprintf(fp, "%s\t%d", kind, seq);
    if (step) {
        fprintf(fp, "\t%s", step);
        for (k = 0; k < 3; k++) {
            fputc('\t', fp);
            put_escaped(fp, a[k] ? a[k] : "");
        }
    } else if (a && a[0]) {
        fputc('\t', fp);
        put_escaped(fp, a[0]);
    }
    fputc('\n', fp);
    fclose(fp);
    if (vqm_pwrite_full(j->fd, buf, len, 0, j->path, err) < 0
        || vqm_sync(j->fd, 0, j->path, err) < 0) {
        if (err)
            snprintf(j->last_error, sizeof j->last_error, "%s", err->msg);
        return -1;
    }
    j->written++;
    if (j->kill_at > 0 && j->written == (unsigned) j->kill_at)
        raise(j->kill_sig);
    return 0;
}

int
vqm_journal_begin(struct vqm_journal *j, const char *step, const char *a1,
                  const char *a2, const char *a3, struct vqm_error *err)
{
    const char *a[3] = { a1, a2, a3 };
    struct rec *r;
    int seq = j->next_seq++;
    int k;

    if (!(r = new_rec(j)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    r->seq = seq;
    r->state = REC_BEGUN;
    r->step = strdup(step);
    for (k = 0; k < 3; k++)
        r->a[k] = strdup(a[k] ? a[k] : "");
    if (append(j, "B", seq, step, a, err) < 0)
        return -1;
    if (strcmp(step, "run") != 0 && !j->read_only)
        vqm_interrupt_note("virt-qed-migrate: interrupted during step '%s' "
                           "(%s%s%s); the journal '%s' records it: run "
                           "'%s' to finish", step, r->a[0],
                           r->a[1][0] ? " " : "", r->a[1], j->path,
                           j->command ? j->command : "the same command");
    return seq;
}

int
vqm_journal_done(struct vqm_journal *j, int seq, struct vqm_error *err)
{
    struct rec *r = find_seq(j, seq);

    if (r)
        r->state = REC_DONE;
    return append(j, "D", seq, NULL, NULL, err);
}

int
vqm_journal_fail(struct vqm_journal *j, int seq, const char *msg,
                 struct vqm_error *err)
{
    struct rec *r = find_seq(j, seq);
    const char *a[3] = { msg, NULL, NULL };

    if (r)
        r->state = REC_FAILED;
    return append(j, "F", seq, NULL, a, err);
}

const char *
vqm_journal_renamed(const struct vqm_journal *j, const char *old)
{
    size_t i;
    struct stat st;

    for (i = j->n; i-- > 0;) {
        const struct rec *r = &j->recs[i];

        if (strcmp(r->step, "discard") == 0 && strcmp(r->a[0], old) == 0)
            return NULL;          /* rolled back: forget older renames */
        if (strcmp(r->step, "rename") != 0 || strcmp(r->a[0], old) != 0
            || r->state == REC_FAILED)
            continue;
        if (r->state == REC_DONE || stat(r->a[1], &st) == 0)
            return r->a[1];
    }
    return NULL;
}

bool
vqm_journal_converted(const struct vqm_journal *j, const char *path,
                      dev_t dev, ino_t ino)
{
    size_t i;

    for (i = 0; i < j->n; i++) {
        const struct rec *r = &j->recs[i];
        unsigned long long d, n;
        char mode[16];

        if (strcmp(r->step, "convert") != 0 || r->state == REC_FAILED)
            continue;
        if (sscanf(r->a[2], "%15[^:]:%llu:%llu", mode, &d, &n) != 3)
            continue;
        if (strcmp(mode, "in-place") != 0)
            continue;
        if ((strcmp(r->a[0], path) == 0 || strcmp(r->a[1], path) == 0)
            && d == (unsigned long long) dev
            && n == (unsigned long long) ino)
            return true;
    }
    return false;
}

const char *
vqm_journal_copy_output(const struct vqm_journal *j, const char *path)
{
    size_t i;

    for (i = j->n; i-- > 0;) {
        const struct rec *r = &j->recs[i];

        if (strcmp(r->step, "discard") == 0 && strcmp(r->a[0], path) == 0)
            return NULL;          /* rolled back: that copy is stale */
        if (strcmp(r->step, "convert") != 0 || r->state == REC_FAILED
            || strncmp(r->a[2], "copy:", 5) != 0
            || strcmp(r->a[0], path) != 0)
            continue;
        if (r->state == REC_DONE)
            return r->a[1];
        /* Begun, not ended: the engine links the copy under its name
         * only after its data was written and synced, and the plan made
         * sure nothing was there before: a file there is our complete
         * copy (still to be verified when asked). */
        {
            struct stat st;

            if (lstat(r->a[1], &st) == 0 && S_ISREG(st.st_mode))
                return r->a[1];
        }
        return NULL;
    }
    return NULL;
}

const char *
vqm_journal_known_copy(const struct vqm_journal *j, const char *src,
                       bool *verified)
{
    const struct copy *c = find_copy(j, src);
    struct stat st;

    if (!c || c->gone || !c->dst || stat(c->dst, &st) < 0
        || (unsigned long long) st.st_dev != c->dev
        || (unsigned long long) st.st_ino != c->ino)
        return NULL;
    if (verified)
        *verified = c->verified;
    return c->dst;
}

/* Append one line to the copies index and sync it. */
static int
copies_append(struct vqm_journal *j, const char *kind, const char *src,
              const char *dst, const char *rest, struct vqm_error *err)
{
    CLEANUP_FREE char *path = join(j->dir, "copies");
    CLEANUP_FREE char *buf = NULL;
    CLEANUP_CLOSE int fd = -1;
    size_t len = 0;
    FILE *fp;

    if (j->read_only)
        return 0;
    if (!path || !(fp = open_memstream(&buf, &len)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    fprintf(fp, "%s\t", kind);
    put_escaped(fp, src);
    if (dst) {
        fputc('\t', fp);
        put_escaped(fp, dst);
        fprintf(fp, "\t%s", rest);
    }
    fputc('\n', fp);
    fclose(fp);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0)
        return vqm_error_set_errno(err, errno, "cannot open '%s'", path);
    if (vqm_pwrite_full(fd, buf, len, 0, path, err) < 0
        || vqm_sync(fd, 0, path, err) < 0)
        return -1;
    buf[len - 1] = '\0';
    parse_copy_line(j, buf);
    return 0;
}

int
vqm_journal_note_copy(struct vqm_journal *j, const char *src,
                      const char *dst, bool verified, struct vqm_error *err)
{
    struct stat st;
    char rest[96];

    if (stat(dst, &st) < 0)
        return vqm_error_set_errno(err, errno, "cannot stat '%s'", dst);
    snprintf(rest, sizeof rest, "%llu:%llu\t%s",
             (unsigned long long) st.st_dev, (unsigned long long) st.st_ino,
             verified ? "verified" : "unverified");
    return copies_append(j, "C", src, dst, rest, err);
}

int
vqm_journal_note_source_gone(struct vqm_journal *j, const char *src,
                             bool removed, struct vqm_error *err)
{
    if (!find_copy(j, src))
        return 0;
    return copies_append(j, removed ? "R" : "X", src, NULL, NULL, err);
}

bool
vqm_journal_restart_owed(const struct vqm_journal *j, const char *uuid)
{
    size_t i;
    bool owed = false;

    for (i = 0; i < j->n; i++) {
        const struct rec *r = &j->recs[i];

        if (strcmp(r->a[0], uuid) != 0)
            continue;
        if (strcmp(r->step, "shutdown") == 0 && r->state == REC_DONE)
            owed = true;
        else if (strcmp(r->step, "start") == 0 && r->state == REC_DONE)
            owed = false;
    }
    return owed;
}

bool
vqm_journal_migrating(const struct vqm_journal *j, const char *uuid)
{
    size_t i;
    bool open = false;

    for (i = 0; i < j->n; i++) {
        const struct rec *r = &j->recs[i];

        if (strcmp(r->step, "migrate") == 0 && strcmp(r->a[0], uuid) == 0)
            open = r->state == REC_BEGUN;
    }
    return open;
}

/* One domain's migrate records: where its first and its last one are. */
struct mig {
    const char *uuid;
    size_t first, last;
};

static int
cmp_mig_uuid(const void *a, const void *b)
{
    const struct mig *x = a, *y = b;
    int c = strcmp(x->uuid, y->uuid);

    if (c)
        return c;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int
cmp_mig_first(const void *a, const void *b)
{
    const struct mig *x = a, *y = b;

    return x->first < y->first ? -1 : x->first > y->first;
}

/* The domains whose last migrate record is still open, in the order of
 * their first migrate record; *n_out of them.  O(n log n) in the number
 * of records (a run with many domains writes many).  NULL on ENOMEM.
 */
static struct mig *
open_migrations(const struct vqm_journal *j, size_t *n_out)
{
    struct mig *m = malloc((j->n + 1) * sizeof *m);
    size_t i, k, n = 0, out = 0;

    if (!m)
        return NULL;
    for (i = 0; i < j->n; i++)
        if (strcmp(j->recs[i].step, "migrate") == 0)
            m[n++] = (struct mig) { j->recs[i].a[0], i, i };
    qsort(m, n, sizeof *m, cmp_mig_uuid);
    for (i = 0; i < n; i = k) {
        for (k = i + 1; k < n && strcmp(m[k].uuid, m[i].uuid) == 0; k++)
            ;
        if (j->recs[m[k - 1].first].state == REC_BEGUN)
            m[out++] = (struct mig) { m[i].uuid, m[i].first,
                                      m[k - 1].first };
    }
    qsort(m, out, sizeof *m, cmp_mig_first);
    *n_out = out;
    return m;
}

const char **
vqm_journal_unfinished(const struct vqm_journal *j)
{
    const char **v = calloc(j->n + 1, sizeof *v);
    struct mig *m;
    size_t i, n;

    if (!v)
        return NULL;
    m = open_migrations(j, &n);
    if (!m) {
        free(v);
        return NULL;
    }
    for (i = 0; i < n; i++)
        v[i] = m[i].uuid;
    free(m);
    return v;
}

char *
vqm_journal_saved_xml_path(const char *dir, const char *uuid)
{
    char *s;

    if (asprintf(&s, "%s/domains/%s.xml", dir, uuid) < 0)
        return NULL;
    return s;
}

int
vqm_journal_save_xml(struct vqm_journal *j, const char *uuid,
                     const char *xml, struct vqm_error *err)
{
    CLEANUP_FREE char *path = vqm_journal_saved_xml_path(j->dir, uuid);
    CLEANUP_FREE char *tmp = NULL;
    CLEANUP_CLOSE int fd = -1;

    if (!path || asprintf(&tmp, "%s.tmp", path) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return vqm_error_set_errno(err, errno, "cannot create '%s'", tmp);
    if (fchmod(fd, 0600) < 0)
        return vqm_error_set_errno(err, errno, "cannot chmod '%s'", tmp);
    if (vqm_pwrite_full(fd, xml, strlen(xml), 0, tmp, err) < 0
        || vqm_sync(fd, 1, tmp, err) < 0)
        return -1;
    if (rename(tmp, path) < 0)
        return vqm_error_set_errno(err, errno, "cannot rename '%s'", tmp);
    return vqm_sync_dir(path, err);
}

int
vqm_journal_set_active(struct vqm_journal *j, const char *uuid, bool on,
                       struct vqm_error *err)
{
    CLEANUP_FREE char *path = NULL;
    CLEANUP_CLOSE int fd = -1;
    char buf[4096];
    int len;

    if (j->read_only)
        return 0;
    if (asprintf(&path, "%s/active/%s", j->dir, uuid) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (!on) {
        if (unlink(path) < 0 && errno != ENOENT)
            return vqm_error_set_errno(err, errno, "cannot remove '%s'",
                                       path);
        return vqm_sync_dir(path, err);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return vqm_error_set_errno(err, errno, "cannot create '%s'", path);
    /* "PID STARTTIME" and the command that finishes the migration: the
     * hook tells a live run from one that is gone (virt.h). */
    len = snprintf(buf, sizeof buf, "%ld %llu\n%.4000s\n", (long) getpid(),
                   vqm_proc_starttime((long) getpid()),
                   j->command ? j->command : "");
    if (vqm_pwrite_full(fd, buf, (size_t) len, 0, path, err) < 0
        || vqm_sync(fd, 0, path, err) < 0
        || vqm_sync_dir(path, err) < 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

void
vqm_journal_sweep_active(struct vqm_journal *j)
{
    CLEANUP_FREE char *dir = NULL;
    DIR *dp;
    struct dirent *e;

    if (j->read_only || asprintf(&dir, "%s/active", j->dir) < 0)
        return;
    if (!(dp = opendir(dir)))
        return;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || vqm_journal_migrating(j, e->d_name))
            continue;
        vqm_journal_set_active(j, e->d_name, false, NULL);
    }
    closedir(dp);
}

/* Was the begun record i redone to the end later (the same step on the
 * same object, done)?  Then it is settled. */
static bool
superseded(const struct vqm_journal *j, size_t i)
{
    const struct rec *r = &j->recs[i];
    size_t k;

    for (k = i + 1; k < j->n; k++)
        if (j->recs[k].state == REC_DONE
            && strcmp(j->recs[k].step, r->step) == 0
            && strcmp(j->recs[k].a[0], r->a[0]) == 0)
            return true;
    return false;
}

int
vqm_journal_run_begin(struct vqm_journal *j, const char *command,
                      struct vqm_error *err)
{
    if (command && !(j->command = strdup(command)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    return vqm_journal_begin(j, "run", command, NULL, NULL, err);
}

const char *
vqm_journal_command(const struct vqm_journal *j)
{
    size_t i;

    for (i = j->n; i-- > 0;)
        if (strcmp(j->recs[i].step, "run") == 0
            && j->recs[i].seq < j->first_own && j->recs[i].a[0][0])
            return j->recs[i].a[0];
    return j->command;
}

int
vqm_journal_settle(struct vqm_journal *j, int seq, struct vqm_error *err)
{
    struct rec *r = find_seq(j, seq);

    if (r && r->state == REC_BEGUN)
        r->state = REC_SETTLED;
    return append(j, "S", seq, NULL, NULL, err);
}

void
vqm_journal_each_open(const struct vqm_journal *j,
                      void (*fn)(void *opaque, int seq, const char *step,
                                 const char *const a[3]),
                      void *opaque)
{
    size_t i;

    for (i = 0; i < j->n; i++) {
        const struct rec *r = &j->recs[i];

        if (r->state == REC_BEGUN && strcmp(r->step, "migrate") != 0
            && strcmp(r->step, "run") != 0 && !superseded(j, i))
            fn(opaque, r->seq, r->step, (const char *const *) r->a);
    }
}

bool
vqm_journal_open_beyond(const struct vqm_journal *j, const char *uuid)
{
    struct mig *m;
    size_t i, n;
    bool beyond = false;

    for (i = 0; i < j->n && !beyond; i++) {
        const struct rec *r = &j->recs[i];

        if (r->state == REC_BEGUN && strcmp(r->step, "migrate") != 0
            && strcmp(r->step, "run") != 0 && !superseded(j, i)
            && strcmp(r->a[0], uuid) != 0)
            beyond = true;
    }
    if (!(m = open_migrations(j, &n)))
        return true;
    for (i = 0; i < n; i++)
        if (strcmp(m[i].uuid, uuid) != 0)
            beyond = true;
    free(m);
    return beyond;
}

int
vqm_journal_rolled_back(struct vqm_journal *j, const char *uuid,
                        const char *name, const char *const *paths,
                        size_t n, struct vqm_error *err)
{
    size_t i;
    int seq;

    /* Close an interrupted migration of this domain: it must never be
     * "finished" on top of the restored definition. */
    if (vqm_journal_migrating(j, uuid)) {
        seq = vqm_journal_begin(j, "migrate", uuid, name, NULL, err);
        if (seq < 0 || vqm_journal_fail(j, seq, "rolled back", err) < 0)
            return -1;
    }
    /* Copies and renames made for these sources are stale from now on. */
    for (i = 0; i < n; i++) {
        seq = vqm_journal_begin(j, "discard", paths[i], uuid, NULL, err);
        if (seq < 0 || vqm_journal_done(j, seq, err) < 0
            || vqm_journal_note_source_gone(j, paths[i], false, err) < 0)
            return -1;
    }
    return vqm_journal_set_active(j, uuid, false, err);
}
