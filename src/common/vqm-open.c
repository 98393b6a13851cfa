/* virt-qed-migrate: open images, backing files and target directories
 * by name, safely (see vqm-open.h for the rules).
 *
 * Resolution gives an O_PATH descriptor of the object named: through one
 * openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) call when root
 * resolves a name without symlinks, else by a walk from "/" one
 * component at a time (openat with O_PATH|O_NOFOLLOW), which applies the
 * symlink rule and the reader's search permission on each directory.
 * The type is then read from that descriptor, and only a regular file, a
 * block device (or, when asked for, a directory) is opened for I/O, by
 * reopening the O_PATH descriptor itself through /proc/self/fd: the file
 * checked is the file opened.  Invariant: nothing but an O_PATH
 * descriptor is ever made for an object before its type is known.
 *
 * VQM_OPEN_WALK=1 in the environment skips openat2 (tests use it to run
 * the walk where the kernel has openat2).
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vqm-open.h"

#define MAX_LINKS 40            /* as the kernel's MAXSYMLINKS */

int
vqm_reader_init(struct vqm_reader *r, uid_t uid, struct vqm_error *err)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int n = 32;

    r->uid = uid;
    r->groups = NULL;
    r->n_groups = 0;
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res)
        return 0;                       /* no entry: no groups */
    for (;;) {
        gid_t *g = realloc(r->groups, (size_t) n * sizeof *g);
        int want = n;

        if (!g) {
            vqm_reader_free(r);
            return vqm_error_set_errno(err, ENOMEM, "out of memory");
        }
        r->groups = g;
        if (getgrouplist(pw.pw_name, pw.pw_gid, g, &want) >= 0) {
            r->n_groups = (size_t) want;
            return 0;
        }
        if (want <= n || want > 65536) {
            /* Cannot tell: keep the primary group only. */
            g[0] = pw.pw_gid;
            r->n_groups = 1;
            return 0;
        }
        n = want;
    }
}

void
vqm_reader_free(struct vqm_reader *r)
{
    free(r->groups);
    r->groups = NULL;
    r->n_groups = 0;
}

bool
vqm_reader_may(const struct vqm_reader *r, const struct stat *st, int want)
{
    unsigned bits = 0;
    mode_t m = st->st_mode;
    size_t i;
    bool in_group = false;

    if (!r || r->uid == 0)
        return true;
    if (want & R_OK)
        bits |= 4;
    if (want & W_OK)
        bits |= 2;
    if (want & X_OK)
        bits |= 1;
    /* The kernel's order: owner class, else group class, else others. */
    if (st->st_uid == r->uid)
        return (((m >> 6) & 7) & bits) == bits;
    for (i = 0; i < r->n_groups; i++)
        if (r->groups[i] == st->st_gid)
            in_group = true;
    if (in_group)
        return (((m >> 3) & 7) & bits) == bits;
    return ((m & 7) & bits) == bits;
}

const char *
vqm_file_type_name(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFIFO: return "FIFO";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    case S_IFLNK: return "symbolic link";
    default: return "file of unknown type";
    }
}

void
vqm_file_close(struct vqm_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    free(f->real);
    f->real = NULL;
}

/* name as an absolute path (malloc'ed), or NULL with errno. */
static char *
absolute(const char *name)
{
    char cwd[PATH_MAX], *s = NULL;

    if (name[0] == '/')
        return strdup(name);
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    if (asprintf(&s, "%s/%s", cwd, name) < 0)
        return NULL;
    return s;
}

/* Drop ".", ".." and repeated slashes (in place); for a name that the
 * kernel resolved without meeting any symlink this is the real name. */
