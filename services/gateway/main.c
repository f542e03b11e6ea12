/* SPDX-License-Identifier: MIT */
/*
 * adi-gateway: the HTTP API of the suite. Reads its configuration from the environment
 * (`adi-gateway --config-table` prints the table), builds the token key set once (shared
 * read-only by the threads), starts its event-loop threads and ops port, then waits for SIGTERM or
 * SIGINT and drains before exiting 0. Exit 2 means a bad configuration (including an unusable JWT
 * key), 1 a failure to start (port in use, ...).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "adi/log.h"
#include "gw.h"

int main(int argc, char **argv)
{
    static gw_t gw; /* static: everything hangs off it until exit */
    if (argc > 1 && strcmp(argv[1], "--config-table") == 0) {
        gw_config_table(stdout);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--config-table]\n", argv[0]);
        return 2;
    }
    if (gw_config_load(&gw.cfg, &gw.redis, &gw.origins, stderr) != 0)
        return 2;
    if (gw_config_jwt(&gw.cfg, &gw.jwt, stderr) != 0)
        return 2;
    adi_log_init("gateway", (adi_log_level)adi_log_level_parse(gw.cfg.log_level));
    adi_time_zone_set(gw.cfg.time_zone);
    gw_config_log(&gw.cfg);
    if (gw.cfg.threads_auto)
        ADI_LOG(NULL, ADI_LOG_INFO, "gw.threads",
                "GATEWAY_THREADS=0: %" PRId64
                " event-loop threads, one per online CPU (at most %d)",
                gw.cfg.threads, GW_THREADS_MAX);

    /* Every thread inherits this mask: only sigwait below sees the stop signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    adi_error_t err;
    adi_error_clear(&err);
    if (gw_start(&gw, &err) != ADI_OK) {
        ADI_LOG(NULL, ADI_LOG_ERROR, "gw.start_failed", "%s", err.message);
        exit(1);
    }
    int sig = 0;
    sigwait(&set, &sig);
    ADI_LOG(NULL, ADI_LOG_INFO, "gw.stopping", "signal %d: draining", sig);
    gw_stop(&gw);
    gw_dispose(&gw);
    return 0;
}
