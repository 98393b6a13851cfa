/* virt-qed-migrate: the one way to open an image, a backing file or a
 * target directory by name.
 *
 * The tool runs as root against files and directories other people own
 * and may change at any instant.  vqm_open resolves a name without
 * following symlinks planted by others (openat2 with RESOLVE_NO_SYMLINKS
 * and RESOLVE_NO_MAGICLINKS where the kernel has it, otherwise, and
 * whenever a symlink or a per-directory check is involved, a walk one
 * component at a time with O_PATH|O_NOFOLLOW), looks at what it found
 * through an O_PATH descriptor (so a FIFO, a socket or a character
 * device is never opened), and only then opens it for I/O through that
 * same descriptor.  Every check is made on descriptors, never again on
 * the name.
 *
 * Symlinks: one met while resolving is followed only when root owns it,
 * or, when the file is opened on behalf of a reader (a backing file, for
 * the owner of the image naming it), when that reader owns it.  Its
 * target is then resolved under the same rules.  Any other symlink
 * refuses the name (VQM_ERR_REFUSED).
 *
 * Readers: with a reader that is not root, every directory a name is
 * looked up in must be searchable by the reader, and the file opened
 * must be readable (and writable for VQM_OPEN_RDWR) by it, judged by
 * owner, group (the reader's primary and supplementary groups) and mode
 * bits, as the kernel would for that user.  Depends on libc only.
 */
#ifndef VQM_OPEN_H
#define VQM_OPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "vqm-error.h"

/* Whose permissions a name is resolved and a file opened with. */
struct vqm_reader {
    uid_t uid;
    gid_t *groups;          /* primary and supplementary, malloc'ed */
    size_t n_groups;
};

/* Fill r for uid: its groups come from the user database (getpwuid,
 * getgrouplist); a uid without an entry has no groups.  0 or -1
 * (out of memory).  Free with vqm_reader_free.
 */
int vqm_reader_init(struct vqm_reader *r, uid_t uid, struct vqm_error *err);
void vqm_reader_free(struct vqm_reader *r);

/* Could r (NULL: root) have the access want (a mask of R_OK, W_OK and
 * X_OK) to a file with the owner, group and mode of st?  POSIX ACLs are
 * not consulted.
 */
bool vqm_reader_may(const struct vqm_reader *r, const struct stat *st,
                    int want);

enum {
    VQM_OPEN_RDWR = 1,      /* open for reading and writing */
    VQM_OPEN_DIR = 2,       /* want a directory (O_RDONLY|O_DIRECTORY) */
};

/* An opened file. */
struct vqm_file {
    int fd;                 /* O_CLOEXEC, blocking; -1 when closed */
    char *real;             /* absolute name as resolved: no symlink, no
                               "." or ".." (malloc'ed) */
    struct stat st;         /* fstat of fd */
};

/* Open name (relative names start at the current directory) for reader
 * (NULL: root, that is no permission checks and only root's symlinks
 * followed).  Without VQM_OPEN_DIR only a regular file or a block device
 * is opened; anything else is refused with one line naming it and its
 * type, and is never opened for I/O.  The descriptor is opened with
 * O_NONBLOCK|O_NOCTTY|O_CLOEXEC (O_NONBLOCK is cleared once the type is
 * known).  Errors name 'name'.  Returns 0 (f filled) or -1: VQM_ERR_REFUSED
 * for a symlink, a type or a permission the rules above refuse,
 * VQM_ERR_NOTFOUND, VQM_ERR_IO for other system errors.
 */
int vqm_open(const char *name, unsigned flags, const struct vqm_reader *reader,
             struct vqm_file *f, struct vqm_error *err);

/* Like vqm_open, and before anything is opened for I/O (after the
 * name was resolved and before the type and reader checks), call
 * vet(opaque, real, st, err) with the resolved name and the stat of the
 * object found; when it returns -1 (and fills err) nothing is opened and
 * vqm_open_vetted returns -1 with that error.
 */
typedef int (*vqm_open_vet_fn)(void *opaque, const char *real,
                               const struct stat *st, struct vqm_error *err);
int vqm_open_vetted(const char *name, unsigned flags,
                    const struct vqm_reader *reader, vqm_open_vet_fn vet,
                    void *opaque, struct vqm_file *f, struct vqm_error *err);

/* Close f->fd and free f->real (f may be closed already). */
void vqm_file_close(struct vqm_file *f);

/* Drop ".", ".." and repeated slashes of the absolute name path, in
 * place, without looking at the file system (the kernel's result for a
 * name that has no symlink in it).
 */
void vqm_path_normalize(char *path);

/* "regular file", "directory", "FIFO", "socket", "character device",
 * "block device", "symbolic link" or "file of unknown type".
 */
const char *vqm_file_type_name(mode_t mode);

#endif
