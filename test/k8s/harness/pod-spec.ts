/**
 * Turns one container of a pod spec into a local process launch, as a kubelet and a container
 * runtime would have run it: the image's entrypoint (from a table of images the runner can run
 * locally), env resolved (fieldRef, secretKeyRef, configMapKeyRef, envFrom, $(VAR) expansion),
 * mount paths replaced by the local directories that stand for the volumes, and the listen and
 * dial addresses of known flags moved to the pod's loopback address.
 */
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node'
import { basename } from 'node:path'

/** A flag whose value is an address: `bind` ones move to the pod IP, `dial` ones are resolved. */
export interface AddressFlag {
  flag: string
  env: string
  kind: 'bind' | 'dial'
  /** Value when neither flag nor env var is given; computed after the bind addresses. */
  fallback?: (ctx: { podIP: string; bound: Record<string, string> }) => string | undefined
}

export interface ImageProfile {
  /** e.g. `ringkv` — matches `ringkv:0.1.0`, `ghcr.io/x/ringkv@sha256:…` */
  repository: string
  /** The image's entrypoint as a local command. */
  entrypoint: string[]
  /** Container path → local path, for paths inside the image that commands name (its WORKDIR). */
  paths?: Record<string, string>
  /** Address flags, applied when `applies(args)` (default: always). */
  addressFlags?: AddressFlag[]
  addressFlagsApply?: (args: string[]) => boolean
}

/** The ringkv image: `ringkv <subcommand> …` runs the repo's built CLI. */
export function ringkvProfile(repoRoot: string, nodeBinary = process.execPath): ImageProfile {
  return {
    repository: 'ringkv',
    entrypoint: [nodeBinary, `${repoRoot}/dist/node/cli/main.js`],
    paths: { '/app': repoRoot },
    addressFlagsApply: (args) => args[0] === 'node',
    addressFlags: [
      { flag: 'listen', env: 'RINGKV_LISTEN', kind: 'bind', fallback: () => '0.0.0.0:8080' },
      { flag: 'peer-listen', env: 'RINGKV_PEER_LISTEN', kind: 'bind', fallback: () => '0.0.0.0:7000' },
      // The node's own default (its hostname) is not resolvable here, nor in a real pod.
      { flag: 'advertise', env: 'RINGKV_ADVERTISE', kind: 'dial', fallback: ({ bound }) => bound['peer-listen'] },
      { flag: 'seeds', env: 'RINGKV_SEEDS', kind: 'dial' },
    ],
  }
}

/** The repository part of an image reference: no registry path, tag or digest. */
export function imageRepository(image: string): string {
  const noDigest = image.split('@')[0]!
  const last = noDigest.split('/').pop()!
  return last.split(':')[0]!
}

export interface LaunchContext {
  pod: V1Pod
  podIP: string
  hostIP: string
  profiles: ImageProfile[]
  /** mountPath → local directory, for this container's mounts. */
  mounts: Record<string, string>
  /** Resolved values for secretKeyRef / configMapKeyRef / envFrom (fetched by the caller). */
  lookupKey: (kind: 'secret' | 'configMap', name: string, key: string) => string | undefined
  lookupAll: (kind: 'secret' | 'configMap', name: string) => Record<string, string> | undefined
  /** Maps this pod's container port to the local port it binds. */
  bindPort: (port: number) => number
  /** Resolves a dialled host:port (pod or service DNS name) to local addresses, or undefined to keep it. */
  dial: (host: string, port: number) => string[] | undefined
  /** Extra environment (HOSTNAME, KUBERNETES_SERVICE_*, KUBECONFIG, the DNS shim's). */
  baseEnv: Record<string, string>
}

export interface Launch {
  command: string
  args: string[]
  env: Record<string, string>
  cwd?: string
  /** The local addresses the address flags were given, by flag (e.g. listen → 127.1.0.2:8080). */
  bound: Record<string, string>
}

export class LaunchError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

