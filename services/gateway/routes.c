/* SPDX-License-Identifier: MIT */
/*
 * The route table, expanded from routes.def. The op column refers to the generated operation
 * descriptors (adi_op_<name>), so a row naming an unknown operation does not compile.
 */
#include "adi/messages.h"
#include "gw_router.h"

#define OP(name)                                    GW_TARGET_OP(name)
#define OP_TO(name, svc)                            GW_TARGET_OP_TO(name, svc)
#define LOCAL(name)                                 GW_TARGET_LOCAL(name)
#define ROUTE(method, path, target, auth, deadline) {GW_M_##method, path, target, auth, deadline},

const gw_route_t gw_routes[] = {
#include "routes.def"
};

#undef ROUTE
#undef LOCAL
#undef OP_TO
#undef OP

const size_t gw_routes_count = sizeof(gw_routes) / sizeof(gw_routes[0]);
