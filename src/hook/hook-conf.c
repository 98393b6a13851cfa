/* virt-qed-migrate hook: the policy file, hook.conf (KEY=VALUE lines,
 * '#' comments).  See virt-qed-migrate-hook(8).
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hook-internal.h"
#include "hooks/hook-paths.h"

static char *
trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'
                     || e[-1] == '\r'))
        *--e = '\0';
    if (e - s >= 2 && ((s[0] == '"' && e[-1] == '"')
                       || (s[0] == '\'' && e[-1] == '\''))) {
        e[-1] = '\0';
        s++;
    }
    return s;
}

void
vqm_hook_conf_free(struct hook_conf *c)
{
    free(c->uri);
    free(c->state_dir);
    free(c->log);
    c->uri = c->state_dir = c->log = NULL;
}

static int
set_str(char **dst, const char *v)
{
    char *s = strdup(v);

    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

/* The policy is unusable: say why ("FILE:LINE: ..."). */
static void problem(struct hook_conf *c, unsigned lineno, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

static void
problem(struct hook_conf *c, unsigned lineno, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->problem, sizeof c->problem, "%s:%u: %s", c->path, lineno,
             msg);
    c->policy = POLICY_INVALID;
}

static int
set_policy(struct hook_conf *c, unsigned lineno, const char *val)
{
    if (strcmp(val, "warn") == 0)
        c->policy = POLICY_WARN;
    else if (strcmp(val, "deny") == 0)
        c->policy = POLICY_DENY;
    else if (strcmp(val, "convert-on-stop") == 0)
        c->policy = POLICY_CONVERT_ON_STOP;
    else
        problem(c, lineno, "unknown policy '%.64s' (warn, deny or "
                "convert-on-stop)", val);
    return 0;
}

static int
set_timeout(struct hook_conf *c, unsigned lineno, const char *val)
{
    char *end;
    unsigned long t;

    errno = 0;
    t = strtoul(val, &end, 10);
    if (errno || end == val || *end || t == 0 || t > 3600) {
        problem(c, lineno, "timeout must be 1 to 3600 seconds");
        return 0;
    }
    c->timeout = (unsigned) t;
    return 0;
}

/* One KEY=VALUE: -1 when out of memory; a bad value sets c->problem. */
static int
conf_key(struct hook_conf *c, unsigned lineno, const char *key,
         const char *val)
{
    if (strcmp(key, "policy") == 0)
        return set_policy(c, lineno, val);
    if (strcmp(key, "uri") == 0)
        return set_str(&c->uri, val);
    if (strcmp(key, "state_dir") == 0) {
        if (*val != '/') {
            problem(c, lineno, "state_dir must be an absolute path");
            return 0;
        }
        return set_str(&c->state_dir, val);
    }
    if (strcmp(key, "log") == 0) {
        if (*val && *val != '/') {
            problem(c, lineno, "log must be an absolute path");
            return 0;
        }
        return set_str(&c->log, val);
    }
    if (strcmp(key, "timeout") == 0)
        return set_timeout(c, lineno, val);
    /* Unknown keys are reported but do not change the policy. */
    fprintf(stderr, "virt-qed-migrate: warning: %s:%u: unknown key "
            "'%.64s'\n", c->path, lineno, key);
    return 0;
}

/* One line of the file; stops at the first problem. */
static int
conf_line(struct hook_conf *c, unsigned lineno, char *line)
{
    char *key, *eq, *hash = strchr(line, '#');

    if (hash)
        *hash = '\0';
    key = trim(line);
    if (!*key)
        return 0;
    eq = strchr(key, '=');
    if (!eq) {
        problem(c, lineno, "expected KEY=VALUE");
        return 0;
    }
    *eq = '\0';
    return conf_key(c, lineno, trim(key), trim(eq + 1));
}

static int
conf_read(struct hook_conf *c, FILE *fp)
{
    char line[1024];
    unsigned lineno = 0;

    while (c->policy != POLICY_INVALID && fgets(line, sizeof line, fp)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            problem(c, lineno, "line too long");
            return 0;
        }
        if (conf_line(c, lineno, line) < 0)
            return -1;
    }
    return 0;
}

int
vqm_hook_conf_load(struct hook_conf *c, const char *path,
                   const char *state_dir)
{
    CLEANUP_FCLOSE FILE *fp = NULL;

    memset(c, 0, sizeof *c);
    c->path = path;
    c->policy = POLICY_WARN;
    c->timeout = HOOK_DEFAULT_TIMEOUT;
    if (set_str(&c->uri, "qemu:///system") < 0
        || set_str(&c->state_dir, VQM_STATEDIR) < 0)
        return -1;
    fp = fopen(path, "re");
    if (!fp && errno != ENOENT) {
        snprintf(c->problem, sizeof c->problem, "cannot read %s: %s",
                 path, strerror(errno));
        c->policy = POLICY_INVALID;
    }
    if (fp && conf_read(c, fp) < 0)
        return -1;
    /* --state-dir on the command line wins over the file. */
    if (state_dir && set_str(&c->state_dir, state_dir) < 0)
        return -1;
    return 0;
}

const char *
vqm_hook_policy_name(enum hook_policy p)
{
    switch (p) {
    case POLICY_WARN: return "warn";
    case POLICY_DENY: return "deny";
    case POLICY_CONVERT_ON_STOP: return "convert-on-stop";
    case POLICY_INVALID: break;
    }
    return "invalid";
}

const char *
vqm_hook_conf_path(void)
{
    const char *p = getenv("VQM_HOOK_CONF");

    return p && *p ? p : VQM_HOOK_CONF;
}