/** `$(VAR)` expansion as the kubelet does it: known names replaced, `$$` escapes, others left. */
export function expand(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name?: string) => {
    if (m === '$$') return '$'
    return name !== undefined && name in vars ? vars[name]! : m
  })
}

function fieldValue(pod: V1Pod, path: string, podIP: string, hostIP: string): string {
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path)
  if (labelOrAnnotation) {
    const map = (labelOrAnnotation[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations) ?? {}
    return map[labelOrAnnotation[2]!] ?? ''
  }
  switch (path) {
    case 'metadata.name': return pod.metadata?.name ?? ''
    case 'metadata.namespace': return pod.metadata?.namespace ?? ''
    case 'metadata.uid': return pod.metadata?.uid ?? ''
    case 'spec.nodeName': return pod.spec?.nodeName ?? ''
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? ''
    case 'status.podIP': case 'status.podIPs': return podIP
    case 'status.hostIP': case 'status.hostIPs': return hostIP
    default: throw new LaunchError('CreateContainerConfigError', `unsupported fieldRef ${path}`)
  }
}

/** The container's environment: envFrom first, then env in order, each seeing those before it. */
export function resolveEnv(container: V1Container, ctx: LaunchContext): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const src of container.envFrom ?? []) {
    const ref = src.configMapRef ?? src.secretRef
    const kind = src.configMapRef ? 'configMap' : 'secret'
    const all = ref?.name ? ctx.lookupAll(kind, ref.name) : undefined
    if (!all) {
      if (ref?.optional) continue
      throw new LaunchError('CreateContainerConfigError', `${kind} "${ref?.name}" not found`)
    }
    for (const [k, v] of Object.entries(all)) vars[(src.prefix ?? '') + k] = v
  }
  for (const e of container.env ?? []) vars[e.name] = envValue(e, vars, ctx)
  return vars
}

function envValue(e: V1EnvVar, vars: Record<string, string>, ctx: LaunchContext): string {
  if (!e.valueFrom) return expand(e.value ?? '', vars)
  const { fieldRef, secretKeyRef, configMapKeyRef, resourceFieldRef } = e.valueFrom
  if (fieldRef) return fieldValue(ctx.pod, fieldRef.fieldPath, ctx.podIP, ctx.hostIP)
  const keyRef = secretKeyRef ?? configMapKeyRef
  if (keyRef) {
    const kind = secretKeyRef ? 'secret' : 'configMap'
    const v = keyRef.name ? ctx.lookupKey(kind, keyRef.name, keyRef.key) : undefined
    if (v === undefined && !keyRef.optional) {
      throw new LaunchError('CreateContainerConfigError', `${kind} "${keyRef.name}" has no key "${keyRef.key}"`)
    }
    return v ?? ''
  }
  if (resourceFieldRef) throw new LaunchError('CreateContainerConfigError', `resourceFieldRef (${e.name}) is not simulated`)
  return ''
}

/** Replaces container paths (mounts, image paths) in a value with their local directories. */
export function localPaths(value: string, paths: Record<string, string>): string {
  // Longest first, so /data/x wins over /data; a path matches only at a path boundary.
  const entries = Object.entries(paths).sort((a, b) => b[0].length - a[0].length)
  for (const [from, to] of entries) {
    const esc = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/$/, '')
    value = value.replace(new RegExp(`(^|[=:,\\s])${esc}(?=/|$|[,:\\s])`, 'g'), (_m, pre: string) => pre + to)
  }
  return value
}

function splitHostPort(v: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(v.trim())
  return m ? { host: m[1]!, port: Number(m[2]) } : undefined
}

/** A `bind` address moves to the pod IP, on the port the pod's mapping gives. */
function bindAddress(value: string, ctx: LaunchContext): string {
  const hp = splitHostPort(value)
  if (!hp) return value
  return `${ctx.podIP}:${ctx.bindPort(hp.port)}`
}

