/** OpenAPI 3 description of the client API (design §3.2), served at /openapi.json. */
const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
})

const keyParam = {
  name: 'key',
  in: 'path',
  required: true,
  description: 'the key: the percent-decoded path segment, 1..1024 bytes',
  schema: { type: 'string', minLength: 1 },
}
const consistencyParam = {
  name: 'consistency',
  in: 'query',
  required: false,
  description: 'how many replicas must answer: one, quorum (default) or all',
  schema: { type: 'string', enum: ['one', 'quorum', 'all'], default: 'quorum' },
}
const ifMatch = {
  name: 'If-Match',
  in: 'header',
  required: false,
  description: 'an ETag returned earlier: the write supersedes that version causally',
  schema: { type: 'string' },
}
const etagHeader = { ETag: { description: 'causal context of the version', schema: { type: 'string' } } }
const writeErrors = {
  '400': error('BAD_REQUEST or BAD_CONSISTENCY'),
  '413': error('KEY_TOO_LARGE or VALUE_TOO_LARGE'),
  '503': error('UNAVAILABLE: too few replicas up (required, alive); nothing was written'),
  '504': error('TIMEOUT: replicas did not answer in time (acks)'),
  '507': error('INSUFFICIENT_STORAGE'),
}

export const openapi = {
  openapi: '3.0.3',
  info: { title: 'ringkv client API', version: '0.1.0', description: 'A Dynamo-style replicated key-value store.' },
  paths: {
    '/v1/kv/{key}': {
      parameters: [keyParam, consistencyParam],
      get: {
        summary: 'Read a value',
        responses: {
          '200': { description: 'the value, with its Content-Type', headers: etagHeader, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
          '404': error('NOT_FOUND: absent or deleted'),
          '400': writeErrors['400'],
          '413': error('KEY_TOO_LARGE'),
          '503': writeErrors['503'],
          '504': writeErrors['504'],
        },
      },
      put: {
        summary: 'Write a value',
        parameters: [ifMatch, { name: 'ttl', in: 'query', required: false, description: 'seconds until the value expires', schema: { type: 'integer', minimum: 1 } }],
        requestBody: { required: false, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
        responses: { '204': { description: 'stored at the requested consistency', headers: etagHeader }, ...writeErrors },
      },
      delete: {
        summary: 'Delete a value (writes a tombstone)',
        parameters: [ifMatch],
        responses: { '204': { description: 'deleted at the requested consistency', headers: etagHeader }, ...writeErrors },
      },
    },
    '/v1/cluster': { get: { summary: 'Cluster view', responses: { '200': { description: 'replication factor and nodes', content: { 'application/json': { schema: { $ref: '#/components/schemas/Cluster' } } } } } } },
    '/v1/node': { get: { summary: 'This node', responses: { '200': { description: 'this node', content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } } } } },
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'the process serves' } } } },
    '/readyz': { get: { summary: 'Readiness', responses: { '200': { description: 'state AVAILABLE' }, '503': error('NOT_READY: not AVAILABLE') } } },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3' } } } },
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string', enum: ['BAD_REQUEST', 'BAD_CONSISTENCY', 'NOT_FOUND', 'KEY_TOO_LARGE', 'VALUE_TOO_LARGE', 'METHOD_NOT_ALLOWED', 'UNAVAILABLE', 'TIMEOUT', 'INSUFFICIENT_STORAGE', 'NOT_READY', 'INTERNAL'] },
              message: { type: 'string' },
              required: { type: 'integer' },
              alive: { type: 'integer' },
              acks: { type: 'integer' },
            },
          },
        },
      },
      Node: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          hostId: { type: 'string' },
          address: { type: 'string' },
          clientAddress: { type: 'string' },
          state: { type: 'string', enum: ['JOINING', 'BOOTSTRAPPING', 'AVAILABLE', 'LEAVING', 'LEFT'] },
          up: { type: 'boolean' },
          ownership: { type: 'number' },
          load: { type: 'number' },
          tokens: { type: 'integer' },
        },
      },
      Cluster: {
        type: 'object',
        properties: { replicationFactor: { type: 'integer' }, nodes: { type: 'array', items: { $ref: '#/components/schemas/Node' } } },
      },
    },
  },
} as const
