/* Table-driven checks of src/common/vqm-open.c that need no tenant:
 * name normalisation, and the permission rule a reader is judged by
 * (owner class, else group class, else others, as the kernel does).
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vqm-open.h"

static const struct {
    const char *in, *out;
} norm_cases[] = {
    { "/", "/" },
    { "//", "/" },
    { "/a/b/../c", "/a/c" },
    { "/..", "/" },
    { "/../../etc/passwd", "/etc/passwd" },
    { "/a/..", "/" },
    { "//x//./y/", "/x/y" },
    { "/a/b/c/../../d/.", "/a/d" },
    { "/srv/t/../../etc/shadow", "/etc/shadow" },
    { "/a/./b/./", "/a/b" },
};

static gid_t groups_100_200[] = { 100, 200 };

static const struct {
    uid_t ruid;
    size_t ngroups;                 /* 0 or 2 (groups 100 and 200) */
    uid_t fuid;
    gid_t fgid;
    mode_t mode;
    int want;
    bool ok;
} may_cases[] = {
    /* owner class decides for the owner, even when others may */
    { 1000, 2, 1000, 5, 0600, R_OK, true },
    { 1000, 2, 1000, 5, 0044, R_OK, false },
    { 1000, 2, 1000, 5, 0400, R_OK | W_OK, false },
    /* group class for a member, before others */
    { 1000, 2, 0, 200, 0640, R_OK, true },
    { 1000, 2, 0, 200, 0604, R_OK, false },
    { 1000, 0, 0, 200, 0604, R_OK, true },
    /* others */
    { 1000, 2, 0, 0, 0600, R_OK, false },
    { 1000, 2, 0, 0, 0644, R_OK, true },
    /* search permission on a directory */
    { 1000, 2, 0, 0, 040700, X_OK, false },
    { 1000, 2, 0, 0, 040711, X_OK, true },
    { 1000, 2, 0, 100, 040750, X_OK, true },
    /* root may */
    { 0, 0, 1000, 1000, 0000, R_OK | W_OK, true },
};

int
main(void)
{
    size_t i;
    int failed = 0;

    for (i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
        char buf[256];

        snprintf(buf, sizeof buf, "%s", norm_cases[i].in);
        vqm_path_normalize(buf);
        if (strcmp(buf, norm_cases[i].out) != 0) {
            fprintf(stderr, "normalize '%s': got '%s', expected '%s'\n",
                    norm_cases[i].in, buf, norm_cases[i].out);
            failed++;
        }
    }
    for (i = 0; i < sizeof may_cases / sizeof may_cases[0]; i++) {
        struct vqm_reader r = {
            .uid = may_cases[i].ruid,
            .groups = may_cases[i].ngroups ? groups_100_200 : NULL,
            .n_groups = may_cases[i].ngroups,
        };
        struct stat st;
        bool ok;

        memset(&st, 0, sizeof st);
        st.st_uid = may_cases[i].fuid;
        st.st_gid = may_cases[i].fgid;
        st.st_mode = may_cases[i].mode;
        ok = vqm_reader_may(&r, &st, may_cases[i].want);
        if (ok != may_cases[i].ok) {
            fprintf(stderr, "may case %zu (uid %u, file %u:%u %04o, want "
                    "%d): got %d\n", i, (unsigned) r.uid,
                    (unsigned) st.st_uid, (unsigned) st.st_gid,
                    (unsigned) st.st_mode, may_cases[i].want, ok);
            failed++;
        }
    }
    if (vqm_reader_may(NULL, &(struct stat) { .st_mode = 0 }, R_OK) != true) {
        fprintf(stderr, "a NULL reader is root\n");
        failed++;
    }
    printf("%d failure(s)\n", failed);
    return failed ? 1 : 0;
}
