import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'

export interface Seeds {
  /** seed addresses other than this node */
  peers: string[]
  /** this node is one of its own seeds (or there are none): it may found a new cluster */
  selfIsSeed: boolean
}

/** host:port → every ip:port it stands for (an IP stands for itself). */
async function addressesOf(entry: string): Promise<string[]> {
  const i = entry.lastIndexOf(':')
  const host = entry.slice(0, i).replace(/^\[|\]$/g, '')
  const port = entry.slice(i + 1)
  const fmt = (a: string, v6: boolean) => (v6 ? `[${a}]:${port}` : `${a}:${port}`)
  if (isIP(host)) return [fmt(host, isIP(host) === 6)]
  try {
    return (await lookup(host, { all: true })).map((a) => fmt(a.address, a.family === 6))
  } catch {
    // not resolvable right now (pods not yet published); tried again next round
    return []
  }
}

/**
 * Expands seed entries: an IP stays one seed, a DNS name becomes one seed per address it
 * resolves to (the headless service of a StatefulSet resolves to every pod).
 */
export async function expandSeeds(seeds: readonly string[], self: string): Promise<Seeds> {
  const [mine, ...lists] = await Promise.all([addressesOf(self), ...seeds.map(addressesOf)])
  const all = new Set(lists.flat())
  const selfAddrs = new Set([self, ...mine!])
  const selfIsSeed = seeds.length === 0 || seeds.includes(self) || [...selfAddrs].some((a) => all.has(a))
  for (const a of selfAddrs) all.delete(a)
  return { peers: [...all].sort(), selfIsSeed }
}
