import type { Logger } from '../log.js'
import type { ClusterView } from '../membership/view.js'
import type { Store } from '../storage/store.js'
import type { Transport } from '../transport/index.js'

export interface RepairerOptions {
  hostId: string
  rf: number
  store: Store
  transport: Transport
  view: ClusterView
  log: Logger
  onBytes(n: number): void
}

/** Anti-entropy repair of this node's ranges (being built: Merkle trees per range). */
export class Repairer {
  constructor(private readonly o: RepairerOptions) {}

  register(): void {}

  async repairAll(): Promise<void> {
    this.o.log.debug('repair not built yet')
  }
}
