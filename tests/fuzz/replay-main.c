/* virt-qed-migrate: replay driver for the fuzz targets without
 * libFuzzer.  Each argument is a file or a directory of files; each
 * file is passed once to LLVMFuzzerTestOneInput.  Built with the normal
 * compiler by `make check`, so that the fuzz target code runs (under
 * the sanitizers too) in every build.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t len = 0, cap = 0, n;

    if (!fp) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *p;
            cap = cap ? cap * 2 : 65536;
            p = realloc(data, cap);
            if (!p) {
                free(data);
                fclose(fp);
                return -1;
            }
            data = p;
        }
        n = fread(data + len, 1, cap - len, fp);
        if (n == 0)
            break;
        len += n;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

int
main(int argc, char *argv[])
{
    int i, count = 0;

    for (i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *dir = opendir(argv[i]);
            struct dirent *de;
            if (!dir)
                return 1;
            while ((de = readdir(dir)) != NULL) {
                char *p;
                if (de->d_name[0] == '.')
                    continue;
                if (asprintf(&p, "%s/%s", argv[i], de->d_name) < 0)
                    return 1;
                if (replay_file(p) < 0) {
                    free(p);
                    closedir(dir);
                    return 1;
                }
                free(p);
                count++;
            }
            closedir(dir);
        }
        else {
            if (replay_file(argv[i]) < 0)
                return 1;
            count++;
        }
    }
    printf("replayed %d inputs\n", count);
    return 0;
}
