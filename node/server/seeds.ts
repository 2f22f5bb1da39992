import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'

/**
 * Expands seed entries: an IP stays one seed, a DNS name becomes one seed per address it
 * resolves to (the headless service of a StatefulSet resolves to every pod). A name that does
 * not resolve yet (pods not yet published) is skipped this round and tried again next round.
 */
export async function expandSeeds(seeds: readonly string[], self: string): Promise<string[]> {
  const out = new Set<string>()
  await Promise.all(
    seeds.map(async (s) => {
      const i = s.lastIndexOf(':')
      const host = s.slice(0, i).replace(/^\[|\]$/g, '')
      const port = s.slice(i + 1)
      if (isIP(host)) {
        out.add(isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`)
        return
      }
      try {
        for (const a of await lookup(host, { all: true })) out.add(a.family === 6 ? `[${a.address}]:${port}` : `${a.address}:${port}`)
      } catch {
        // not resolvable right now
      }
    }),
  )
  out.delete(self)
  return [...out].sort()
}
