/* virt-qed-migrate: whole-buffer I/O with clear errors, and the test
 * fault-injection hook.
 *
 * Every write or sync the converters make goes through these functions,
 * so that short reads/writes, EINTR, EIO and ENOSPC are handled in one
 * place.
 *
 * Fault injection (tests only; inert unless the variable is set):
 *   VQM_FAULT="OP:N:ACTION"  OP is write, sync or any; on the N-th such
 *                            call (from 1) ACTION happens instead:
 *                            kill (SIGKILL to ourself), enospc or eio;
 *                            or stop (SIGSTOP to ourself, then the call
 *                            goes on once continued).
 *   VQM_FAULT_TRACE=FILE     append one line "write|sync PATH OFFSET LEN"
 *                            per call, so a test can count them.
 */
#ifndef VQM_IO_H
#define VQM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vqm-error.h"

/* Read exactly len bytes at off.  A read past end of file is an error
 * (VQM_ERR_CORRUPT, "unexpected end of file") unless short_ok is set, in
 * which case the missing tail is zero-filled.  path is for messages.
 * Returns 0 or -1.
 */
int vqm_pread_full(int fd, void *buf, size_t len, uint64_t off,
                   int short_ok, const char *path, struct vqm_error *err);

/* Write exactly len bytes at off, retrying short writes.  0 or -1. */
int vqm_pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
                    const char *path, struct vqm_error *err);

/* fdatasync (fsync if full is set).  0 or -1. */
int vqm_sync(int fd, int full, const char *path, struct vqm_error *err);

/* fsync the directory holding path (after a rename or create).  0 or -1. */
int vqm_sync_dir(const char *path, struct vqm_error *err);

/* Create a new file of an unpredictable name, prefix followed by 12
 * random characters, in the directory dfd: O_CREAT | O_EXCL |
 * O_NOFOLLOW, mode 0600, so that nothing planted at that name (a link
 * to a victim) is ever opened.  The name goes to name[namelen].
 * Returns the descriptor (write only, close-on-exec) or -1.
 */
int vqm_create_temp(int dfd, const char *prefix, char *name, size_t namelen,
                    struct vqm_error *err);

/* Fault-injection hook, called by the functions above and by any other
 * write-like operation (ftruncate, fallocate, rename, copy_file_range)
 * before it happens.  op is "write" or "sync".  Returns 0 to go on, or
 * -1 with errno set to the injected error.  Only a build configured with
 * --enable-fault-injection (the test suite's) reads VQM_FAULT and
 * VQM_FAULT_TRACE; any other build always returns 0.
 */
int vqm_fault_point(const char *op, const char *path, uint64_t off,
                    uint64_t len);

/* The start time of process pid (field 22 of /proc/PID/stat, clock
 * ticks since boot), or 0 when there is no such process.  With a pid
 * it tells a live process from a later one that reused the pid.
 */
unsigned long long vqm_proc_starttime(long pid);

/* Which processes other than this one have these files open for
 * writing?  Scans /proc/PID/fd and the flags in /proc/PID/fdinfo, as
 * fuser does, once for all of them (a host's worth of images costs one
 * scan, not one each): fills pid (the first such process, 0 when none)
 * and comm (its command name) of every entry.  0, or -1 when /proc
 * cannot be read.
 */
struct vqm_writer_query {
    dev_t dev;
    ino_t ino;
    long pid;
    char comm[32];
};
int vqm_find_writers(struct vqm_writer_query *q, size_t n);

/* SIGINT/SIGTERM: vqm_interrupt_install makes both print the message
 * last set with vqm_interrupt_note (with write(2), async-signal-safe)
 * and then end the process as the signal would.  The journal makes
 * that safe at any point; the note says what was interrupted and the
 * command that finishes it.
 */
void vqm_interrupt_install(void);
void vqm_interrupt_note(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
