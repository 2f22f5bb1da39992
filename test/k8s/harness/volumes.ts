/**
 * The pod runner's volumes: each volume of a pod becomes a local directory, as the kubelet would
 * mount it. A PersistentVolumeClaim is the directory of the volume it is bound to (so data
 * outlives the pod and a new claim starts empty); secret, configMap, downwardAPI and projected
 * volumes are written out (service-account tokens from the TokenRequest API); emptyDir lives as
 * long as the pod. Written once per container start; later changes of a secret are not synced.
 */
import type { CoreV1Api, V1Container, V1KeyToPath, V1Pod, V1Volume, V1VolumeProjection } from '@kubernetes/client-node'
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { expand, LaunchError } from './pod-spec.js'

export interface VolumeContext {
  core: CoreV1Api
  pod: V1Pod
  podDir: string
  /** A token for the pod's service account, bound to the pod. */
  token: (audience: string | undefined, expirationSeconds: number | undefined) => Promise<string>
  caPem: string
  /** The local directory behind a PersistentVolume (the provisioner's, or a hostPath's). */
  persistentVolumeDir: (pvName: string) => Promise<string | undefined>
}

/** Where the kubelet mounts the service-account token of a pod. */
export const SA_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount'

async function readOrUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined
    throw err
  }
}

/** Writes files of a secret or configMap (all keys, or the listed items) under `dir`. */
function writeItems(dir: string, data: Record<string, Buffer>, items: V1KeyToPath[] | undefined, mode: number | undefined, what: string): void {
  const entries = items?.length
    ? items.map((it) => {
        if (!(it.key in data)) throw new LaunchError('ContainerCreating', `${what} has no key "${it.key}"`)
        return [it.path, data[it.key]!, it.mode] as const
      })
    : Object.entries(data).map(([k, v]) => [k, v, undefined] as const)
  for (const [path, value, itemMode] of entries) {
    const file = join(dir, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, value)
    chmodSync(file, itemMode ?? mode ?? 0o644)
  }
}

async function sourceData(ctx: VolumeContext, kind: 'secret' | 'configMap', name: string): Promise<Record<string, Buffer> | undefined> {
  const namespace = ctx.pod.metadata!.namespace!
  if (kind === 'secret') {
    const s = await readOrUndefined(ctx.core.readNamespacedSecret({ name, namespace }))
    return s && Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]))
  }
  const c = await readOrUndefined(ctx.core.readNamespacedConfigMap({ name, namespace }))
  return c && {
    ...Object.fromEntries(Object.entries(c.data ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
    ...Object.fromEntries(Object.entries(c.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  }
}

function downwardValue(pod: V1Pod, fieldPath: string): string {
  const meta = pod.metadata ?? {}
  const asLines = (m: Record<string, string> | undefined) => Object.entries(m ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join('\n')
  switch (fieldPath) {
    case 'metadata.name': return meta.name ?? ''
    case 'metadata.namespace': return meta.namespace ?? ''
    case 'metadata.uid': return meta.uid ?? ''
    case 'metadata.labels': return asLines(meta.labels)
    case 'metadata.annotations': return asLines(meta.annotations)
    default: throw new LaunchError('ContainerCreating', `downwardAPI field ${fieldPath} is not simulated`)
  }
}

async function writeProjection(ctx: VolumeContext, dir: string, src: V1VolumeProjection, mode: number | undefined): Promise<void> {
  if (src.serviceAccountToken) {
    const t = src.serviceAccountToken
    writeItems(dir, { [t.path]: Buffer.from(await ctx.token(t.audience, t.expirationSeconds)) }, undefined, mode ?? 0o600, 'token')
  } else if (src.secret || src.configMap) {
    const kind = src.secret ? 'secret' : 'configMap'
    const ref = (src.secret ?? src.configMap)!
    const data = await sourceData(ctx, kind, ref.name!)
    if (!data) {
      if (ref.optional) return
      throw new LaunchError('ContainerCreating', `${kind} "${ref.name}" not found`)
    }
    writeItems(dir, data, ref.items, mode, `${kind} "${ref.name}"`)
  } else if (src.downwardAPI) {
    const data = Object.fromEntries((src.downwardAPI.items ?? []).map((it) => [it.path, Buffer.from(downwardValue(ctx.pod, it.fieldRef?.fieldPath ?? ''))]))
    writeItems(dir, data, undefined, mode, 'downwardAPI')
  }
}

/** Makes the local directory of one volume. */
async function prepareVolume(ctx: VolumeContext, v: V1Volume): Promise<string> {
  const dir = join(ctx.podDir, 'volumes', v.name)
  if (v.persistentVolumeClaim) {
    const claim = v.persistentVolumeClaim.claimName
    const pvc = await readOrUndefined(ctx.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ctx.pod.metadata!.namespace! }))
    if (!pvc) throw new LaunchError('ContainerCreating', `persistentvolumeclaim "${claim}" not found`)
    const pv = pvc.spec?.volumeName
    if (!pv || pvc.status?.phase !== 'Bound') throw new LaunchError('ContainerCreating', `persistentvolumeclaim "${claim}" is not bound`)
    const local = await ctx.persistentVolumeDir(pv)
    if (!local) throw new LaunchError('ContainerCreating', `persistentvolume "${pv}" has no local directory (only hostPath/local volumes are simulated)`)
    mkdirSync(local, { recursive: true })
    return local
  }
  if (v.hostPath) return v.hostPath.path
  if (v.emptyDir) {
    mkdirSync(dir, { recursive: true })
    return dir
  }
  // Generated content is rewritten from scratch, as the kubelet's atomic writer would show it.
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  if (v.secret || v.configMap) {
    const kind = v.secret ? 'secret' : 'configMap'
    const name = (v.secret?.secretName ?? v.configMap?.name)!
    const data = await sourceData(ctx, kind, name)
    if (!data) {
      if (v.secret?.optional ?? v.configMap?.optional) return dir
      throw new LaunchError('ContainerCreating', `${kind} "${name}" not found`)
    }
    writeItems(dir, data, (v.secret ?? v.configMap)!.items, (v.secret ?? v.configMap)!.defaultMode, `${kind} "${name}"`)
    return dir
  }
  if (v.projected) {
    for (const src of v.projected.sources ?? []) await writeProjection(ctx, dir, src, v.projected.defaultMode)
    return dir
  }
  if (v.downwardAPI) {
    await writeProjection(ctx, dir, { downwardAPI: v.downwardAPI }, v.downwardAPI.defaultMode)
    return dir
  }
  throw new LaunchError('ContainerCreating', `volume "${v.name}": this volume type is not simulated by the pod runner`)
}

/** Local directory of every volume of the pod, by volume name. */
export async function prepareVolumes(ctx: VolumeContext): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const v of ctx.pod.spec?.volumes ?? []) out[v.name] = await prepareVolume(ctx, v)
  return out
}

/** mountPath → local path, for one container's volumeMounts. */
export function containerMounts(container: V1Container, volumeDirs: Record<string, string>, vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of container.volumeMounts ?? []) {
    const base = volumeDirs[m.name]
    if (!base) throw new LaunchError('CreateContainerConfigError', `volumeMount "${m.name}" names no volume`)
    const sub = m.subPathExpr ? expand(m.subPathExpr, vars) : m.subPath
    const local = sub ? join(base, sub) : base
    if (sub && !existsSync(local)) mkdirSync(local, { recursive: true })
    out[m.mountPath] = local
  }
  return out
}
