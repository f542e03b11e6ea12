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

/*
 * Task queues (the task runner, issue 6). Queue q: the stream ADI_KEY_TASKS_FMT (field "m" = a
 * task_msg, group "task-runner"), delayed and retried tasks waiting in the sorted set
 * ADI_KEY_TASKS_DELAYED_FMT (member = the task_msg bytes, score = due time in ms), tasks out of
 * attempts on the dead-letter stream ADI_KEY_TASKS_DEAD_FMT (fields "m" and "error"). A task's
 * state is the hash ADI_KEY_TASK_STATE_FMT (id); a unique task's lock ADI_KEY_TASK_UNIQUE_FMT
 * (name, hex SHA-256 of its args). The scheduler's lease, fencing counter and last runs use
 * ADI_KEY_SCHED_LEADER, ADI_KEY_SCHED_FENCE and ADI_KEY_SCHED_LAST_FMT (schedule name).
 */
#define ADI_KEY_TASKS_FMT         "tasks:%s"
#define ADI_KEY_TASKS_DELAYED_FMT "tasks:%s:delayed"
#define ADI_KEY_TASKS_DEAD_FMT    "tasks:%s:dead"
#define ADI_KEY_TASK_STATE_FMT    "task:%s"
#define ADI_KEY_TASK_UNIQUE_FMT   "task:unique:%s:%s"
#define ADI_KEY_SCHED_LEADER      "sched:leader"
#define ADI_KEY_SCHED_FENCE       "sched:fence"
#define ADI_KEY_SCHED_LAST_FMT    "sched:last:%s"
#define ADI_TASKS_GROUP           "task-runner"

/** The stream's single field name holding the msgpack envelope or reply. */
#define ADI_STREAM_FIELD "m"

/** The backend services of the suite (bus names), in the order health reports them. */
#define ADI_SERVICE_NAMES                                                                          \
    {                                                                                              \
        "auth", "tenant", "vault", "task-runner"                                                   \
    }
#define ADI_SERVICE_COUNT 4

#endif
