/* SPDX-License-Identifier: MIT */
/*
 * adi-tenant: the tenant service (tenants, invitations and the audit log). It answers the
 * operations of its stream svc:{tenant}:req, writes the audit entries of every service from
 * ev:audit, owns the Postgres schema "tenant" and runs on libs/svc, which brings configuration,
 * logging, the ops port, the worker threads and SIGTERM draining. The service is declared in
 * tenant.c (handler and consumer tables), its handlers live under ops/ (one file per resource).
 */
#include "tenant.h"

int main(int argc, char **argv)
{
    return adi_svc_run(&tenant_def, argc, argv);
}
