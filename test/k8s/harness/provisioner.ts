/**
 * Storage for the pod runner's pods, as a local-path provisioner would give it: a default
 * StorageClass, and for every unbound claim a PersistentVolume of type hostPath, pre-bound to
 * the claim, whose path is a fresh directory. The controller-manager's persistentvolume-binder
 * then binds the pair. When a claim is deleted its volume becomes Released; under the Delete
 * reclaim policy the directory and the volume are removed, under Retain both stay.
 */
import {
  CoreV1Api,
  StorageV1Api,
  type KubeConfig,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
} from '@kubernetes/client-node'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { keyOf, Watched } from './informers.js'

export const PROVISIONER = 'ringkv.io/pod-runner'
const PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by'
/** A failed API call is tried again this often, this many times in all: events do not repeat. */
const RETRY_MS = 1_000
const ATTEMPTS = 5

export class Provisioner {
  private readonly core: CoreV1Api
  private readonly storage: StorageV1Api
  private readonly claims: Watched<V1PersistentVolumeClaim>
  private readonly volumes: Watched<V1PersistentVolume>
  private readonly busy = new Set<string>()
  private readonly retries = new Set<NodeJS.Timeout>()
  private stopped = false

  constructor(
    kc: KubeConfig,
    /** Volumes live in `<dir>/<pv name>`. */
    private readonly dir: string,
    readonly storageClass = 'standard',
  ) {
    this.core = kc.makeApiClient(CoreV1Api)
    this.storage = kc.makeApiClient(StorageV1Api)
    this.claims = new Watched(kc, '/api/v1/persistentvolumeclaims', () => this.core.listPersistentVolumeClaimForAllNamespaces(), (_k, pvc) => {
      if (pvc) void this.provision(pvc)
    })
    this.volumes = new Watched(kc, '/api/v1/persistentvolumes', () => this.core.listPersistentVolume(), (_k, pv) => {
      if (pv) void this.reclaim(pv)
    })
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true })
    await this.storage
      .createStorageClass({
        body: {
          metadata: { name: this.storageClass, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
          provisioner: PROVISIONER,
          reclaimPolicy: 'Delete',
          volumeBindingMode: 'Immediate',
        },
      })
      .catch((err: { code?: number }) => {
        if (err.code !== 409) throw err
      })
    await Promise.all([this.claims.start(), this.volumes.start()])
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.retries) clearTimeout(t)
    this.retries.clear()
    await Promise.all([this.claims.stop(), this.volumes.stop()])
  }

  /** The local directory of a volume this provisioner made, or of a hostPath/local volume. */
  async volumeDir(pvName: string): Promise<string | undefined> {
    const pv = this.volumes.get(pvName) ?? (await this.core.readPersistentVolume({ name: pvName }))
    return pv.spec?.hostPath?.path ?? pv.spec?.local?.path
  }

  private async provision(pvc: V1PersistentVolumeClaim, attempt = 1): Promise<void> {
    const cls = pvc.spec?.storageClassName
    // Claims for this class, and claims for no class ("" = static binding only): nothing else
    // on this cluster would ever satisfy them.
    if (pvc.spec?.volumeName || pvc.status?.phase !== 'Pending' || pvc.metadata?.deletionTimestamp) return
    if (cls !== undefined && cls !== '' && cls !== this.storageClass) return
    const name = `pvc-${pvc.metadata!.uid}`
    if (this.busy.has(name) || this.volumes.get(name)) return
    this.busy.add(name)
    try {
      const path = join(this.dir, name)
      mkdirSync(path, { recursive: true })
      await this.core.createPersistentVolume({
        body: {
          metadata: { name, annotations: { [PROVISIONED_BY]: PROVISIONER } },
          spec: {
            capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '1Gi' },
            accessModes: pvc.spec?.accessModes ?? ['ReadWriteOnce'],
            volumeMode: pvc.spec?.volumeMode ?? 'Filesystem',
            persistentVolumeReclaimPolicy: cls === '' ? 'Retain' : 'Delete',
            storageClassName: cls ?? this.storageClass,
            hostPath: { path, type: 'DirectoryOrCreate' },
            claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata!.namespace, name: pvc.metadata!.name, uid: pvc.metadata!.uid },
          },
        },
      })
    } catch (err) {
      if ((err as { code?: number }).code !== 409) {
        this.retryLater(`provisioning ${keyOf(pvc)}`, attempt, err, () => {
          const now = this.claims.get(keyOf(pvc))
          if (now) void this.provision(now, attempt + 1)
        })
      }
    } finally {
      this.busy.delete(name)
    }
  }

  private async reclaim(pv: V1PersistentVolume, attempt = 1): Promise<void> {
    const name = pv.metadata!.name!
    if (pv.metadata?.annotations?.[PROVISIONED_BY] !== PROVISIONER) return
    if (pv.status?.phase !== 'Released' || pv.spec?.persistentVolumeReclaimPolicy !== 'Delete' || this.busy.has(name)) return
    this.busy.add(name)
    try {
      if (pv.spec?.hostPath?.path) rmSync(pv.spec.hostPath.path, { recursive: true, force: true })
      await this.core.deletePersistentVolume({ name })
    } catch (err) {
      if ((err as { code?: number }).code !== 404) {
        this.retryLater(`reclaiming ${name}`, attempt, err, () => {
          const now = this.volumes.get(name)
          if (now) void this.reclaim(now, attempt + 1)
        })
      }
    } finally {
      this.busy.delete(name)
    }
  }

  /**
   * After a failed attempt (say a transient apiserver error), tries again from the cache's
   * current object, which the handler re-checks: a claim bound or a volume deleted meanwhile
   * needs nothing more.
   */
  private retryLater(what: string, attempt: number, err: unknown, again: () => void): void {
    const last = attempt >= ATTEMPTS || this.stopped
    process.stderr.write(`[pod-runner] ${what} (attempt ${attempt} of ${ATTEMPTS}): ${(err as Error).message}${last ? '; giving up' : `; retrying in ${RETRY_MS} ms`}\n`)
    if (last) return
    const t = setTimeout(() => {
      this.retries.delete(t)
      if (!this.stopped) again()
    }, RETRY_MS)
    this.retries.add(t)
  }
}
