/* virt-qed-migrate: the journal and the state directory.
 *
 * Invariant: a record describing a step is on stable storage (written
 * and fdatasync'ed) before the step starts, and another one after it
 * ended, so that after a crash the journal plus the files themselves
 * tell what was happening.  Records are only ever appended.
 *
 * Invariant of the state directory: it and everything in it belong to
 * the effective uid and are writable by nobody else (checked on the
 * descriptors, refused otherwise); every entry is opened relative to the
 * directory's descriptor with O_NOFOLLOW, so a symbolic link planted
 * there is refused, never followed; files that are new are created with
 * O_EXCL.  Saved definitions are never overwritten: one file per run
 * (domains/UUID/RUN.xml), its SHA-256 in the journal.
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

#include <glib.h>

#include "cleanup.h"
#include "virt-internal.h"
#include "vqm-io.h"

VQM_CLEANUP_DEFINE(cleanup_closedir, DIR *, closedir)
#define CLEANUP_CLOSEDIR __attribute__((cleanup(cleanup_closedir)))

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
    int dir_fd;                   /* the state directory; -1 if missing */
    char run_id[64];              /* this run: TIME-PID, sorts by time */
    int lock_fd;
    int fd;                       /* journal, O_APPEND; -1 when read only */
    bool read_only;
    bool found;                   /* a journal existed before this run */
    struct rec *recs;
    size_t n, cap;
    int next_seq;
    unsigned written;             /* records written by this run */
    bool unsynced;                /* D, F or S records not yet synced */
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

/* ---- the state directory: descriptors only ---- */

/* Is s a name we create in the state directory ourselves (a UUID, a run
 * id): letters, digits, '-', '.', not starting with '.'? */
static bool
safe_name(const char *s)
{
    size_t i;

    if (!s || !*s || *s == '.' || strlen(s) > 64)
        return false;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-'
              || s[i] == '.'))
            return false;
    return true;
}

/* The checks every state directory entry passes, on its descriptor:
 * the right type, owned by the effective uid, not writable by group or
 * others, and (files) one link only. */
static int
check_fd(int fd, const char *path, bool dir, struct vqm_error *err)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return vqm_error_set_errno(err, errno, "cannot stat '%s'", path);
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is not a %s: "
                             "refused", path,
                             dir ? "directory" : "regular file");
    if (st.st_uid != geteuid())
        return vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is owned by uid "
                             "%u, not by uid %u: refused", path,
                             (unsigned) st.st_uid, (unsigned) geteuid());
    if (st.st_mode & 022)
        return vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is writable by "
                             "group or others (mode %04o): refused", path,
                             (unsigned) (st.st_mode & 07777));
    if (!dir && st.st_nlink != 1)
        return vqm_error_set(err, VQM_ERR_REFUSED, "'%s' has %lu hard "
                             "links: refused", path,
                             (unsigned long) st.st_nlink);
    return 0;
}

/* openat() failed for path: say why, naming a planted link as such. */
static int
open_error(int errnum, const char *path, struct vqm_error *err)
{
    if (errnum == ELOOP || errnum == ENOTDIR)
        return vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is a symbolic "
                             "link or not of the expected type: refused",
                             path);
    return vqm_error_set_errno(err, errnum, "cannot open '%s'", path);
}

/* Open the directory name under dfd (dpath for messages) without
 * following a link, creating it (0700) first when create is set, and
 * check it.  The descriptor, or -1 (errno ENOENT for a missing one
 * when !create). */
static int
open_dir_at(int dfd, const char *dpath, const char *name, bool create,
            struct vqm_error *err)
{
    CLEANUP_FREE char *path = NULL;
    CLEANUP_CLOSE int fd = -1;

    if (asprintf(&path, "%s/%s", dpath, name) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (create && mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
        return vqm_error_set_errno(err, errno, "cannot create '%s'", path);
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;

        open_error(e, path, err);
        errno = e;
        return -1;
    }
    if (check_fd(fd, path, true, err) < 0) {
        errno = EPERM;              /* kept by the cleanup's close */
        return -1;
    }
    return vqm_steal_fd(&fd);
}

/* Open (create) the file name under dfd with flags | O_NOFOLLOW and
 * check it.  The descriptor, or -1 (errno ENOENT when it is missing and
 * flags has no O_CREAT). */
static int
open_file_at(int dfd, const char *dpath, const char *name, int flags,
             struct vqm_error *err)
{
    CLEANUP_FREE char *path = NULL;
    CLEANUP_CLOSE int fd = -1;

