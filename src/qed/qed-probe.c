/* virt-qed-migrate: image format probing from the first bytes of a file.
 *
 * Only magic numbers are compared; a file that matches none is "raw".
 * Used for the top image when no format is given and for backing files
 * whose format is not recorded.  Never reads anything itself.
 */
#include <config.h>

#include <string.h>

#include "qed.h"
#include "vqm-endian.h"

static int
has(const void *buf, size_t len, size_t off, const void *magic, size_t n)
{
    return len >= off + n && memcmp((const char *) buf + off, magic, n) == 0;
}

const char *
vqm_probe_format(const void *buf, size_t len)
{
    const unsigned char *b = buf;

    if (has(buf, len, 0, "QFI\xfb", 4)) {
        if (len >= 8 && vqm_ld_be32(b + 4) == 1)
            return "qcow";
        return "qcow2";
    }
    if (has(buf, len, 0, "QED\0", 4))
        return "qed";
    if (has(buf, len, 0, "KDMV", 4) || has(buf, len, 0, "COWD", 4) ||
        has(buf, len, 0, "# Disk DescriptorFile", 21))
        return "vmdk";
    if (len >= 68 && vqm_ld_le32(b + 64) == 0xbeda107f)
        return "vdi";
    if (has(buf, len, 0, "conectix", 8))
        return "vpc";
    if (has(buf, len, 0, "vhdxfile", 8))
        return "vhdx";
    if (has(buf, len, 0, "LUKS\xba\xbe", 6))
        return "luks";
    if (has(buf, len, 0, "WithoutFreeSpace", 16) ||
        has(buf, len, 0, "WithouFreSpacExt", 16))
        return "parallels";
    if (has(buf, len, 0, "XenIxFs", 7) || has(buf, len, 0, "cloop", 5))
        return "cloop";
    if (has(buf, len, 0, "Bochs Virtual HD Image", 22))
        return "bochs";
    return "raw";
}
