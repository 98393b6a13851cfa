/* virt-qed-migrate: debug messages (see vqm-debug.h). */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqm-debug.h"

bool vqm_debug_enabled;

void
vqm_debug_init(void)
{
    const char *e = getenv("VQM_DEBUG");

    if (e && *e && strcmp(e, "0") != 0)
        vqm_debug_enabled = true;
}

void
vqm_debug(const char *fmt, ...)
{
    va_list ap;

    if (!vqm_debug_enabled)
        return;
    fputs("virt-qed-migrate: debug: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
