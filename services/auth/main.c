/* SPDX-License-Identifier: MIT */
/*
 * adi-auth: the auth service (users, roles and tokens). It answers the operations of its
 * stream svc:{auth}:req, owns the Postgres schema "auth" and runs on libs/svc, which brings
 * configuration, logging, the ops port, the worker threads and SIGTERM draining. This file only
 * declares the service; its settings, state and handler table live in auth.c, the handlers in
 * ops/ (one file per resource).
 */
#include "auth.h"

int main(int argc, char **argv)
{
    static auth_cfg_t cfg;
    auth_cfg_defaults(&cfg);
    const adi_svc_def_t def = {
        .name = "auth",
        .schema = "auth",
        .ops_port = 9101,
        .handlers = auth_handlers,
        .cfg_rows = auth_cfg_rows,
        .ncfg_rows = auth_ncfg_rows,
        .cfg = &cfg,
        .init = auth_init,
        .fini = auth_fini,
        .chore = auth_settle_chore,
        .chore_ms = AUTH_SETTLE_CHORE_MS,
    };
    return adi_svc_run(&def, argc, argv);
}
