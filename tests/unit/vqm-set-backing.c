/* Test helper for the conversion engine's small entry points.
 *
 *   vqm-set-backing IMG NAME FORMAT   vqm_qcow2_set_backing (NAME "" = none)
 *   vqm-set-backing --probe IMG       vqm_lock_probe: prints busy or free
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
