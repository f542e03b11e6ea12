/* SPDX-License-Identifier: MIT */
/*
 * adi-tenant: the tenant service (tenants, invitations and the audit log). It answers the
 * operations of its stream svc:{tenant}:req, owns the Postgres schema "tenant" and runs on
 * libs/svc, which brings configuration, logging, the ops port, the worker threads and SIGTERM
 * draining. This file only declares the service; handlers live under ops/ and are listed in the
 * table below.
 */
#include "adi/svc.h"

/* Operations answered here (sys.health is answered by libs/svc for every service). */
static const adi_svc_handler_t *const handlers[] = {
    NULL,
};

static const adi_svc_def_t tenant_def = {
    .name = "tenant",
    .schema = "tenant",
    .ops_port = 9102,
    .handlers = handlers,
};

int main(int argc, char **argv)
{
    return adi_svc_run(&tenant_def, argc, argv);
}
