/* virt-qed-migrate: snapshots, checkpoints and saved state.
 *
 * libvirt keeps copies of a domain's disks outside its definition:
 * snapshot metadata embeds the <domain> as it was (naming the QED files
 * and type='qed') and describes the overlays in <disks>; a managed-save
 * image and the memory file of an external snapshot embed the definition
 * QEMU will be restored with.  After the images are converted these are
 * rewritten to name the qcow2 files: snapshots are redefined parents
 * first (VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE, keeping the current one
 * current), managed-save and memory files get their embedded definition
 * replaced.  Overlays named only by snapshot metadata get their backing
 * reference rewritten like the ones in the image graph.
 *
 * Checkpoints cannot be carried over (QED has no bitmaps, and libvirt
 * would not find them in a converted image): a domain that has any is
 * refused before anything changes.
 *
 * Journal records (virt-internal.h): "snapshot UUID NAME",
 * "managedsave UUID NAME", "saveimage PATH", "rebase IMAGE NAME FORMAT".
 */
#ifndef VQM_VIRT_SNAPSHOT_H
#define VQM_VIRT_SNAPSHOT_H

#include <stddef.h>

#include "virt.h"

/* Planning, after the offline decisions: domains that use an image to be
 * converted and have checkpoints are skipped (with their images); the
 * number of snapshots and save images that will be rewritten is noted.
 * Never fails.
 */
void vqm_snapshot_plan(struct vqm_virt_run *run);

/* After the images were converted and the definitions rewritten: fix the
 * snapshot metadata, external snapshot memory files and the managed-save
 * image of domain d (any domain, in scope or not: whatever names a
 * converted image).  Failures go into d's outcome and reason.  Returns 0,
 * or -1 when the journal cannot be written.
 */
int vqm_snapshot_execute(struct vqm_virt_run *run, struct vqm_vdomain *d,
                         struct vqm_error *err);

#endif