void
vqm_path_normalize(char *path)
{
    char *out = path, *p = path;       /* out never passes p */

    while (*p) {
        char *e;
        size_t n;

        while (*p == '/')
            p++;
        if (!*p)
            break;
        e = strchrnul(p, '/');
        n = (size_t) (e - p);
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (out > path && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, p, n);
            out += n;
        }
        p = e;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

/* 1: resolved with openat2 (*pfd), 0: use the walk, -1: error (errno). */
static int
resolve_openat2(const char *abs, int *pfd)
{
#ifdef SYS_openat2
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    const char *force = getenv("VQM_OPEN_WALK");
    long fd;

    if (force && strcmp(force, "1") == 0)
        return 0;
    fd = syscall(SYS_openat2, AT_FDCWD, abs, &how, sizeof how);
    if (fd >= 0) {
        *pfd = (int) fd;
        return 1;
    }
    /* ELOOP: a symlink on the way, which the walk judges; the others:
     * no openat2 here (old kernel, seccomp filter). */
    if (errno == ELOOP || errno == ENOSYS || errno == EPERM ||
        errno == EINVAL || errno == E2BIG || errno == EXDEV)
        return 0;
    return -1;
#else
    (void) abs;
    (void) pfd;
    return 0;
#endif
}

/* Walk abs from "/" (see the file comment).  On success *pfd is an O_PATH
 * descriptor of the object and *realp its resolved name. */
static int
walk(const char *abs, const char *name, const struct vqm_reader *r,
     int *pfd, char **realp, struct vqm_error *err)
{
    char todo[2 * PATH_MAX], next[2 * PATH_MAX], real[PATH_MAX];
    char target[PATH_MAX], comp[NAME_MAX + 1];
    const char *p;
    size_t rl = 1;
    unsigned links = 0;
    int cur, nfd = -1, ret = -1;
    struct stat st;

    if (strlen(abs) >= sizeof todo)
        return vqm_error_set_errno(err, ENAMETOOLONG, "cannot open '%s'",
                                   name);
    strcpy(todo, abs);
    strcpy(real, "/");
    cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return vqm_error_set_errno(err, errno, "cannot open '/'");
    p = todo;
    for (;;) {
        const char *e;
        size_t n;
        bool last, trailing;

        while (*p == '/')
            p++;
        if (!*p) {                      /* the name is a directory */
            *pfd = cur;
            cur = -1;
            break;
        }
        e = strchrnul(p, '/');
        n = (size_t) (e - p);
        trailing = *e == '/';
        last = e[strspn(e, "/")] == '\0';
        if (n > NAME_MAX) {
            vqm_error_set_errno(err, ENAMETOOLONG, "cannot open '%s'", name);
            goto out;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        p = e;
        if (strcmp(comp, ".") == 0)
            continue;
        /* A lookup in cur: the reader must be able to search it. */
        if (r && r->uid != 0) {
            if (fstat(cur, &st) < 0) {
                vqm_error_set_errno(err, errno, "cannot open '%s'", name);
                goto out;
            }
            if (!vqm_reader_may(r, &st, X_OK)) {
                vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is refused: uid %u "
                              "cannot search directory '%s' (owner %u, "
                              "group %u, mode %04o)", name, (unsigned) r->uid,
                              real, (unsigned) st.st_uid,
                              (unsigned) st.st_gid,
                              (unsigned) (st.st_mode & 07777));
                goto out;
            }
        }
        if (strcmp(comp, "..") == 0) {
            char *slash;

            nfd = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (nfd < 0) {
                vqm_error_set_errno(err, errno, "cannot open '%s'", name);
                goto out;
            }
            close(cur);
            cur = nfd;
            nfd = -1;
            slash = strrchr(real, '/');
            rl = slash && slash > real ? (size_t) (slash - real) : 1;
            real[rl] = '\0';
            continue;
        }
        nfd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 || fstat(nfd, &st) < 0) {
            vqm_error_set_errno(err, errno, "cannot open '%s'", name);
            goto out;
        }
        if (S_ISLNK(st.st_mode)) {
            ssize_t len;
            int m;

            if (st.st_uid != 0 && !(r && st.st_uid == r->uid)) {
                vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is refused: the "
                              "symlink '%s%s%s' belongs to uid %u (only "
                              "root's symlinks%s are followed)", name, real,
                              rl > 1 ? "/" : "", comp, (unsigned) st.st_uid,
                              r && r->uid != 0 ?
                              " and the image owner's" : "");
                goto out;
            }
            if (++links > MAX_LINKS) {
                vqm_error_set_errno(err, ELOOP, "cannot open '%s'", name);
                goto out;
            }
            len = readlinkat(nfd, "", target, sizeof target);
            if (len <= 0 || (size_t) len >= sizeof target) {
                vqm_error_set_errno(err, len < 0 ? errno :
                                    len == 0 ? ENOENT : ENAMETOOLONG,
                                    "cannot read symlink '%s%s%s'", real,
                                    rl > 1 ? "/" : "", comp);
                goto out;
            }
            target[len] = '\0';
            close(nfd);
            nfd = -1;
            m = snprintf(next, sizeof next, "%s%s", target, p);
            if (m < 0 || (size_t) m >= sizeof next) {
                vqm_error_set_errno(err, ENAMETOOLONG, "cannot open '%s'",
                                    name);
                goto out;
            }
            strcpy(todo, next);
            p = todo;
            if (target[0] == '/') {
                close(cur);
                cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (cur < 0) {
                    vqm_error_set_errno(err, errno, "cannot open '/'");
                    goto out;
                }
                strcpy(real, "/");
                rl = 1;
            }
            continue;
        }
        if ((!last || trailing) && !S_ISDIR(st.st_mode)) {
            vqm_error_set_errno(err, ENOTDIR, "cannot open '%s'", name);
            goto out;
        }
        if (rl + 1 + n >= sizeof real) {
            vqm_error_set_errno(err, ENAMETOOLONG, "cannot open '%s'", name);
            goto out;
        }
        if (rl > 1)
            real[rl++] = '/';
        memcpy(real + rl, comp, n + 1);
        rl += n;
        close(cur);
        cur = nfd;
        nfd = -1;
        if (last) {
            *pfd = cur;
            cur = -1;
            break;
        }
    }
    if (!(*realp = strdup(real))) {
        close(*pfd);
        vqm_error_set_errno(err, ENOMEM, "out of memory");
        goto out;
    }
    ret = 0;
 out:
    if (cur >= 0)
        close(cur);
    if (nfd >= 0)
        close(nfd);
    return ret;
}