    if (asprintf(&path, "%s/%s", dpath, name) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    fd = openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;

        if (e == EEXIST)
            vqm_error_set(err, VQM_ERR_REFUSED, "'%s' exists already: "
                          "refused", path);
        else
            open_error(e, path, err);
        errno = e;
        return -1;
    }
    if (check_fd(fd, path, false, err) < 0) {
        errno = EPERM;              /* kept by the cleanup's close */
        return -1;
    }
    return vqm_steal_fd(&fd);
}

/* Open the state directory dir.  With create, the directory and the
 * parents it lacks are made (0700); a parent made here, and the state
 * directory itself, are opened without following a link and must pass
 * check_fd().  Parents that exist are the admin's and are followed.
 * The descriptor, or -1 (errno ENOENT when it is missing and !create).
 */
static int
statedir_open(const char *dir, bool create, struct vqm_error *err)
{
    CLEANUP_FREE char *copy = strdup(dir);
    CLEANUP_FREE char *sofar = NULL;
    char *p, *next;
    CLEANUP_CLOSE int fd = -1;
    int nfd;
    struct stat st;

    if (!copy)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    fd = open(dir[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY
              | O_CLOEXEC);
    if (fd < 0)
        return vqm_error_set_errno(err, errno, "cannot open '%s'", dir);
    sofar = strdup(dir[0] == '/' ? "" : ".");
    for (p = copy; p; p = next) {
        bool last, made = false;
        char *s;

        while (*p == '/')
            p++;
        next = strchr(p, '/');
        if (next)
            *next++ = '\0';
        while (next && *next == '/')
            next++;
        last = !next || !*next;
        if (!*p) {
            if (last)
                break;
            continue;
        }
        if (!sofar || asprintf(&s, "%s/%s", sofar, p) < 0)
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        free(sofar);
        sofar = s;
        if (create && fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0
            && errno == ENOENT) {
            if (mkdirat(fd, p, 0700) < 0 && errno != EEXIST)
                return vqm_error_set_errno(err, errno, "cannot create "
                                           "'%s'", s);
            made = true;
        }
        if (last || made)
            nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                         | O_CLOEXEC);
        else
            nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (nfd < 0) {
            int e = errno;

            if (e == ENOENT && !create)
                vqm_error_set_errno(err, e, "state directory '%s'", dir);
            else
                open_error(e, s, err);
            errno = e;
            return -1;
        }
        close(fd);
        fd = nfd;
        if ((last || made) && check_fd(fd, s, true, err) < 0) {
            errno = EPERM;
            return -1;
        }
        if (last)
            break;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) && !(st.st_mode & 022)
        && create && fchmod(fd, 0700) < 0)
        return vqm_error_set_errno(err, errno, "cannot chmod '%s'", dir);
    return vqm_steal_fd(&fd);
}

/* Read the journal records from the descriptor fd (from its start). */
static int
read_records(struct vqm_journal *j, int fd, const char *path,
             struct vqm_error *err)
{
    CLEANUP_FCLOSE FILE *fp = NULL;
    CLEANUP_FREE char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    CLEANUP_CLOSE int dfd = dup(fd);

    if (dfd < 0 || lseek(dfd, 0, SEEK_SET) < 0 || !(fp = fdopen(dfd, "r")))
        return vqm_error_set_errno(err, errno, "cannot read journal '%s'",
                                   path);
    dfd = -1;                       /* fp's now */
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] != '\n')
            break;                  /* torn last record */
        line[len - 1] = '\0';
        parse_line(j, line);
    }
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

    CLEANUP_CLOSE int fd = -1;

    if (!path)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (j->dir_fd < 0)
        return 0;                   /* no state directory: no copies */
    fd = open_file_at(j->dir_fd, j->dir, "copies", O_RDONLY, err);
    if (fd < 0) {
        if (errno != ENOENT)
            return -1;
        vqm_error_clear(err);
        return 0;
    }
    if (!(fp = fdopen(fd, "re")))
        return vqm_error_set_errno(err, errno, "cannot read '%s'", path);
    fd = -1;                        /* fp's now */
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
read_journal(struct vqm_journal *j, struct vqm_error *err)
{
    CLEANUP_CLOSE int fd = -1;

    if (j->dir_fd < 0)
        return 0;
    if (j->fd >= 0)
        return read_records(j, j->fd, j->path, err);
    fd = open_file_at(j->dir_fd, j->dir, "journal", O_RDONLY, err);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    return read_records(j, fd, j->path, err);
}

