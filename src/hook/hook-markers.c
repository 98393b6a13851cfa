/* virt-qed-migrate hook: migration markers.
 *
 * <state_dir>/active/UUID exists while a run migrates that domain (see
 * src/virt/virt-internal.h): "PID STARTTIME", "command=..." and, to the
 * end of the file, "name=NAME".  They are read without following links
 * and without parsing any XML, so that a start can be refused whatever
 * the domain XML holds.
 */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "hook-internal.h"
#include "vqm-io.h"
#include "vqm-quote.h"

void
vqm_hook_markers_free(struct hook_markers *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->uuid[i]);
        free(m->name[i]);
    }
    free(m->uuid);
    free(m->name);
    memset(m, 0, sizeof *m);
}

/* The name a marker holds (malloc'ed), NULL when none. */
static char *
marker_name(int afd, const char *entry)
{
    CLEANUP_CLOSE int fd = -1;
    CLEANUP_FREE char *buf = NULL;
    char *p;
    ssize_t r;
    size_t len = 0;
    struct stat st;

    fd = openat(afd, entry, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
        || !(buf = malloc(HOOK_MAX_MARKER_SIZE + 1)))
        return NULL;
    while (len < HOOK_MAX_MARKER_SIZE
           && (r = read(fd, buf + len, HOOK_MAX_MARKER_SIZE - len)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        len += (size_t) r;
    }
    buf[len] = '\0';
    if ((p = strstr(buf, "\nname=")) && p[6])
        return strdup(p + 6);
    return NULL;
}

/* Add the marker of directory entry e; false when it cannot be. */
static bool
markers_add(struct hook_markers *m, DIR *dp, const char *entry)
{
    char **u, **n;

    if (m->n == HOOK_MAX_MARKERS)
        return false;                    /* too many to look at */
    if (!(u = realloc(m->uuid, (m->n + 1) * sizeof *u)))
        return false;
    m->uuid = u;
    if (!(n = realloc(m->name, (m->n + 1) * sizeof *n)))
        return false;
    m->name = n;
    if (!(m->uuid[m->n] = strdup(entry)))
        return false;
    for (char *p = m->uuid[m->n]; *p; p++)
        *p = (char) tolower((unsigned char) *p);
    m->name[m->n] = marker_name(dirfd(dp), entry);
    m->n++;
    return true;
}

/* The active/ directory of the state directory, or NULL (errno set). */
static DIR *
open_active(const char *state_dir)
{
    CLEANUP_CLOSE int sfd = -1;
    int afd;
    DIR *dp;

    sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0)
        return NULL;
    afd = openat(sfd, "active", O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                 | O_CLOEXEC);
    if (afd < 0)
        return NULL;
    if (!(dp = fdopendir(afd))) {
        close(afd);
        errno = EIO;
    }
    return dp;
}

/* A missing directory has no markers; one that cannot be read (or is a
 * link) counts as unknown. */
void
vqm_hook_markers_load(const struct hook_conf *c, struct hook_markers *m)
{
    DIR *dp;
    struct dirent *e;

    memset(m, 0, sizeof *m);
    if (!(dp = open_active(c->state_dir))) {
        m->unknown = errno != ENOENT;
        return;
    }
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        if (!markers_add(m, dp, e->d_name)) {
            m->unknown = true;
            break;
        }
    }
    closedir(dp);
}

const char *
vqm_hook_markers_match(const struct hook_markers *m, const char *name,
                       const char *uuid)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        if (uuid && strcasecmp(m->uuid[i], uuid) == 0)
            return m->uuid[i];
        if (name && *name && m->name[i] && strcmp(m->name[i], name) == 0)
            return m->uuid[i];
    }
    return NULL;
}

/* The text of the first <uuid> element within the first HOOK_UUID_SCAN
 * bytes (libvirt writes it right after <name>, whose text cannot hold a
 * '<').  uuid receives 36 characters, lower case; false when there is
 * none. */
bool
vqm_hook_scan_uuid(const char *buf, size_t len, char uuid[37])
{
    static const char tag[] = "<uuid>";
    size_t i, k, lim = len < HOOK_UUID_SCAN ? len : HOOK_UUID_SCAN;

    for (i = 0; i + sizeof tag - 1 <= lim; i++) {
        if (memcmp(buf + i, tag, sizeof tag - 1) != 0)
            continue;
        i += sizeof tag - 1;
        while (i < len && isspace((unsigned char) buf[i]))
            i++;
        if (len - i < 36)
            return false;
        for (k = 0; k < 36; k++)
            uuid[k] = (char) tolower((unsigned char) buf[i + k]);
        uuid[36] = '\0';
        return vqm_hook_uuid_valid(uuid);
    }
    return false;
}

/* Is the run the marker names gone (no such process, or another one that
 * reused the pid)?  cmd receives the command that finishes the
 * migration ("" unknown). */
static bool
marker_run_gone(const char *path, char *cmd, size_t cmdlen)
{
    char buf[4096], *nl;
    long pid = 0;
    unsigned long long start = 0, now;
    ssize_t n = 0;
    CLEANUP_CLOSE int fd = -1;

    cmd[0] = '\0';
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0)
        n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    if ((nl = strstr(buf, "\ncommand=")) && nl[9] && nl[9] != '\n') {
        snprintf(cmd, cmdlen, "%s", nl + 9);
        if ((nl = strchr(cmd, '\n')))
            *nl = '\0';
    }
    if (sscanf(buf, "%ld %llu", &pid, &start) < 1 || pid <= 0)
        return false;         /* unknown: assume it runs */
    now = vqm_proc_starttime(pid);
    return now == 0 || (start != 0 && now != start);
}

static void
refuse_marked(const struct hook_conf *c, const char *who, const char *hit)
{
    char path[PATH_MAX], cmd[1024];

    /* The marker names its run: a run that is gone left the disks half
     * migrated, and the message names the command that finishes the
     * migration. */
    if (snprintf(path, sizeof path, "%s/active/%s", c->state_dir, hit)
        < (int) sizeof path && marker_run_gone(path, cmd, sizeof cmd))
        vqm_hook_log(LOG_ERR, "domain '%s' cannot start: an interrupted "
                     "virt-qed-migrate left its disks half migrated "
                     "(%s/active/%s exists, its run is gone); finish the "
                     "migration with: %s", vqm_q(who), vqm_q(c->state_dir),
                     vqm_q(hit), cmd[0] ? vqm_q(cmd)
                     : "virt-qed-migrate --domain DOMAIN");
    else
        vqm_hook_log(LOG_ERR, "domain '%s' cannot start: virt-qed-migrate "
                     "is converting its disks (%s/active/%s exists); start "
                     "it again when the conversion has finished",
                     vqm_q(who), vqm_q(c->state_dir), vqm_q(hit));
}

int
vqm_hook_check_markers(const struct hook_conf *c,
                       const struct hook_markers *m, const char *name,
                       const char *uuid, const char *load_error)
{
    const char *hit = vqm_hook_markers_match(m, name, uuid);

    if (hit) {
        refuse_marked(c, name ? name : uuid, hit);
        return HOOK_REFUSE;
    }
    if (load_error && (m->n || m->unknown)) {
        vqm_hook_log(LOG_ERR, "domain '%s' cannot start: %s; "
                     "virt-qed-migrate has migrations in progress "
                     "(%s/active%s), so the start is refused until they "
                     "have finished", vqm_q(name ? name : "?"), load_error,
                     vqm_q(c->state_dir),
                     m->unknown ? " cannot be read" : "");
        return HOOK_REFUSE;
    }
    return HOOK_ALLOW;
}
