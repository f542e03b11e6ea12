/* SPDX-License-Identifier: MIT */
/*
 * Redis key names of the bus, in one place. Every key of a service carries the hash tag {svc} so
 * that a service's keys live in one Redis Cluster slot and each script touches one slot only.
 */
#ifndef ADI_KEYS_H
#define ADI_KEYS_H

/** Protocol version written into every envelope and reply, and the oldest one still accepted. */
#define ADI_PROTO_VERSION     1
#define ADI_PROTO_VERSION_MIN 1

/** Request stream of service S, read through the consumer group named S. */
#define ADI_KEY_REQ_FMT "svc:{%s}:req"
/** Reply stream of one gateway instance (one per gateway thread). */
#define ADI_KEY_GW_REP_FMT "gw:{%s}:rep"
/** Reply stream of one service consumer for service-to-service calls: svc, consumer. */
#define ADI_KEY_SVC_REP_FMT "svc:{%s}:%s:rep"
/** Events nobody waits for. */
#define ADI_KEY_EV_AUDIT "ev:audit"
#define ADI_KEY_EV_AUTH  "ev:auth"

/** The stream's single field name holding the msgpack envelope or reply. */
#define ADI_STREAM_FIELD "m"

/** The backend services of the suite (bus names), in the order health reports them. */
#define ADI_SERVICE_NAMES                                                                          \
    {                                                                                              \
        "auth", "tenant", "vault", "task-runner"                                                   \
    }
#define ADI_SERVICE_COUNT 4

#endif
