/* virt-qed-migrate hook: the operations (--hook=OP[:SUBOP]) and the
 * domain XML filter (--hook-filter).
 *
 * libvirt runs hooks synchronously and waits for their exit and for EOF
 * on their stdout and stderr, so everything here is cheap and bounded:
 * the domain XML from stdin, the first bytes of the images it names, a
 * small configuration file and the migration markers, under a time
 * limit.  Never libvirt: a hook that calls back into the daemon stalls
 * the operation.  Deferred work (convert-on-stop) runs in a detached
 * worker (hook-spawn.c).
 *
 * stdout carries only XML (filter operations); diagnostics go to stderr,
 * which libvirt hands to the API caller when the hook fails, to syslog
 * and to hook.log (hook-log.c).
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "cleanup.h"
#include "hook.h"
#include "hook-internal.h"
#include "vqm-debug.h"
#include "vqm-quote.h"

static volatile sig_atomic_t deny_on_timeout;
static volatile sig_atomic_t filter_mode;   /* --hook-filter */

static void
on_alarm(int sig)
{
    static const char msg_deny[] =
        "virt-qed-migrate: error: the hook timed out reading the domain "
        "and its disk images; start refused\n";
    static const char msg_allow[] =
        "virt-qed-migrate: warning: the hook timed out reading the domain "
        "and its disk images; nothing done\n";
    static const char msg_filter[] =
        "virt-qed-migrate: error: --hook-filter timed out reading the "
        "domain and its disk images\n";
    const char *msg = filter_mode ? msg_filter
        : deny_on_timeout ? msg_deny : msg_allow;
    int status = filter_mode || deny_on_timeout ? HOOK_REFUSE : HOOK_ALLOW;

    (void) sig;
    if (write(STDERR_FILENO, msg, strlen(msg)) < 0)
        _exit(HOOK_REFUSE);
    _exit(status);
}

/* The time limit: reading a header from a dead NFS server must not hang
 * a start forever. */
