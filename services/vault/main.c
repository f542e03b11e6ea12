/* SPDX-License-Identifier: MIT */
/*
 * adi-vault: the vault service (the encrypted platform-credential vault). It answers the operations
 * of its stream svc:{vault}:req, owns the Postgres schema "vault" and runs on libs/svc, which
 * brings configuration, logging, the ops port, the worker threads and SIGTERM draining. The
 * service state (KMS provider, DEK cache) is built in vault.c, the handlers live under ops/.
 */
#include "vault.h"

int main(int argc, char **argv)
{
    static vault_cfg_t cfg;
    vault_cfg_defaults(&cfg);
    const adi_svc_def_t def = {
        .name = "vault",
        .schema = "vault",
        .ops_port = 9103,
        .handlers = vault_handlers,
        .cfg_rows = vault_cfg_rows,
        .ncfg_rows = vault_ncfg_rows,
        .cfg = &cfg,
        .init = vault_init,
        .fini = vault_fini,
    };
    return adi_svc_run(&def, argc, argv);
}
