/* virt-qed-migrate: placeholder, replaced by the real sub-command. */
#include <config.h>

#include "options.h"

int
vqm_cmd_hook(const struct vqm_opts *o)
{
    vqm_report_error("this mode is not implemented yet");
    return VQM_EXIT_FAILED;
}