static void
set_alarm(unsigned seconds)
{
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

int
vqm_hook_op_prepare(const struct hook_conf *c, struct hook_domain *d)
{
    CLEANUP_FREE char *quoted = vqm_quote(d->name);
    CLEANUP_FREE char *list = NULL;
    const char *name = quoted ? quoted : "?", *l;
    size_t n = vqm_hook_count_qed(d);
    const char *s = n == 1 ? "" : "s";

    if (n == 0)
        return HOOK_ALLOW;
    list = vqm_hook_qed_list(d);
    l = list ? list : "?";
    switch (c->policy) {
    case POLICY_WARN:
        vqm_hook_log(LOG_WARNING, "domain '%s' starts with %zu QED disk "
                     "image%s (%s); convert %s with: virt-qed-migrate -c %s "
                     "--domain %s", name, n, s, l, n == 1 ? "it" : "them",
                     vqm_sq(c->uri), vqm_sq(d->name));
        return HOOK_ALLOW;
    case POLICY_CONVERT_ON_STOP:
        vqm_hook_log(LOG_WARNING, "domain '%s' starts with %zu QED disk "
                     "image%s (%s); %s converted when the domain stops",
                     name, n, s, l, n == 1 ? "it will be" : "they will be");
        return HOOK_ALLOW;
    case POLICY_DENY:
        vqm_hook_log(LOG_ERR, "domain '%s' was not started: it uses QED "
                     "disk image%s (%s), refused by the policy in %s; "
                     "convert %s with: virt-qed-migrate -c %s --domain %s",
                     name, s, l, vqm_q(c->path), n == 1 ? "it" : "them",
                     vqm_sq(c->uri), vqm_sq(d->name));
        return HOOK_REFUSE;
    case POLICY_INVALID:
        break;
    }
    vqm_hook_log(LOG_ERR, "domain '%s' was not started: it uses QED disk "
                 "image%s (%s) and the hook policy is unusable (%s)", name,
                 s, l, vqm_q(c->problem));
    return HOOK_REFUSE;
}

int
vqm_hook_op_release(const struct hook_conf *c, struct hook_domain *d)
{
    CLEANUP_FREE char *name = vqm_quote(d->name);
    size_t n;

    if (c->policy != POLICY_CONVERT_ON_STOP)
        return HOOK_ALLOW;
    n = vqm_hook_count_qed(d);
    if (n == 0)
        return HOOK_ALLOW;
    if (!d->uuid) {
        vqm_hook_log(LOG_WARNING, "domain '%s' has no valid UUID in its "
                     "XML: no conversion scheduled", name ? name : "?");
        return HOOK_ALLOW;
    }
    vqm_hook_log(LOG_NOTICE, "domain '%s' stopped with %zu QED disk "
                 "image%s: conversion scheduled", name ? name : "?", n,
                 n == 1 ? "" : "s");
    if (vqm_hook_spawn_worker(c, name ? name : "?", d->uuid) < 0)
        return HOOK_REFUSE;
    return HOOK_ALLOW;
}

/* Rewritten XML on stdout, nothing when nothing changed. */
static int
op_filter(struct hook_domain *d, struct vqm_error *err)
{
    if (vqm_hook_filter_domain(d) == 0)
        return 0;
    return vqm_hook_write_xml(d, err);
}

int
vqm_hook_filter(const char *state_dir, struct vqm_error *err)
{
    CLEANUP_HOOK_CONF struct hook_conf c = { 0 };
    CLEANUP_HOOK_DOMAIN struct hook_domain d = { 0 };
    int r;

    /* Stand-alone filter: no policy, errors are errors; the limits of
     * the hook (input size, hook.conf's timeout) hold. */
    xmlInitParser();
    if (vqm_hook_conf_load(&c, vqm_hook_conf_path(), state_dir) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    filter_mode = 1;
    set_alarm(c.timeout);
    r = vqm_hook_domain_load(&d, err) < 0 ? -1 : op_filter(&d, err);
    alarm(0);
    return r;
}

/* prepare begin: the markers first, on the domain name libvirt passed
 * (VQM_HOOK_DOMAIN) and a UUID found by a plain scan, so that no XML
 * can get a start past them; then the markers again on the parsed XML,
 * then the policy. */
static int
hook_prepare(const struct hook_conf *c, const struct hook_markers *m)
{
    CLEANUP_HOOK_DOMAIN struct hook_domain d = { 0 };
    CLEANUP_FREE char *buf = NULL;
    struct vqm_error err = { 0 };
    const char *argname = getenv("VQM_HOOK_DOMAIN");
    char scanned[37];
    const char *uuid = NULL;
    size_t len = 0;
    int r;

    if (vqm_hook_read_stdin(&buf, &len, &err) == 0) {
        uuid = vqm_hook_scan_uuid(buf, len, scanned) ? scanned : NULL;
        if (len == 0)
            vqm_error_set(&err, VQM_ERR_INVALID, "no domain XML on stdin");
    }
    r = vqm_hook_check_markers(c, m, argname, uuid, NULL);
    if (r != HOOK_ALLOW)
        return r;
    /* While any marker exists, a parse that times out refuses the start
     * too (deny_on_timeout). */
    if (err.msg[0] || vqm_hook_domain_parse(buf, len, &d, &err) < 0) {
        r = vqm_hook_check_markers(c, m, argname, uuid, err.msg);
        if (r != HOOK_ALLOW)
            return r;
        /* deny cannot tell whether the domain uses QED: refuse. */
        if (c->policy == POLICY_DENY || c->policy == POLICY_INVALID) {
            vqm_hook_log(LOG_ERR, "%s", err.msg);
            return HOOK_REFUSE;
        }
        vqm_hook_log(LOG_WARNING, "%s", err.msg);
        return HOOK_ALLOW;
    }
    r = vqm_hook_check_markers(c, m, d.name, d.uuid, NULL);
    if (r != HOOK_ALLOW)
        return r;
    /* No marker names this domain: the policy alone decides what a
     * timeout means from here on. */
    deny_on_timeout = c->policy == POLICY_DENY
        || c->policy == POLICY_INVALID;
    return vqm_hook_op_prepare(c, &d);
}

/* migrate begin, restore begin: the filter; release end: the worker.
 * An XML that cannot be read is left as libvirt has it. */
static int
hook_other(const struct hook_conf *c, bool filter)
{
    CLEANUP_HOOK_DOMAIN struct hook_domain d = { 0 };
    struct vqm_error err = { 0 };

    if (vqm_hook_domain_load(&d, &err) < 0) {
        vqm_hook_log(LOG_WARNING, "%s%s", err.msg,
                     filter ? "; domain XML left unchanged" : "");
        return HOOK_ALLOW;
    }
    if (!filter)
        return vqm_hook_op_release(c, &d);
    if (op_filter(&d, &err) < 0)
        vqm_hook_log(LOG_WARNING, "%s", err.msg);
    return HOOK_ALLOW;
}

/* The operations the hook acts on: 'p'repare begin, 'f'ilter (migrate
 * or restore begin), 'r'elease end; 0 for every other one. */
static char
operation(const char *arg)
{
    const char *colon = strchr(arg, ':');
    size_t n = colon ? (size_t) (colon - arg) : strlen(arg);
    const char *subop = colon ? colon + 1 : NULL;

#define IS(word) (n == strlen(word) && strncmp(arg, word, n) == 0)
    /* OP alone: the sub-operation libvirt uses for it. */
    if (!subop)
        subop = IS("release") || IS("stopped") ? "end" : "begin";
    if ((IS("migrate") || IS("restore")) && strcmp(subop, "begin") == 0)
        return 'f';
    if (IS("prepare") && strcmp(subop, "begin") == 0)
        return 'p';
    if (IS("release") && strcmp(subop, "end") == 0)
        return 'r';
#undef IS
    return 0;
}

int
vqm_hook_run(const char *op, const char *state_dir)
{
    CLEANUP_HOOK_CONF struct hook_conf c = { 0 };
    CLEANUP_HOOK_MARKERS struct hook_markers m = { 0 };
    char what = operation(op);
    int r;

    /* Everything else is allowed without reading anything. */
    if (!what)
        return HOOK_ALLOW;
    openlog("virt-qed-migrate", LOG_PID, LOG_DAEMON);
    xmlInitParser();
    if (vqm_hook_conf_load(&c, vqm_hook_conf_path(), state_dir) < 0) {
        fprintf(stderr, "virt-qed-migrate: error: out of memory\n");
        return HOOK_REFUSE;
    }
    vqm_hook_log_dir = c.state_dir;
    if (c.policy == POLICY_INVALID)
        syslog(LOG_ERR, "%s", c.problem);
    if (what == 'p')
        vqm_hook_markers_load(&c, &m);
    /* On timeout a start is refused only where the policy would refuse
     * it, or while a marker exists. */
    deny_on_timeout = what == 'p'
        && (c.policy == POLICY_DENY || c.policy == POLICY_INVALID
            || m.n || m.unknown);
    set_alarm(c.timeout);
    vqm_debug("hook %s, policy %s (%s)", op,
              vqm_hook_policy_name(c.policy), c.path);
    r = what == 'p' ? hook_prepare(&c, &m) : hook_other(&c, what == 'f');
    alarm(0);
    vqm_hook_log_dir = NULL;
    closelog();
    return r;
}
