/**
 * The control plane's certificates: one throwaway CA, a serving certificate for the apiserver,
 * client certificates for the admin (group system:masters) and for the controller-manager and
 * scheduler (the users RBAC's bootstrap policy grants their roles to), and the service-account
 * token signing key pair. Node's crypto has no X.509 writer, so certificates come from the
 * openssl command line; keys are ECDSA P-256 (fast to make, accepted everywhere in Kubernetes).
 */
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface CertPair {
  cert: string
  key: string
}

export interface Pki {
  dir: string
  caCert: string
  caKey: string
  apiserver: CertPair
  admin: CertPair
  controllerManager: CertPair
  scheduler: CertPair
  /** Service-account token signing key (private, PKCS#8) and its public key. */
  saKey: string
  saPub: string
}

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = @sans
[sans]
`

/** Names the apiserver answers to: loopback, plus the in-cluster names of the kubernetes service. */
const APISERVER_SANS = [
  'IP.1 = 127.0.0.1',
  'IP.2 = 10.96.0.1',
  'DNS.1 = localhost',
  'DNS.2 = kubernetes',
  'DNS.3 = kubernetes.default',
  'DNS.4 = kubernetes.default.svc',
  'DNS.5 = kubernetes.default.svc.cluster.local',
]

/** True when the openssl command line tool can be run. */
export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export function createPki(dir: string): Pki {
  mkdirSync(dir, { recursive: true })
  const config = join(dir, 'openssl.cnf')
  writeFileSync(config, OPENSSL_CONFIG + APISERVER_SANS.join('\n') + '\n')
  const caCert = join(dir, 'ca.crt')
  const caKey = join(dir, 'ca.key')
  const make = (base: string, extensions: 'ca' | 'client' | 'server', subject: string): CertPair => {
    const pair = { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) }
    const signing = extensions === 'ca' ? [] : ['-CA', caCert, '-CAkey', caKey]
    execFileSync(
      'openssl',
      ['req', '-x509', '-config', config, '-extensions', extensions,
        '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', pair.key, '-out', pair.cert, '-subj', subject, '-days', '7', ...signing],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    return pair
  }
  make('ca', 'ca', '/CN=ringkv-test-ca')
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const saKey = join(dir, 'sa.key')
  const saPub = join(dir, 'sa.pub')
  writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }))
  return {
    dir,
    caCert,
    caKey,
    apiserver: make('apiserver', 'server', '/CN=kube-apiserver'),
    admin: make('admin', 'client', '/O=system:masters/CN=ringkv-test-admin'),
    controllerManager: make('controller-manager', 'client', '/CN=system:kube-controller-manager'),
    scheduler: make('scheduler', 'client', '/CN=system:kube-scheduler'),
    saKey,
    saPub,
  }
}

/**
 * A self-contained kubeconfig (certificates inlined) for one identity: a client certificate or a
 * bearer token (a service account's). JSON is valid YAML, so every kubeconfig reader
 * (client-node, helm, the Go components) accepts it.
 */
export function writeKubeconfig(
  file: string,
  server: string,
  caCert: string,
  credentials: CertPair | { token: string },
  { user = 'ringkv-test', namespace = 'default' }: { user?: string; namespace?: string } = {},
): void {
  const b64 = (f: string) => readFileSync(f).toString('base64')
  const auth =
    'token' in credentials
      ? { token: credentials.token }
      : { 'client-certificate-data': b64(credentials.cert), 'client-key-data': b64(credentials.key) }
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'ringkv-test', cluster: { server, 'certificate-authority-data': b64(caCert) } }],
    users: [{ name: user, user: auth }],
    contexts: [{ name: user, context: { cluster: 'ringkv-test', user, namespace } }],
    'current-context': user,
    preferences: {},
  }
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 })
}
