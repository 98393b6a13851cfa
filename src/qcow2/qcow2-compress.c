/* virt-qed-migrate: compressed qcow2 clusters.
 *
 * zlib: raw deflate with a 4 KiB window (windowBits -12), what QEMU
 * writes and inflates.  zstd: one frame per cluster (compression type 1).
 * A cluster that does not shrink below cs - 1 bytes is stored normally,
 * as QEMU does.
 */
#include <config.h>

#include <string.h>

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "qcow2-writer.h"

long
qcow2w_compress_cluster(enum qcow2w_compress alg, const void *in,
                        size_t inlen, void *out, size_t outlen,
                        struct vqm_error *err)
{
    switch (alg) {
    case QCOW2W_COMPRESS_ZLIB: {
#ifdef HAVE_ZLIB
        z_stream z;
        int r;
        long n;

        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return vqm_error_set(err, VQM_ERR_INTERNAL,
                                 "zlib initialisation failed");
        z.next_in = (Bytef *) in;
        z.avail_in = (uInt) inlen;
        z.next_out = out;
        z.avail_out = (uInt) outlen;
        r = deflate(&z, Z_FINISH);
        n = (long) (outlen - z.avail_out);
        deflateEnd(&z);
        if (r == Z_STREAM_END)
            return n;
        if (r == Z_OK || r == Z_BUF_ERROR)
            return 0;
        return vqm_error_set(err, VQM_ERR_INTERNAL, "zlib compression failed");
#else
        break;
#endif
    }
    case QCOW2W_COMPRESS_ZSTD: {
#ifdef HAVE_ZSTD
        size_t r = ZSTD_compress(out, outlen, in, inlen, 3);

        /* The output buffer is smaller than the input: an error here
         * means it does not shrink; store the cluster as it is.
         */
        if (ZSTD_isError(r))
            return 0;
        return (long) r;
#else
        break;
#endif
    }
    case QCOW2W_COMPRESS_NONE:
        return 0;
    }
    return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                         "compression algorithm not available");
}
