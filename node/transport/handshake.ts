/** What both ends of the internode upgrade handshake agree on. */
export const STREAM_PATH = '/internal/v1/stream'
export const UPGRADE_PROTOCOL = 'ringkv-rpc'
/** Bumped on any incompatible change to framing or frame kinds; a peer speaking another version is refused. */
export const PROTOCOL_VERSION = '1'
export const HOST_HEADER = 'x-ringkv-host'
export const CLUSTER_HEADER = 'x-ringkv-cluster'
export const PROTO_HEADER = 'x-ringkv-proto'
