/* virt-qed-migrate: unaligned little- and big-endian loads and stores.
 * QED is little-endian on disk, qcow2 big-endian.
 */
#ifndef VQM_ENDIAN_H
#define VQM_ENDIAN_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t vqm_ld_be16(const void *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t vqm_ld_le32(const void *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t vqm_ld_le64(const void *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline uint32_t vqm_ld_be32(const void *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t vqm_ld_be64(const void *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline void vqm_st_be16(void *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void vqm_st_be32(void *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void vqm_st_be64(void *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static inline void vqm_st_le32(void *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void vqm_st_le64(void *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

#endif