int
vqm_open(const char *name, unsigned flags, const struct vqm_reader *r,
         struct vqm_file *f, struct vqm_error *err)
{
    return vqm_open_vetted(name, flags, r, NULL, NULL, f, err);
}

int
vqm_open_vetted(const char *name, unsigned flags, const struct vqm_reader *r,
                vqm_open_vet_fn vet, void *opaque, struct vqm_file *f,
                struct vqm_error *err)
{
    char *abs = NULL, proc[64];
    int pfd = -1, acc, fl, ret = -1;
    struct stat pst;

    f->fd = -1;
    f->real = NULL;
    if (!*name)
        return vqm_error_set_errno(err, ENOENT, "cannot open ''");
    if (!(abs = absolute(name)))
        return vqm_error_set_errno(err, errno, "cannot open '%s'", name);
    switch (r && r->uid != 0 ? 0 : resolve_openat2(abs, &pfd)) {
    case 1:
        vqm_path_normalize(abs);
        f->real = vqm_steal(&abs);
        break;
    case 0:
        if (walk(abs, name, r, &pfd, &f->real, err) < 0)
            goto out;
        break;
    default:
        vqm_error_set_errno(err, errno, "cannot open '%s'", name);
        goto out;
    }
    if (fstat(pfd, &pst) < 0) {
        vqm_error_set_errno(err, errno, "cannot stat '%s'", name);
        goto out;
    }
    if (vet && vet(opaque, f->real, &pst, err) < 0)
        goto out;
    if (flags & VQM_OPEN_DIR) {
        if (!S_ISDIR(pst.st_mode)) {
            vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is not a directory (it "
                          "is a %s)", name, vqm_file_type_name(pst.st_mode));
            goto out;
        }
        acc = O_RDONLY | O_DIRECTORY;
    } else {
        if (!S_ISREG(pst.st_mode) && !S_ISBLK(pst.st_mode)) {
            vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is not a regular file "
                          "or block device (it is a %s)", name,
                          vqm_file_type_name(pst.st_mode));
            goto out;
        }
        acc = flags & VQM_OPEN_RDWR ? O_RDWR : O_RDONLY;
    }
    if (!vqm_reader_may(r, &pst, flags & VQM_OPEN_DIR ? X_OK :
                        flags & VQM_OPEN_RDWR ? R_OK | W_OK : R_OK)) {
        vqm_error_set(err, VQM_ERR_REFUSED, "'%s' is refused: uid %u may not "
                      "%s '%s' (owner %u, group %u, mode %04o)", name,
                      (unsigned) r->uid,
                      flags & VQM_OPEN_RDWR ? "write" : "read", f->real,
                      (unsigned) pst.st_uid, (unsigned) pst.st_gid,
                      (unsigned) (pst.st_mode & 07777));
        goto out;
    }
    /* Open what was checked: the O_PATH descriptor itself. */
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
    f->fd = open(proc, acc | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f->fd < 0) {
        vqm_error_set_errno(err, errno, errno == ENOENT ?
                            "cannot open '%s' (is /proc mounted?)" :
                            "cannot open '%s'", name);
        goto out;
    }
    if (fstat(f->fd, &f->st) < 0) {
        vqm_error_set_errno(err, errno, "cannot stat '%s'", name);
        goto out;
    }
    if (f->st.st_dev != pst.st_dev || f->st.st_ino != pst.st_ino) {
        vqm_error_set(err, VQM_ERR_REFUSED, "'%s' changed while it was "
                      "opened", name);
        goto out;
    }
    fl = fcntl(f->fd, F_GETFL);
    if (fl < 0 || fcntl(f->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        vqm_error_set_errno(err, errno, "cannot open '%s'", name);
        goto out;
    }
    ret = 0;
 out:
    if (pfd >= 0)
        close(pfd);
    free(abs);
    if (ret < 0)
        vqm_file_close(f);
    return ret;
}
