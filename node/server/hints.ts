import type { Logger } from '../log.js'
import type { ClusterView } from '../membership/view.js'
import { decodeRecord, encodeRecord } from '../storage/codec.js'
import type { Store } from '../storage/store.js'
import type { Transport } from '../transport/index.js'
import { MSG } from './replica-rpc.js'

export const MSG_TAKE_HINTS = 'hints.take'

export interface HintDeliveryOptions {
  store: Store
  transport: Transport
  view: ClusterView
  log: Logger
  onDelivered(): void
}

/**
 * Replays stored hints to replicas that are up again, oldest first, one target at a time per
 * round; a delivered or expired hint is deleted. Hints never count towards a consistency level:
 * they only bring a replica back up to date sooner than repair would.
 */
export class HintDelivery {
  private running = false

  constructor(private readonly o: HintDeliveryOptions) {
    o.transport.on<{ target: string; key: Buffer; rec: Buffer; expiresAt: number }[]>(MSG_TAKE_HINTS, async (hints) => {
      for (const h of hints) await o.store.addHint(h.target, h.key, decodeRecord(h.rec), h.expiresAt)
      return { taken: hints.length }
    })
  }

  /** One delivery round for every target that is up. */
  async deliverDue(): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      for (const target of this.o.store.hintTargets()) {
        const m = this.o.view.member(target)
        if (m && m.up && m.state !== 'LEFT') await this.deliverTo(target, m.address)
        else if (!m || m.state === 'LEFT') await this.drop(target, m ? Infinity : Date.now())
      }
    } finally {
      this.running = false
    }
  }

  private async deliverTo(target: string, address: string): Promise<void> {
    const { store, transport, log } = this.o
    let sent = 0
    const now = Date.now()
    for await (const h of store.hintsFor(target)) {
      if (h.expiresAt <= now) {
        await store.deleteHint(h.id)
        continue
      }
      try {
        await transport.request(address, MSG.apply, { key: h.key, rec: encodeRecord(h.rec), to: target }, { timeoutMs: 5000 })
      } catch (e) {
        log.debug({ err: e, target }, 'hint delivery paused; replica not answering')
        return
      }
      await store.deleteHint(h.id)
      this.o.onDelivered()
      sent++
    }
    if (sent) log.info({ target, delivered: sent }, 'hints delivered')
  }

  /**
   * Drops the hints for `target` that expire before `until`: the expired ones of a member we do
   * not know, all of a LEFT one (its ranges were streamed to their new owners, which also got
   * every write made while it was leaving; a replaced member's replacement streamed them).
   */
  private async drop(target: string, until: number): Promise<void> {
    for await (const h of this.o.store.hintsFor(target)) if (h.expiresAt <= until) await this.o.store.deleteHint(h.id)
  }

  /**
   * Before this node leaves or shuts down: deliver what can be delivered now, and give the rest
   * to another live node so no hint dies with this one.
   */
  async handOff(): Promise<void> {
    await this.deliverDue()
    const { store, transport, view, log } = this.o
    const heir = view.all().find((m) => m.hostId !== view.selfId && m.up && m.state === 'AVAILABLE')
    if (!heir || store.countHints() === 0) return
    for (const target of store.hintTargets()) {
      let batch: { target: string; key: Buffer; rec: Buffer; expiresAt: number }[] = []
      let ids: Buffer[] = []
      const flush = async () => {
        if (!batch.length) return
        await transport.request(heir.address, MSG_TAKE_HINTS, batch, { timeoutMs: 30_000 })
        for (const id of ids) await store.deleteHint(id)
        batch = []
        ids = []
      }
      for await (const h of store.hintsFor(target)) {
        if (target === heir.hostId) {
          await transport.request(heir.address, MSG.apply, { key: h.key, rec: encodeRecord(h.rec), to: heir.hostId }, { timeoutMs: 5000 })
          await store.deleteHint(h.id)
          continue
        }
        batch.push({ target, key: h.key, rec: encodeRecord(h.rec), expiresAt: h.expiresAt })
        ids.push(h.id)
        if (batch.length >= 256) await flush()
      }
      await flush()
    }
    log.info({ heir: heir.name, left: store.countHints() }, 'hints handed off')
  }
}
