/**
 * Cluster DNS for processes the pod runner starts, loaded with `node --import`. It answers names
 * under `svc.cluster.local` (with a pod's search path, so `demo-0.demo-peers.default.svc` and
 * `demo-peers` work too) from a table the runner keeps in the file $RINGKV_TEST_DNS_FILE, and
 * passes every other name to the real resolver. The program itself runs unchanged: it calls
 * dns.lookup / dns.resolve4 as it would in a pod, and net, http and undici go through lookup.
 * Test-only code: nothing in the product imports it.
 */
import dns from 'node:dns'
import { readFileSync, statSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { clusterLookup } from './dns-table.js'

type Table = Record<string, string[]>
type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string | dns.LookupAddress[], family?: number) => void

const file = process.env.RINGKV_TEST_DNS_FILE
const namespace = process.env.RINGKV_TEST_DNS_NAMESPACE || 'default'
let cached: { version: string; table: Table } = { version: '', table: {} }

function table(): Table {
  if (!file) return {}
  try {
    // The runner replaces the file by rename: a new inode is a new table.
    const st = statSync(file)
    const version = `${st.ino}:${st.mtimeMs}`
    if (version !== cached.version) cached = { version, table: JSON.parse(readFileSync(file, 'utf8')) as Table }
  } catch {
    // No table yet, or a torn read: keep the last one.
  }
  return cached.table
}

function clusterAddresses(name: string): string[] | undefined {
  return clusterLookup(name, namespace, table())
}

function notFound(syscall: string, hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', errno: -3008, syscall, hostname })
}

type LookupOptions = { family?: number | string; all?: boolean } | number | undefined

function answer(hostname: string, options: LookupOptions): { err?: NodeJS.ErrnoException; all?: dns.LookupAddress[]; one?: string } | undefined {
  const addrs = clusterAddresses(hostname)
  if (addrs === undefined) return undefined
  const opts = typeof options === 'number' ? { family: options } : options ?? {}
  const wantV6 = opts.family === 6 || opts.family === 'IPv6'
  if (!addrs.length || wantV6) return { err: notFound('getaddrinfo', hostname) }
  if (opts.all) return { all: addrs.map((address) => ({ address, family: 4 })) }
  return { one: addrs[0] }
}

const realLookup = dns.lookup
const patchedLookup = function lookup(hostname: string, options: unknown, callback?: unknown): void {
  const cb = (typeof options === 'function' ? options : callback) as LookupCallback
  const opts = (typeof options === 'function' ? undefined : options) as LookupOptions
  const a = answer(hostname, opts)
  if (!a) return (realLookup as (...args: unknown[]) => void)(hostname, ...(typeof options === 'function' ? [options] : [options, callback]))
  process.nextTick(() => {
    if (a.err) cb(a.err)
    else if (a.all) cb(null, a.all)
    else cb(null, a.one, 4)
  })
}
dns.lookup = patchedLookup as typeof dns.lookup

const realPromiseLookup = dns.promises.lookup
dns.promises.lookup = (async (hostname: string, options?: LookupOptions) => {
  const a = answer(hostname, options)
  if (!a) return (realPromiseLookup as (h: string, o?: unknown) => Promise<unknown>)(hostname, options)
  if (a.err) throw a.err
  return a.all ?? { address: a.one, family: 4 }
}) as typeof dns.promises.lookup

/** resolve4 / resolve(name, 'A') on the module, its promises API and their Resolver classes. */
function patchResolve(target: Record<string, unknown>, promises: boolean): void {
  const real4 = target.resolve4 as (...args: unknown[]) => unknown
  const realAny = target.resolve as (...args: unknown[]) => unknown
  const reply = (hostname: string): string[] | NodeJS.ErrnoException | undefined => {
    const addrs = clusterAddresses(hostname)
    if (addrs === undefined) return undefined
    return addrs.length ? addrs : notFound('queryA', hostname)
  }
  const finish = (r: string[] | NodeJS.ErrnoException, cb?: (e: unknown, a?: string[]) => void): unknown => {
    if (promises) return r instanceof Error ? Promise.reject(r) : Promise.resolve(r)
    process.nextTick(() => (r instanceof Error ? cb!(r) : cb!(null, r)))
    return undefined
  }
  target.resolve4 = function (this: unknown, hostname: string, ...rest: unknown[]) {
    const r = reply(hostname)
    if (!r || (rest[0] && typeof rest[0] === 'object' && (rest[0] as { ttl?: boolean }).ttl)) return real4.call(this, hostname, ...rest)
    return finish(r, rest[rest.length - 1] as (e: unknown, a?: string[]) => void)
  }
  target.resolve = function (this: unknown, hostname: string, ...rest: unknown[]) {
    const rrtype = typeof rest[0] === 'string' ? rest[0] : 'A'
    const r = rrtype === 'A' ? reply(hostname) : undefined
    if (!r) return realAny.call(this, hostname, ...rest)
    return finish(r, rest[rest.length - 1] as (e: unknown, a?: string[]) => void)
  }
}
patchResolve(dns as unknown as Record<string, unknown>, false)
patchResolve(dns.promises as unknown as Record<string, unknown>, true)
patchResolve(dns.Resolver.prototype as unknown as Record<string, unknown>, false)
patchResolve(dns.promises.Resolver.prototype as unknown as Record<string, unknown>, true)
// Named ESM imports (`import { lookup } from 'node:dns'`) see the patched functions too.
syncBuiltinESMExports()
