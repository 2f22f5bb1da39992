/**
 * The cluster DNS records the pod runner serves to its pods (through dns-shim) and uses to map
 * dialled addresses: what CoreDNS would answer for the pods it runs.
 *  - `<hostname>.<subdomain>.<ns>.svc.cluster.local` → the pod's IP (StatefulSet pods under
 *    their headless service);
 *  - `<service>.<ns>.svc.cluster.local` → the IPs of the pods its selector picks: ready ones, or
 *    all of them with `publishNotReadyAddresses` (headless or not: no kube-proxy here, so a
 *    ClusterIP service also resolves straight to its pods, and its ports map to target ports).
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node'

export const CLUSTER_DOMAIN = 'cluster.local'

export interface DnsTable {
  records: Record<string, string[]>
  /** service FQDN → service port → target port number (for pods; named ports resolved). */
  servicePorts: Record<string, Record<number, number>>
}

export interface PodAddress {
  pod: V1Pod
  ip: string
  ready: boolean
}

function selects(selector: Record<string, string>, pod: V1Pod): boolean {
  const labels = pod.metadata?.labels ?? {}
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

function targetPort(svcPort: NonNullable<NonNullable<V1Service['spec']>['ports']>[number], pods: V1Pod[]): number {
  const t = svcPort.targetPort ?? svcPort.port
  if (typeof t === 'number' || /^\d+$/.test(String(t))) return Number(t)
  for (const p of pods) {
    for (const c of p.spec?.containers ?? []) {
      const named = c.ports?.find((cp) => cp.name === t)
      if (named) return named.containerPort
    }
  }
  return svcPort.port
}

export function buildDnsTable(pods: PodAddress[], services: V1Service[]): DnsTable {
  const records: Record<string, string[]> = {}
  const servicePorts: DnsTable['servicePorts'] = {}
  const add = (name: string, ip: string) => {
    const list = (records[name] ??= [])
    if (!list.includes(ip)) list.push(ip)
  }
  for (const { pod, ip } of pods) {
    const { hostname, subdomain } = pod.spec ?? {}
    if (hostname && subdomain) add(`${hostname}.${subdomain}.${pod.metadata!.namespace}.svc.${CLUSTER_DOMAIN}`, ip)
  }
  for (const svc of services) {
    const ns = svc.metadata!.namespace!
    const fqdn = `${svc.metadata!.name}.${ns}.svc.${CLUSTER_DOMAIN}`
    const selector = svc.spec?.selector
    if (!selector || !Object.keys(selector).length || svc.spec?.type === 'ExternalName') continue
    records[fqdn] ??= []
    const members = pods.filter((p) => p.pod.metadata!.namespace === ns && selects(selector, p.pod))
    const published = members.filter((p) => svc.spec?.publishNotReadyAddresses || (p.ready && !p.pod.metadata?.deletionTimestamp))
    for (const p of published) add(fqdn, p.ip)
    servicePorts[fqdn] = Object.fromEntries((svc.spec?.ports ?? []).map((sp) => [sp.port, targetPort(sp, members.map((m) => m.pod))]))
  }
  for (const list of Object.values(records)) list.sort()
  return { records, servicePorts }
}

function candidates(name: string, namespace: string): { n: string; list: string[] } {
  const n = name.toLowerCase().replace(/\.$/, '')
  // A pod's resolv.conf: search <ns>.svc.cluster.local svc.cluster.local cluster.local, ndots:5.
  const list = n.endsWith(`.${CLUSTER_DOMAIN}`) ? [n] : [`${n}.${namespace}.svc.${CLUSTER_DOMAIN}`, `${n}.svc.${CLUSTER_DOMAIN}`, `${n}.${CLUSTER_DOMAIN}`]
  return { n, list }
}

/** The FQDN a name means from inside a pod of `namespace`, if the table has it. */
export function qualify(name: string, namespace: string, records: Record<string, string[]>): string | undefined {
  return candidates(name, namespace).list.find((c) => c in records)
}

/**
 * What a pod of `namespace` gets for `name`: its addresses; [] when the name is a cluster name
 * without addresses (NXDOMAIN); undefined when it is not a cluster name (ask real DNS).
 */
export function clusterLookup(name: string, namespace: string, records: Record<string, string[]>): string[] | undefined {
  const { n, list } = candidates(name, namespace)
  const fqdn = list.find((c) => c in records)
  if (fqdn) return records[fqdn]!
  return n.endsWith(`.${CLUSTER_DOMAIN}`) || n.endsWith('.svc') ? [] : undefined
}
