/* virt-qed-migrate: live conversion of running domains (--live).
 *
 * A QED disk of a running domain is copied to a new qcow2 file beside it
 * with libvirt's block copy while the guest runs (shallow when the disk
 * has a backing file to keep), then QEMU pivots to the copy.  The
 * persistent definition is then rewritten by virt-migrate.c from the
 * definition read before the copy, so a type='volume' disk stays a volume
 * disk (libvirt 9.0 turns it into type='file' at the pivot).  The QED
 * file is kept (removed only with --remove-source once the copy is
 * checked).
 *
 * If the copy fails, makes no progress for COPY_STALL_TIMEOUT seconds or
 * is cancelled (SIGINT/SIGTERM during the copy, or the job aborted by
 * someone else), the job is aborted without a pivot:
 * the domain keeps running on its QED disk and the partial copy is
 * removed.
 *
 * Journal records (virt-internal.h): "blockcopy UUID TARGET DEST", begun
 * before the copy starts, done after the pivot, failed after an abort.
 */
#ifndef VQM_VIRT_LIVE_H
#define VQM_VIRT_LIVE_H

#include <stdbool.h>

#include "virt.h"

/* Planning, after the offline decisions: every running domain in scope
 * marked live (struct vqm_vdomain.live) gets its QED disks checked and
 * their top images marked live (struct vqm_vimage.live) with the name of
 * the copy; disks that cannot be copied live are blocked with a reason
 * (QED below the top of the chain, block devices, images shared with
 * another domain, the copy target exists, another block job).  Domains
 * in scope that are not running get a note that they are converted
 * offline.  Nothing is executed: not the domain's <emulator>, not with
 * --dry-run, not ever.  Never fails.
 */
void vqm_live_plan(struct vqm_virt_run *run);

/* Copy, pivot and check every live image of domain d.  Outcomes go into
 * the images (done, or failed with a reason).  Returns 0, or -1 with err
 * set when the run must stop: the journal cannot be written, or the copy
 * was cancelled by a signal (after the cleanup).
 */
int vqm_live_execute(struct vqm_virt_run *run, struct vqm_vdomain *d,
                     struct vqm_error *err);

#endif
