# syntax=docker/dockerfile:1
# SPDX-License-Identifier: MIT
#
# Images of the ADinsights suite: one build stage on Debian 12 compiles everything once (the release
# settings of CMakePresets.json, without the tests), and a slim Debian 12 runtime stage holds only
# the shared libraries the binaries link (found with ldd, mapped to their Debian packages), CA
# certificates (AWS KMS over HTTPS) and time zone data (TIME_ZONE). One target per process:
#
#   docker build --target gateway     -t adinsights/gateway:dev .
#   docker build --target auth        -t adinsights/auth:dev .        (tenant, vault, task-runner)
#   docker build --target admin       -t adinsights/admin:dev .       (adi-admin; CMD migrate)
#
# Every target runs as the unprivileged user 10001, logs JSON to stdout, stops on SIGTERM (the
# services drain within SHUTDOWN_GRACE_MS) and reports health through its ops port's /healthz
# (bash's /dev/tcp: the image carries no curl or wget). Settings come from the environment (README,
# "Configuration"); OPS_HOST and HTTP_HOST default to 0.0.0.0 here so probes can reach them.
# tests/deploy/validate.js lints this file (dockerfile-utils) and checks the rules named there.

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config libh2o-dev libh2o-evloop-dev libuv1-dev libhiredis-dev \
        libmsgpack-dev libjwt-dev libpq-dev libcurl4-openssl-dev libssl-dev libjansson-dev \
        libcmocka-dev libinih-dev libxml2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake/ cmake/
COPY proto/ proto/
COPY libs/ libs/
COPY services/ services/
# The binaries and migrations go to /out/usr/local (share/adinsights/<service>/migrations is the
# MIGRATIONS_DIR layout adi-admin reads); /out/runtime-packages lists the Debian packages of every
# shared library they load.
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DADI_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" \
    && cmake --install /build --prefix /out/usr/local --strip \
    && for f in /out/usr/local/bin/adi-*; do ldd "$f"; done \
        | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u \
        | while read -r lib; do \
            dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")"; \
        done \
        | cut -d: -f1 | sort -u > /out/runtime-packages \
    && test -s /out/runtime-packages

FROM debian:12-slim AS runtime
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update \
    && xargs -a /tmp/runtime-packages apt-get install -y --no-install-recommends \
        ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
    && groupadd --system --gid 10001 adi \
    && useradd --system --uid 10001 --gid adi --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin adi
ENV OPS_HOST=0.0.0.0 \
    LOG_LEVEL=info
USER 10001:10001
WORKDIR /

FROM runtime AS gateway
COPY --from=build /out/usr/local/bin/adi-gateway /usr/local/bin/adi-gateway
ENV HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8000 \
    OPS_PORT=9100
EXPOSE 8000 9100
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${OPS_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/adi-gateway"]

FROM runtime AS auth
COPY --from=build /out/usr/local/bin/adi-auth /usr/local/bin/adi-auth
ENV OPS_PORT=9101
EXPOSE 9101
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${OPS_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/adi-auth"]

FROM runtime AS tenant
COPY --from=build /out/usr/local/bin/adi-tenant /usr/local/bin/adi-tenant
ENV OPS_PORT=9102
EXPOSE 9102
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${OPS_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/adi-tenant"]

FROM runtime AS vault
COPY --from=build /out/usr/local/bin/adi-vault /usr/local/bin/adi-vault
ENV OPS_PORT=9103
EXPOSE 9103
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${OPS_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/adi-vault"]

FROM runtime AS task-runner
COPY --from=build /out/usr/local/bin/adi-task-runner /usr/local/bin/adi-task-runner
ENV OPS_PORT=9104
EXPOSE 9104
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${OPS_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/adi-task-runner"]

# The operators' CLI; its default command is what the migration Job and compose's "migrate" run.
FROM runtime AS admin
COPY --from=build /out/usr/local/bin/adi-admin /usr/local/bin/adi-admin
COPY --from=build /out/usr/local/share/adinsights /usr/local/share/adinsights
ENV MIGRATIONS_DIR=/usr/local/share/adinsights
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/adi-admin"]
CMD ["migrate"]
