/* Test helper for the conversion engine's small entry points.
 *
 *   vqm-set-backing IMG NAME FORMAT   vqm_qcow2_set_backing (NAME "" = none)
 *   vqm-set-backing --probe IMG       vqm_lock_probe: prints busy or free
 *   vqm-set-backing --convert IMG NAME FORMAT [OUT]
 *                                     vqm_convert with new_backing_name and
 *                                     new_backing_format (in place, or by
 *                                     copy into OUT)
 *
 * Exit 0 on success, 1 with one error line.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "convert/convert.h"

int
main(int argc, char **argv)
{
    struct vqm_error err = { 0 };
    int r;

    if (argc == 3 && strcmp(argv[1], "--probe") == 0) {
        r = vqm_lock_probe(argv[2], &err);
        if (r < 0) {
            fprintf(stderr, "vqm-set-backing: %s\n", err.msg);
            return 1;
        }
        printf("%s\n", r ? "busy" : "free");
        return 0;
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "--convert") == 0) {
        struct vqm_convert_opts o;
        struct vqm_convert_result res;

        memset(&o, 0, sizeof o);
        o.mode = argc == 6 ? VQM_CONVERT_COPY : VQM_CONVERT_IN_PLACE;
        o.output = argc == 6 ? argv[5] : NULL;
        o.new_backing_name = argv[3];
        o.new_backing_format = argv[4];
        o.verify = true;
        if (vqm_convert(argv[2], &o, &res, &err) < 0) {
            fprintf(stderr, "vqm-set-backing: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: vqm-set-backing IMG NAME FORMAT | "
                "--probe IMG\n");
        return 2;
    }
    if (vqm_qcow2_set_backing(argv[1], *argv[2] ? argv[2] : NULL,
                              *argv[3] ? argv[3] : NULL, &err) < 0) {
        fprintf(stderr, "vqm-set-backing: %s\n", err.msg);
        return 1;
    }
    return 0;
}
