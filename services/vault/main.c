/* SPDX-License-Identifier: MIT */
/*
 * adi-vault: the vault service (the encrypted platform-credential vault). It answers the operations
 * of its stream svc:{vault}:req, owns the Postgres schema "vault" and runs on libs/svc, which
 * brings configuration, logging, the ops port, the worker threads and SIGTERM draining. This file
 * only declares the service; handlers live under ops/ and are listed in the table below.
 */
#include "adi/svc.h"

/* Operations answered here (sys.health is answered by libs/svc for every service). */
static const adi_svc_handler_t *const handlers[] = {
    NULL,
};

static const adi_svc_def_t vault_def = {
    .name = "vault",
    .schema = "vault",
    .ops_port = 9103,
    .handlers = handlers,
};

int main(int argc, char **argv)
{
    return adi_svc_run(&vault_def, argc, argv);
}
