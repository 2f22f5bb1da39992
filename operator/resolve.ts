/**
 * How the operator reaches a node pod. In a cluster, the pod's stable DNS name under the
 * headless service `<cluster>-peers` (design §3.4) does: `<pod>.<cluster>-peers.<ns>.svc`.
 * Tests that run the operator outside a cluster inject a resolver that maps the same pod to the
 * local address a stand-in kubelet gave it; nothing else in the operator changes.
 */

/** The node ports of design §3.1 (client API, peer RPC + admin API). */
export const NODE_PORTS = { client: 8080, peer: 7000 } as const

export type NodePort = keyof typeof NODE_PORTS

export interface NodePodRef {
  /** pod name, e.g. `demo-2` */
  name: string
  namespace: string
  /** the KVCluster's name, e.g. `demo` */
  clusterName: string
}

/** Base URL (`http://host:port`, no trailing slash) of one port of a node pod. */
export type NodeAddressResolver = (pod: NodePodRef, port: NodePort) => string

/** The pod's DNS name under the cluster's headless service. */
export function podDnsName(pod: NodePodRef): string {
  return `${pod.name}.${pod.clusterName}-peers.${pod.namespace}.svc`
}

/** Production default: plain cluster DNS. */
export const dnsResolver: NodeAddressResolver = (pod, port) => `http://${podDnsName(pod)}:${NODE_PORTS[port]}`
