/* virt-qed-migrate: cleanup helpers (see cleanup.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"

void
vqm_cleanup_free(void *ptr)
{
    free(*(void **) ptr);
}

void
vqm_cleanup_fclose(void *ptr)
{
    FILE *fp = *(FILE **) ptr;

    if (fp)
        fclose(fp);
}

void
vqm_cleanup_close(void *ptr)
{
    int fd = *(int *) ptr;
    int saved = errno;

    if (fd >= 0)
        close(fd);
    errno = saved;
}