/* vqm_journal_close(j, false) at the end of the scope. */
static void
journal_cleanup(struct vqm_journal **jp)
{
    vqm_journal_close(*jp, false);
}

#define CLEANUP_JOURNAL __attribute__((cleanup(journal_cleanup)))

/* A journal of dir, not opened yet, with this run's id. */
static struct vqm_journal *
journal_new(const char *dir, bool read_only, struct vqm_error *err)
{
    CLEANUP_JOURNAL struct vqm_journal *j = calloc(1, sizeof *j);
    struct timespec ts;
    struct tm tm;
    char stamp[32];

    if (!j) {
        vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    j->dir_fd = j->lock_fd = j->fd = -1;
    j->read_only = read_only;
    j->next_seq = 1;
    j->dir = strdup(dir);
    j->path = join(dir, "journal");
    if (!j->dir || !j->path) {
        vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        return NULL;
    }
#ifdef VQM_FAULT_INJECTION
    {
        const char *k = getenv("VQM_TEST_KILL_AT_STEP");
        if (k && *k)
            j->kill_at = atoi(k);
        j->kill_sig = SIGKILL;
        if ((k = getenv("VQM_TEST_KILL_SIGNAL")) && *k)
            j->kill_sig = atoi(k);
    }
#endif
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    snprintf(j->run_id, sizeof j->run_id, "%s.%06ldZ-%ld", stamp,
             ts.tv_nsec / 1000, (long) getpid());
    return vqm_steal(&j);
}

/* Create the subdirectories of the state directory, take its lock and
 * open the journal for appending.  0 or -1. */
static int
journal_lock(struct vqm_journal *j, const char *dir, struct vqm_error *err)
{
    static const char *const subdirs[] = { "history", "domains", "active" };
    size_t i;

    for (i = 0; i < 3; i++) {
        CLEANUP_CLOSE int fd = open_dir_at(j->dir_fd, dir, subdirs[i], true,
                                           err);
        if (fd < 0)
            return -1;
    }
    j->lock_fd = open_file_at(j->dir_fd, dir, "lock", O_RDWR | O_CREAT, err);
    if (j->lock_fd < 0)
        return -1;
    if (lock_wait(j->lock_fd) < 0) {
        if (errno == EWOULDBLOCK)
            return vqm_error_set(err, VQM_ERR_BUSY, "another "
                                 "virt-qed-migrate is using the state "
                                 "directory '%s'", dir);
        return vqm_error_set_errno(err, errno, "cannot lock '%s/lock'", dir);
    }
    j->fd = open_file_at(j->dir_fd, dir, "journal",
                         O_RDWR | O_APPEND | O_CREAT, err);
    if (j->fd < 0)
        return -1;
    return 0;
}

int
vqm_journal_open(const char *dir, bool read_only, struct vqm_journal **out,
                 struct vqm_error *err)
{
    CLEANUP_JOURNAL struct vqm_journal *j = NULL;

    *out = NULL;
    if (!(j = journal_new(dir, read_only, err)))
        return -1;
    j->dir_fd = statedir_open(dir, !read_only, err);
    if (j->dir_fd < 0 && read_only && errno == ENOENT) {
        vqm_error_clear(err);
        *out = vqm_steal(&j);  /* a missing directory: an empty journal */
        return 0;
    }
    if (j->dir_fd < 0
        || (!read_only && journal_lock(j, dir, err) < 0)
        || read_journal(j, err) < 0 || read_copies(j, err) < 0) {
        if (err && err->code == VQM_ERR_REFUSED)
            vqm_error_prefix(err, "state directory '%s'", dir);
        return -1;
    }
    j->found = vqm_journal_pending(j);
    j->first_own = j->next_seq;
    *out = vqm_steal(&j);
    return 0;
}

static void
free_records(struct vqm_journal *j)
{
    size_t i, k;

    for (i = 0; i < j->n; i++) {
        free(j->recs[i].step);
        for (k = 0; k < 3; k++)
            free(j->recs[i].a[k]);
    }
    free(j->recs);
    j->recs = NULL;
    j->n = j->cap = 0;
}

void
vqm_journal_close(struct vqm_journal *j, bool archive)
{
    size_t i;

    if (!j)
        return;
    if (j->unsynced && j->fd >= 0)
        fdatasync(j->fd);
    if (archive && j->fd >= 0) {
        char name[96];
        CLEANUP_CLOSE int hfd = open_dir_at(j->dir_fd, j->dir, "history",
                                            false, NULL);

        snprintf(name, sizeof name, "journal-%s", j->run_id);
        if (hfd >= 0 && renameat(j->dir_fd, "journal", hfd, name) == 0) {
            fsync(hfd);
            fsync(j->dir_fd);
        }
    }
    if (j->fd >= 0)
        close(j->fd);
    if (j->lock_fd >= 0)
        close(j->lock_fd);
    if (j->dir_fd >= 0)
        close(j->dir_fd);
    free_records(j);
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

/* Append one line.  A "B" record is made durable, with every record
 * before it, before the step it announces begins: that is the
 * write-ahead rule.  The records that close a step ("D", "F", "S") are
 * not synced on their own: losing one to a power cut is the same as a
 * crash just before it was written, which recovery settles from the
 * state of the files; the next "B" record or the close syncs them. */
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
        || (strcmp(kind, "B") == 0
            && vqm_sync(j->fd, 0, j->path, err) < 0)) {
        if (err)
            snprintf(j->last_error, sizeof j->last_error, "%s", err->msg);
        return -1;
    }
    j->unsynced = strcmp(kind, "B") != 0;
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
    fd = open_file_at(j->dir_fd, j->dir, "copies", O_WRONLY | O_APPEND
                      | O_CREAT, err);
    if (fd < 0)
        return -1;
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
        /* A shutdown begun and never recorded as done was asked of the
         * guest: if it is off now, the interrupted run stopped it. */
        if (strcmp(r->step, "shutdown") == 0
            && (r->state == REC_DONE || r->state == REC_BEGUN))
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

const char *
vqm_journal_run_id(const struct vqm_journal *j)
{
    return j->run_id;
}

/* The lower-case hex SHA-256 of len bytes at buf, in out[65]. */
static void
sha256_hex(const void *buf, size_t len, char out[65])
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);

    g_checksum_update(c, buf, (gssize) len);
    snprintf(out, 65, "%s", g_checksum_get_string(c));
    g_checksum_free(c);
}

