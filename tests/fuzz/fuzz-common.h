/* virt-qed-migrate: helpers shared by the text parsers' fuzz targets
 * (fuzz-domxml.c, fuzz-journal.c, fuzz-hook.c) and by fuzz-probe.c
 * (which only uses the scratch directory).
 *
 * Each target owns a scratch directory (made once, removed at exit)
 * holding a few files; the string "/vqmfuzz/" in an input stands for
 * that directory, so that seeds can name files that exist.  The file
 * "secret" there holds FUZZ_SECRET: a parser that returns it although
 * the input did not contain it has read a file named by the input (an
 * external entity): the target aborts.  The XML targets also abort on
 * any attempt of libxml2 to load a file (fuzz_forbid_loads).
 */
#ifndef VQM_FUZZ_COMMON_H
#define VQM_FUZZ_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_SECRET "VQMFUZZSECRET"
#define FUZZ_PLACEHOLDER "/vqmfuzz/"
/* Not every target uses every helper. */
#define FUZZ_UNUSED __attribute__((unused))

static char fuzz_dir[256];

FUZZ_UNUSED static int
fuzz_rm_one(const char *path, const struct stat *st, int flag,
            struct FTW *where)
{
    (void) st;
    (void) flag;
    (void) where;
    return remove(path) < 0 ? -1 : 0;
}

FUZZ_UNUSED static void
fuzz_cleanup(void)
{
    if (fuzz_dir[0]
        && nftw(fuzz_dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
        fprintf(stderr, "fuzz: cannot remove %s\n", fuzz_dir);
}

/* Write a file below the scratch directory; abort on failure (the
 * harness, not the code under test, is broken then). */
FUZZ_UNUSED static void
fuzz_write(const char *name, const void *data, size_t len)
{
    char path[512];
    int fd;

    snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t) len)
        || close(fd) < 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path,
                strerror(errno));
        abort();
    }
}

FUZZ_UNUSED static void
fuzz_mkdir(const char *name)
{
    char path[512];

    snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", path,
                strerror(errno));
        abort();
    }
}

/* Make the scratch directory once; returns its path. */
FUZZ_UNUSED static const char *
fuzz_scratch(void)
{
    const char *tmp;

    if (fuzz_dir[0])
        return fuzz_dir;
    tmp = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/vqm-fuzz.XXXXXX",
             tmp && *tmp && strlen(tmp) < 200 ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir)) {
        fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fuzz_dir,
                strerror(errno));
        abort();
    }
    atexit(fuzz_cleanup);
    fuzz_write("secret", FUZZ_SECRET "\n", sizeof FUZZ_SECRET);
    return fuzz_dir;
}

/* The input as a NUL-terminated string, "/vqmfuzz/" replaced by the
 * scratch directory.  *len receives the length (the input may hold NUL
 * bytes).  Never NULL (aborts when out of memory).
 */
FUZZ_UNUSED static char *
fuzz_expand(const uint8_t *data, size_t size, size_t *len)
{
    const char *dir = fuzz_scratch();
    size_t dl = strlen(dir), pl = strlen(FUZZ_PLACEHOLDER), n = 0, i;
    char *out;

    for (i = 0; i + pl <= size; i++)
        if (memcmp(data + i, FUZZ_PLACEHOLDER, pl) == 0)
            n++;
    out = malloc(size + n * (dl + 1) + 1);
    if (!out)
        abort();
    *len = 0;
    for (i = 0; i < size;) {
        if (i + pl <= size && memcmp(data + i, FUZZ_PLACEHOLDER, pl) == 0) {
            memcpy(out + *len, dir, dl);
            *len += dl;
            out[(*len)++] = '/';
            i += pl;
        } else {
            out[(*len)++] = (char) data[i++];
        }
    }
    out[*len] = '\0';
    return out;
}

/* Abort when s holds the secret although the input holds neither "VQM"
 * nor a character reference, from which text split by markup could put
 * it together (fuzz_forbid_loads is the exact test for XML). */
FUZZ_UNUSED static void
fuzz_check_secret(const char *input, size_t len, const char *s)
{
    if (s && strstr(s, FUZZ_SECRET) && !memmem(input, len, "VQM", 3)
        && !memmem(input, len, "&#", 2)) {
        fprintf(stderr, "fuzz: a file named by the input was read: '%s'\n",
                s);
        abort();
    }
}

#ifdef FUZZ_WITH_LIBXML
#include <libxml/parser.h>
#include <libxml/xmlIO.h>

FUZZ_UNUSED static int
fuzz_load_attempt(const char *uri)
{
    fprintf(stderr, "fuzz: the XML parser tried to load '%s'\n",
            uri ? uri : "(null)");
    abort();
}

FUZZ_UNUSED static void *
fuzz_no_open(const char *uri)
{
    (void) uri;
    return NULL;
}

/* Make every attempt of libxml2 to read a file or URL (external
 * entities, DTDs) abort: the domain XML is parsed from memory and must
 * never make the parser load anything.  Tried before libxml2's own
 * handlers, so call it after xmlInitParser.
 */
FUZZ_UNUSED static void
fuzz_forbid_loads(void)
{
    xmlInitParser();
    if (xmlRegisterInputCallbacks(fuzz_load_attempt, fuzz_no_open, NULL,
                                  NULL) < 0)
        abort();
}
#endif

#endif
