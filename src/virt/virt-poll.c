/* virt-qed-migrate: one look at a domain's state (see virt-poll.h).  A
 * connection of its own each time: the worker polls for minutes, across
 * daemon restarts. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "virt-internal.h"
#include "virt-poll.h"

static int
identify(virDomainPtr dom, char **name, char **uuid, struct vqm_error *err)
{
    char u[VIR_UUID_STRING_BUFLEN];
    const char *n = virDomainGetName(dom);

    if (name && n) {
        free(*name);
        if (!(*name = strdup(n)))
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    }
    if (uuid && virDomainGetUUIDString(dom, u) == 0) {
        free(*uuid);
        if (!(*uuid = strdup(u)))
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int
domain_active(virConnectPtr conn, const char *domain, char **name,
              char **uuid, struct vqm_error *err)
{
    virDomainPtr dom = virDomainLookupByUUIDString(conn, domain);
    int active;

    if (!dom)
        dom = virDomainLookupByName(conn, domain);
    if (!dom)
        return vqm_virt_error(err, VQM_ERR_NOTFOUND, "domain '%s'", domain);
    active = virDomainIsActive(dom);
    if (active < 0)
        vqm_virt_error(err, VQM_ERR_IO, "domain '%s'", domain);
    else if (identify(dom, name, uuid, err) < 0)
        active = -1;
    virDomainFree(dom);
    return active;
}

int
vqm_virt_domain_active(const char *uri, const char *domain, char **name,
                       char **uuid, struct vqm_error *err)
{
    virConnectPtr conn = vqm_virt_connect(uri, true);
    int active;

    if (!conn)
        return vqm_virt_error(err, VQM_ERR_IO, "cannot connect to '%s'",
                              uri ? uri : "the default libvirt URI");
    active = domain_active(conn, domain, name, uuid, err);
    virConnectClose(conn);
    return active;
}