/* Open domains/UUID (creating both when create). */
static int
open_domain_dir(struct vqm_journal *j, const char *uuid, bool create,
                struct vqm_error *err)
{
    CLEANUP_FREE char *dpath = NULL;
    CLEANUP_CLOSE int dfd = -1;
    int fd;

    if (!safe_name(uuid))
        return vqm_error_set(err, VQM_ERR_INVALID, "invalid domain UUID "
                             "'%s'", uuid);
    if (j->dir_fd < 0)
        return vqm_error_set(err, VQM_ERR_NOTFOUND, "state directory '%s' "
                             "does not exist", j->dir);
    dfd = open_dir_at(j->dir_fd, j->dir, "domains", create, err);
    if (dfd < 0 || asprintf(&dpath, "%s/domains", j->dir) < 0)
        return -1;
    fd = open_dir_at(dfd, dpath, uuid, create, err);
    if (fd >= 0 && create)
        fsync(dfd);
    return fd;
}

int
vqm_journal_save_xml(struct vqm_journal *j, const char *uuid,
                     const char *xml, struct vqm_error *err)
{
    CLEANUP_FREE char *upath = NULL;
    CLEANUP_FREE char *path = NULL;
    CLEANUP_CLOSE int ufd = -1;
    CLEANUP_CLOSE int fd = -1;
    char name[80], digest[65];
    size_t len = strlen(xml);
    int seq;

    if (j->read_only)
        return 0;
    if ((ufd = open_domain_dir(j, uuid, true, err)) < 0)
        return -1;
    if (asprintf(&upath, "%s/domains/%s", j->dir, uuid) < 0
        || asprintf(&path, "%s/%s.xml", upath, j->run_id) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    snprintf(name, sizeof name, "%s.xml", j->run_id);
    fd = open_file_at(ufd, upath, name, O_WRONLY | O_CREAT | O_EXCL, err);
    if (fd < 0)
        return -1;
    if (fchmod(fd, 0600) < 0)
        return vqm_error_set_errno(err, errno, "cannot chmod '%s'", path);
    if (vqm_pwrite_full(fd, xml, len, 0, path, err) < 0
        || vqm_sync(fd, 1, path, err) < 0)
        return -1;
    if (fsync(ufd) < 0)
        return vqm_error_set_errno(err, errno, "cannot sync '%s'", upath);
    /* The journal says which file this run saved and what it holds. */
    sha256_hex(xml, len, digest);
    seq = vqm_journal_begin(j, "save", uuid, j->run_id, digest, err);
    if (seq < 0 || vqm_journal_done(j, seq, err) < 0)
        return -1;
    return 0;
}

/* One "save" record: a run that saved a definition of the domain. */
struct saved {
    char *run;
    char *digest;
};

static void
saved_free(struct saved *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].run);
        free(v[i].digest);
    }
    free(v);
}

