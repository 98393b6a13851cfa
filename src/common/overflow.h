/* virt-qed-migrate: checked arithmetic.  Each returns true on overflow. */
#ifndef VQM_OVERFLOW_H
#define VQM_OVERFLOW_H

#include <stdbool.h>
#include <stdint.h>

#define vqm_add_overflow(a, b, r) __builtin_add_overflow((a), (b), (r))
#define vqm_mul_overflow(a, b, r) __builtin_mul_overflow((a), (b), (r))

static inline bool
vqm_is_power_of_2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* Round up to a multiple of the power of two a (no overflow check). */
static inline uint64_t
vqm_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static inline uint64_t
vqm_div_round_up(uint64_t v, uint64_t d)
{
    return v / d + (v % d != 0);
}

static inline unsigned
vqm_log2(uint64_t v)
{
    return 63u - (unsigned) __builtin_clzll(v);
}

#endif
