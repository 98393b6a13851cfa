/* fuzz-sources: src/virt/virt-journal.c src/common/*.c */
/* fuzz-seeds: journal */
/* fuzz-pkgs: glib-2.0 */
/* fuzz-args: -max_len=65536 */
/* virt-qed-migrate: libFuzzer target for the journal reader
 * (src/virt/virt-journal.c).
 *
 * The input becomes <state-dir>/journal of a scratch state directory.
 * It is opened read-only (a dry run) and then for writing (a rerun after
 * an interrupted run), every query is asked about the names the input
 * holds, and the writing open appends a record, which the next read-only
 * open must see.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virt-internal.h"
#include "fuzz-common.h"

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Ask every query about each tab-separated field of the input. */
static void
query(struct vqm_journal *j, char *text)
{
    const char **unfinished;
    char *save = NULL, *f;
    size_t i, nf = 0;

    (void) vqm_journal_found(j);
    (void) vqm_journal_pending(j);
    if (!vqm_journal_dir(j))
        abort();
    unfinished = vqm_journal_unfinished(j);
    if (unfinished && unfinished[0] && !vqm_journal_pending(j)) {
        fprintf(stderr, "fuzz: '%s' unfinished but nothing pending\n",
                unfinished[0]);
        abort();
    }
    for (i = 0; unfinished && unfinished[i]; i++) {
        char *xml = NULL, *p = NULL;

        /* No saved file in the scratch directory: must fail cleanly. */
        if (vqm_journal_saved_xml(j, unfinished[i], NULL, &xml, &p,
                                  NULL) == 0 && (!xml || !p))
            abort();
        free(xml);
        if (!vqm_journal_migrating(j, unfinished[i])) {
            fprintf(stderr, "fuzz: '%s' listed as unfinished but not "
                    "migrating\n", unfinished[i]);
            abort();
        }
        (void) vqm_journal_restart_owed(j, unfinished[i]);
        free(p);
    }
    free(unfinished);

    for (f = strtok_r(text, "\t\n", &save); f && nf < MAX_FIELDS;
         f = strtok_r(NULL, "\t\n", &save), nf++) {
        (void) vqm_journal_renamed(j, f);
        (void) vqm_journal_converted(j, f, 2049, 131);
        (void) vqm_journal_copy_output(j, f);
        (void) vqm_journal_restart_owed(j, f);
        (void) vqm_journal_migrating(j, f);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char state[300];
    struct vqm_journal *j = NULL;
    struct vqm_error err = { 0 };
    size_t len;
    char *text = fuzz_expand(data, size, &len);
    char *copy;
    bool pending;
    int seq;

    if (!state[0]) {
        /* No test hooks in the fuzzer. */
        unsetenv("VQM_TEST_KILL_AT_STEP");
        unsetenv("VQM_FAULT");
        unsetenv("VQM_FAULT_TRACE");
        snprintf(state, sizeof state, "%s/state", fuzz_scratch());
        fuzz_mkdir("state");
    }
    fuzz_write("state/journal", text, len);
    copy = malloc(len + 1);
    if (!copy)
        abort();

    /* A dry run: read only. */
    if (vqm_journal_open(state, true, &j, &err) == 0) {
        memcpy(copy, text, len + 1);
        query(j, copy);
        pending = vqm_journal_pending(j);
        vqm_journal_close(j, false);
    } else {
        fprintf(stderr, "fuzz: read-only open failed: %s\n", err.msg);
        abort();
    }

    /* A real run: the markers of finished domains are swept, a step is
     * recorded. */
    fuzz_mkdir("state/active");
    fuzz_write("state/active/2a7c1e44-0b8d-4f3e-9d6a-5e1f7c3b9a20", "1\n", 2);
    fuzz_write("state/active/other", "1\n", 2);
    if (vqm_journal_open(state, false, &j, &err) < 0) {
        fprintf(stderr, "fuzz: open failed: %s\n", err.msg);
        abort();
    }
    if (vqm_journal_pending(j) != pending) {
        fprintf(stderr, "fuzz: read-only and writing opens disagree\n");
        abort();
    }
    vqm_journal_sweep_active(j);
    seq = vqm_journal_begin(j, "convert", "/vqmfuzz/a", "/vqmfuzz/b",
                            "copy:1:2", &err);
    if (seq < 0 || vqm_journal_fail(j, seq, "failed\r\n%", &err) < 0
        || (seq = vqm_journal_begin(j, "rename", "/vqmfuzz/old\tname\n%",
                                    "/vqmfuzz/new", NULL, &err)) < 0
        || vqm_journal_done(j, seq, &err) < 0) {
        fprintf(stderr, "fuzz: cannot append: %s\n", err.msg);
        abort();
    }
    vqm_journal_close(j, false);

    /* What was appended reads back (unless the input ended in a torn
     * line, which swallows the first record appended after it). */
    if (vqm_journal_open(state, true, &j, &err) < 0) {
        fprintf(stderr, "fuzz: read-only open failed: %s\n", err.msg);
        abort();
    }
    if ((len == 0 || text[len - 1] == '\n')
        && vqm_journal_renamed(j, "/vqmfuzz/old\tname\n%") == NULL) {
        fprintf(stderr, "fuzz: the appended record was not read back\n");
        abort();
    }
    vqm_journal_close(j, false);

    free(copy);
    free(text);
    return 0;
}