/* The save records found for a domain. */
struct saved_list {
    struct saved *v;
    size_t n;
};

static void
saved_list_clear(struct saved_list *l)
{
    saved_free(l->v, l->n);
}

#define CLEANUP_SAVED_LIST __attribute__((cleanup(saved_list_clear)))

/* Add the save records of uuid found in recs[0..n) to *v. */
static int
collect_saves(const struct rec *recs, size_t n, const char *uuid,
              struct saved **v, size_t *nv)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct saved *nvp;

        if (strcmp(recs[i].step, "save") != 0 || recs[i].state != REC_DONE
            || strcasecmp(recs[i].a[0], uuid) != 0
            || !safe_name(recs[i].a[1]))
            continue;
        if (!(nvp = realloc(*v, (*nv + 1) * sizeof **v)))
            return -1;
        *v = nvp;
        nvp[*nv].run = strdup(recs[i].a[1]);
        nvp[*nv].digest = strdup(recs[i].a[2]);
        (*nv)++;
        if (!nvp[*nv - 1].run || !nvp[*nv - 1].digest)
            return -1;
    }
    return 0;
}

/* The save records of uuid in the archived journals (history/). */
static int
history_saves(struct vqm_journal *j, const char *uuid, struct saved **v,
              size_t *nv, struct vqm_error *err)
{
    CLEANUP_FREE char *hpath = NULL;
    CLEANUP_CLOSE int hfd = -1;
    CLEANUP_CLOSEDIR DIR *dp = NULL;
    struct dirent *e;
    int ret = 0;

    hfd = open_dir_at(j->dir_fd, j->dir, "history", false, err);
    if (hfd < 0)
        return errno == ENOENT ? 0 : -1;
    if (asprintf(&hpath, "%s/history", j->dir) < 0 || !(dp = fdopendir(hfd)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    hfd = -1;                       /* dp's now */
    while (ret == 0 && (e = readdir(dp))) {
        struct vqm_journal h = { .next_seq = 1 };
        CLEANUP_CLOSE int fd = -1;

        if (strncmp(e->d_name, "journal", 7) != 0)
            continue;
        fd = open_file_at(dirfd(dp), hpath, e->d_name, O_RDONLY, err);
        if (fd < 0)
            return -1;
        if (read_records(&h, fd, e->d_name, err) < 0)
            ret = -1;
        else if (collect_saves(h.recs, h.n, uuid, v, nv) < 0)
            ret = vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        free_records(&h);
    }
    return ret;
}

/* Saved definitions larger than this are refused (libvirt's own limit
 * for a domain XML is 10 MiB). */
#define SAVED_XML_MAX (16u << 20)

/* The save to restore from: the one of run, else the newest (run ids
 * begin with the time: the newest sorts last).  SIZE_MAX when none. */
static size_t
pick_save(const struct saved_list *sv, const char *run)
{
    size_t i, pick = SIZE_MAX;

    for (i = 0; i < sv->n; i++) {
        if (run ? strcmp(sv->v[i].run, run) == 0
            : pick == SIZE_MAX || strcmp(sv->v[i].run, sv->v[pick].run) > 0)
            pick = i;
    }
    return pick;
}

/* No save record of uuid (by run): say why, in err.  -1. */
static int
no_save_error(struct vqm_journal *j, const char *uuid, const char *run,
              struct vqm_error *err)
{
    CLEANUP_FREE char *old = NULL;
    struct stat st;

    if (run)
        return vqm_error_set(err, VQM_ERR_NOTFOUND, "no definition of "
                             "domain %s was saved by run '%s' (see the "
                             "'save' records in '%s/journal' and "
                             "'%s/history')", uuid, run, j->dir, j->dir);
    if (asprintf(&old, "%s.xml", uuid) > 0) {
        CLEANUP_CLOSE int dfd = open_dir_at(j->dir_fd, j->dir, "domains",
                                            false, NULL);
        if (dfd >= 0 && fstatat(dfd, old, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return vqm_error_set(err, VQM_ERR_REFUSED, "'%s/domains/%s' "
                                 "was saved by an older version of "
                                 "virt-qed-migrate, which recorded no "
                                 "digest of it: refused (check it, then "
                                 "restore it with 'virsh define')", j->dir,
                                 old);
    }
    return vqm_error_set(err, VQM_ERR_NOTFOUND, "no saved definition of "
                         "domain %s in '%s'", uuid, j->dir);
}

/* Read domains/UUID/RUN.xml of the save sv and check it against the
 * digest recorded.  *xml and *path are malloc'ed.  0 or -1. */
static int
read_save(struct vqm_journal *j, const char *uuid, const struct saved *sv,
          char **xml, char **path, struct vqm_error *err)
{
    CLEANUP_FREE char *upath = NULL;
    CLEANUP_FREE char *fpath = NULL;
    CLEANUP_FREE char *buf = NULL;
    CLEANUP_CLOSE int ufd = -1;
    CLEANUP_CLOSE int fd = -1;
    char name[80], digest[65];
    struct stat st;

    if ((ufd = open_domain_dir(j, uuid, false, err)) < 0)
        return -1;
    if (asprintf(&upath, "%s/domains/%s", j->dir, uuid) < 0
        || asprintf(&fpath, "%s/%s.xml", upath, sv->run) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    snprintf(name, sizeof name, "%s.xml", sv->run);
    if ((fd = open_file_at(ufd, upath, name, O_RDONLY, err)) < 0)
        return -1;
    if (fstat(fd, &st) < 0 || st.st_size > SAVED_XML_MAX)
        return vqm_error_set(err, VQM_ERR_REFUSED, "saved definition '%s' "
                             "is larger than %u MiB: refused", fpath,
                             SAVED_XML_MAX >> 20);
    if (!(buf = malloc((size_t) st.st_size + 1)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (vqm_pread_full(fd, buf, (size_t) st.st_size, 0, 0, fpath, err) < 0)
        return -1;
    buf[st.st_size] = '\0';
    sha256_hex(buf, (size_t) st.st_size, digest);
    if (strcasecmp(digest, sv->digest) != 0)
        return vqm_error_set(err, VQM_ERR_REFUSED, "saved definition '%s' "
                             "does not match the SHA-256 the journal "
                             "recorded when run %s saved it (it was changed "
                             "since): refused", fpath, sv->run);
    if (strlen(buf) != (size_t) st.st_size)
        return vqm_error_set(err, VQM_ERR_REFUSED, "saved definition '%s' "
                             "holds a NUL byte: refused", fpath);
    *xml = vqm_steal(&buf);
    *path = vqm_steal(&fpath);
    return 0;
}

int
vqm_journal_saved_xml(struct vqm_journal *j, const char *uuid,
                      const char *run, char **xml, char **path,
                      struct vqm_error *err)
{
    CLEANUP_SAVED_LIST struct saved_list sv = { NULL, 0 };
    size_t pick;

    *xml = *path = NULL;
    if (j->dir_fd < 0)
        return vqm_error_set(err, VQM_ERR_NOTFOUND, "no saved definition "
                             "of domain %s: state directory '%s' does not "
                             "exist", uuid, j->dir);
    if (collect_saves(j->recs, j->n, uuid, &sv.v, &sv.n) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (history_saves(j, uuid, &sv.v, &sv.n, err) < 0)
        return -1;
    if ((pick = pick_save(&sv, run)) == SIZE_MAX)
        return no_save_error(j, uuid, run, err);
    return read_save(j, uuid, &sv.v[pick], xml, path, err);
}

int
vqm_journal_set_active(struct vqm_journal *j, const char *uuid,
                       const char *name, bool on, struct vqm_error *err)
{
    CLEANUP_FREE char *apath = NULL;
    CLEANUP_FREE char *path = NULL;
    CLEANUP_FREE char *buf = NULL;
    CLEANUP_CLOSE int afd = -1;
    CLEANUP_CLOSE int fd = -1;
    struct stat st;
    char cmd[4001];
    size_t ci;
    int len;

    if (j->read_only)
        return 0;
    if (!safe_name(uuid))
        return vqm_error_set(err, VQM_ERR_INVALID, "invalid domain UUID "
                             "'%s'", uuid);
    if (asprintf(&apath, "%s/active", j->dir) < 0
        || asprintf(&path, "%s/%s", apath, uuid) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if ((afd = open_dir_at(j->dir_fd, j->dir, "active", true, err)) < 0)
        return -1;
    /* A marker left by an interrupted run is a regular file of ours;
     * anything else there (a link planted to a victim) is refused. */
    if (fstatat(afd, uuid, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
            return vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is not a "
                                 "regular file of uid %u (a symbolic "
                                 "link?): refused", path,
                                 (unsigned) geteuid());
        if (unlinkat(afd, uuid, 0) < 0)
            return vqm_error_set_errno(err, errno, "cannot remove '%s'",
                                       path);
    } else if (errno != ENOENT) {
        return vqm_error_set_errno(err, errno, "cannot stat '%s'", path);
    }
    if (!on) {
        if (fsync(afd) < 0)
            return vqm_error_set_errno(err, errno, "cannot sync '%s'",
                                       apath);
        return 0;
    }
    fd = open_file_at(afd, apath, uuid, O_WRONLY | O_CREAT | O_EXCL, err);
    if (fd < 0)
        return -1;
    /* "PID STARTTIME\ncommand=COMMAND\nname=NAME": the hook tells a live
     * run from one that is gone (pid and start time), names the command
     * that finishes the migration, and matches the name, which runs to
     * the end of the file, without any unescaping. */
    snprintf(cmd, sizeof cmd, "%s", j->command ? j->command : "");
    for (ci = 0; cmd[ci]; ci++)
        if (cmd[ci] == '\n' || cmd[ci] == '\r')
            cmd[ci] = ' ';
    len = asprintf(&buf, "%ld %llu\ncommand=%s\nname=%s", (long) getpid(),
                   vqm_proc_starttime((long) getpid()), cmd,
                   name ? name : "");
    if (len < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (vqm_pwrite_full(fd, buf, (size_t) len, 0, path, err) < 0
        || vqm_sync(fd, 0, path, err) < 0) {
        unlinkat(afd, uuid, 0);
        return -1;
    }
    if (fsync(afd) < 0) {
        vqm_error_set_errno(err, errno, "cannot sync '%s'", apath);
        unlinkat(afd, uuid, 0);
        return -1;
    }
    return 0;
}

void
vqm_journal_sweep_active(struct vqm_journal *j)
{
    CLEANUP_CLOSEDIR DIR *dp = NULL;
    struct dirent *e;
    CLEANUP_CLOSE int afd = -1;

    if (j->read_only)
        return;
    afd = open_dir_at(j->dir_fd, j->dir, "active", false, NULL);
    if (afd < 0)
        return;
    if (!(dp = fdopendir(afd)))
        return;
    afd = -1;                       /* dp's now */
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || vqm_journal_migrating(j, e->d_name))
            continue;
        vqm_journal_set_active(j, e->d_name, NULL, false, NULL);
    }
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
    return vqm_journal_set_active(j, uuid, NULL, false, err);
}
