/* virt-qed-migrate: debug messages, on stderr only with -v or VQM_DEBUG=1. */
#ifndef VQM_DEBUG_H
#define VQM_DEBUG_H

#include <stdbool.h>

extern bool vqm_debug_enabled;

/* Read VQM_DEBUG from the environment (called once by main). */
void vqm_debug_init(void);

void vqm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
