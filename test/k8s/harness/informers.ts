/**
 * Informers that keep running: client-node's informer re-lists on 410 Gone by itself but stops on
 * any other error, so this restarts it with backoff. Handlers get only the object's key; they
 * read the cache, so a missed or repeated event changes nothing (level-triggered).
 */
import { makeInformer, type KubeConfig, type KubernetesObject, type KubernetesListObject, type Informer, type ObjectCache } from '@kubernetes/client-node'

export type Key = string

export function keyOf(obj: KubernetesObject): Key {
  const ns = obj.metadata?.namespace
  return ns ? `${ns}/${obj.metadata?.name}` : String(obj.metadata?.name)
}

export class Watched<T extends KubernetesObject> {
  private readonly informer: Informer<T> & ObjectCache<T>
  private stopped = false
  private backoffMs = 200
  private timer: NodeJS.Timeout | undefined
  private readonly byKey = new Map<Key, T>()

  constructor(
    kc: KubeConfig,
    path: string,
    list: () => Promise<KubernetesListObject<T>>,
    private readonly onChange: (key: Key, obj: T | undefined) => void,
  ) {
    this.informer = makeInformer(kc, path, list)
    const changed = (obj: T) => {
      const key = keyOf(obj)
      this.byKey.set(key, obj)
      this.onChange(key, obj)
    }
    this.informer.on('add', changed)
    this.informer.on('update', changed)
    this.informer.on('delete', (obj) => {
      const key = keyOf(obj)
      this.byKey.delete(key)
      this.onChange(key, undefined)
    })
    this.informer.on('connect', () => {
      this.backoffMs = 200
    })
    this.informer.on('error', () => {
      if (this.stopped) return
      this.timer = setTimeout(() => void this.start().catch(() => undefined), this.backoffMs)
      this.backoffMs = Math.min(this.backoffMs * 2, 5_000)
    })
  }

  /** Starts (or restarts) the informer; resolves after its first list. */
  async start(): Promise<void> {
    if (this.stopped) return
    await this.informer.start()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.informer.stop()
  }

  get(key: Key): T | undefined {
    return this.byKey.get(key)
  }

  list(): T[] {
    return [...this.byKey.values()]
  }
}
