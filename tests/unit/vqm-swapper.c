/* vqm-swapper A B SECONDS: exchange the directory entries A and B with
 * renameat2(RENAME_EXCHANGE) again and again for SECONDS seconds (a
 * tenant racing the tool: a directory and a symlink trade places), then
 * print the number of exchanges.  A pause of 50 us after each exchange
 * leaves the CPU to the tool (each state lasts about that long, far
 * shorter than one run).  Exit 0, or 1 when an exchange fails.
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int
main(int argc, char **argv)
{
    struct timespec t0, t, pause = { .tv_sec = 0, .tv_nsec = 50000 };
    unsigned long n = 0;
    double secs;

    if (argc != 4) {
        fprintf(stderr, "usage: vqm-swapper A B SECONDS\n");
        return 1;
    }
    secs = atof(argv[3]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2],
                      RENAME_EXCHANGE) < 0) {
            perror("vqm-swapper: renameat2");
            return 1;
        }
        n++;
        nanosleep(&pause, NULL);
        if (n % 64 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((double) (t.tv_sec - t0.tv_sec) +
                (double) (t.tv_nsec - t0.tv_nsec) / 1e9 >= secs)
                break;
        }
    }
    printf("%lu\n", n);
    return 0;
}