/** Each item of a `dial` list that names a pod or service becomes the local addresses behind it. */
function dialAddresses(value: string, ctx: LaunchContext): string {
  return value
    .split(',')
    .flatMap((item) => {
      const hp = splitHostPort(item)
      if (!hp) return [item]
      return ctx.dial(hp.host, hp.port) ?? [item.trim()]
    })
    .join(',')
}

/** Finds `--flag value` / `--flag=value` in args; returns its index and value. */
function findFlag(args: string[], flag: string): { index: number; inline: boolean; value: string } | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === `--${flag}` && i + 1 < args.length) return { index: i + 1, inline: false, value: args[i + 1]! }
    if (a.startsWith(`--${flag}=`)) return { index: i, inline: true, value: a.slice(flag.length + 3) }
  }
  return undefined
}

export function buildLaunch(container: V1Container, ctx: LaunchContext): Launch {
  const profile = ctx.profiles.find((p) => p.repository === imageRepository(container.image ?? ''))
  if (!profile) {
    throw new LaunchError('ImageNotSupported', `the pod runner cannot run image "${container.image}" (known: ${ctx.profiles.map((p) => p.repository).join(', ')})`)
  }
  const vars = resolveEnv(container, ctx)
  const paths = { ...(profile.paths ?? {}), ...ctx.mounts }
  const env: Record<string, string> = { ...ctx.baseEnv }
  for (const [k, v] of Object.entries(vars)) env[k] = localPaths(v, paths)
  const cmd = (container.command ?? []).map((a) => localPaths(expand(a, vars), paths))
  const args = (container.args ?? []).map((a) => localPaths(expand(a, vars), paths))

  // The entrypoint: the image's when the spec names none or names the image's own program.
  let argv: string[]
  let programArgs: string[]
  if (cmd.length === 0 || basename(cmd[0]!) === profile.repository) {
    programArgs = [...cmd.slice(1), ...args]
    argv = [...profile.entrypoint, ...programArgs]
  } else if (basename(cmd[0]!) === 'node') {
    argv = [profile.entrypoint[0]!, ...cmd.slice(1), ...args]
    programArgs = argv.slice(2)
  } else {
    argv = [...cmd, ...args]
    programArgs = argv.slice(1)
  }

  const bound: Record<string, string> = {}
  if (profile.addressFlags && (profile.addressFlagsApply?.(programArgs) ?? true)) {
    const ordered = [...profile.addressFlags].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'bind' ? -1 : 1))
    for (const f of ordered) {
      const rewrite = (v: string) => (f.kind === 'bind' ? bindAddress(v, ctx) : dialAddresses(v, ctx))
      const inArgs = findFlag(argv, f.flag)
      if (inArgs) {
        const v = rewrite(inArgs.value)
        argv[inArgs.index] = inArgs.inline ? `--${f.flag}=${v}` : v
        bound[f.flag] = v
      } else if (env[f.env] !== undefined) {
        env[f.env] = rewrite(env[f.env]!)
        bound[f.flag] = env[f.env]!
      } else {
        const fallback = f.fallback?.({ podIP: ctx.podIP, bound })
        if (fallback !== undefined) {
          env[f.env] = rewrite(fallback)
          bound[f.flag] = env[f.env]!
        }
      }
    }
  }
  const cwd = container.workingDir ? localPaths(container.workingDir, paths) : undefined
  return { command: argv[0]!, args: argv.slice(1), env, cwd, bound }
}

/** The pod runner's own test image (test/k8s/fixtures/probe-server.ts). */
export function probeServerProfile(repoRoot: string, nodeBinary = process.execPath): ImageProfile {
  return {
    repository: 'ringkv-probe-server',
    entrypoint: [nodeBinary, `${repoRoot}/dist/test/k8s/fixtures/probe-server.js`],
    addressFlags: [{ flag: 'listen', env: 'PROBE_LISTEN', kind: 'bind', fallback: () => '0.0.0.0:8080' }],
  }
}
