/* SPDX-License-Identifier: MIT */
/*
 * adi-auth: the auth service (users, roles and tokens). It answers the operations of its
 * stream svc:{auth}:req, owns the Postgres schema "auth" and runs on libs/svc, which brings
 * configuration, logging, the ops port, the worker threads and SIGTERM draining. This file only
 * declares the service; handlers live under ops/ and are listed in the table below.
 */
#include "adi/svc.h"

/* Operations answered here (sys.health is answered by libs/svc for every service). */
static const adi_svc_handler_t *const handlers[] = {
    NULL,
};

static const adi_svc_def_t auth_def = {
    .name = "auth",
    .schema = "auth",
    .ops_port = 9101,
    .handlers = handlers,
};

int main(int argc, char **argv)
{
    return adi_svc_run(&auth_def, argc, argv);
}
