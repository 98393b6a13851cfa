/* virt-qed-migrate-hook: the libvirt qemu hook helper.
 *
 * The installed hook script (hooks/qemu-hook.in) runs it at every
 * domain start, stop, restore and incoming migration, so it is small:
 * it links neither libvirt nor the conversion code and starts in a few
 * milliseconds.  It takes the hook options of virt-qed-migrate
 * (--hook=OP[:SUBOP], --state-dir, --verbose) and runs src/hook; the
 * convert-on-stop worker it starts is the full program.
 */
#include <config.h>

#include <getopt.h>
#include <stdio.h>

#include "hook/hook.h"
#include "vqm-debug.h"

static const char program[] = "virt-qed-migrate-hook";

static void
usage(FILE *fp)
{
    fprintf(fp,
"Usage: %s --hook=OP[:SUBOP] [--state-dir DIR] [-v] < DOMAIN.xml\n"
"\n"
"The libvirt qemu hook of virt-qed-migrate, run by the installed hook\n"
"script.  See virt-qed-migrate-hook(8).\n", program);
}

/* A usage error: MSG (getopt said it already when NULL), exit 2. */
static int
usage_error(const char *msg, const char *arg)
{
    if (msg)
        fprintf(stderr, "%s: %s%s\n", program, msg, arg ? arg : "");
    fprintf(stderr, "Try '%s --help' for more information.\n", program);
    return 2;
}

int
main(int argc, char *argv[])
{
    static const struct option opts[] = {
        { "hook", required_argument, NULL, 'H' },
        { "state-dir", required_argument, NULL, 'S' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *op = NULL, *state_dir = NULL;
    int c;

    vqm_debug_init();
    while ((c = getopt_long(argc, argv, "vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'H': op = optarg; break;
        case 'S': state_dir = optarg; break;
        case 'v': vqm_debug_enabled = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("%s %s\n", program, PACKAGE_VERSION); return 0;
        default: return usage_error(NULL, NULL);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument: ", argv[optind]);
    if (!op)
        return usage_error("--hook=OP[:SUBOP] is required", NULL);
    return vqm_hook_run(op, state_dir);
}
