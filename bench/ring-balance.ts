/**
 * Ring balance: max/mean effective ownership at a replication factor, for every cluster size
 * as nodes join one at a time, with allocateTokens against seeded random tokens.
 *   node dist/bench/ring-balance.js [--max 64] [--tokens 16] [--rf 3] [--seed 1]
 * Prints a Markdown table (the one in docs/benchmarks.md "Ring balance").
 */
import { parseArgs } from 'node:util'
import { allocateTokens } from '../node/ring/allocate.js'
import { balanceOf, growRing, randomTokens } from '../node/ring/balance.js'
import { createRng } from '../node/util/rng.js'

const { values } = parseArgs({
  options: {
    max: { type: 'string', default: '64' },
    tokens: { type: 'string', default: '16' },
    rf: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
  },
})
const max = Number(values.max)
const numTokens = Number(values.tokens)
const rf = Number(values.rf)
const rng = createRng(values.seed!)

const started = performance.now()
const allocated = growRing(max, numTokens, rf, (ring, host) => allocateTokens(ring, host, numTokens, rf))
const allocMs = performance.now() - started
const random = growRing(max, numTokens, rf, () => randomTokens(rng, numTokens))

console.log(`num-tokens ${numTokens}, RF ${rf}; allocation of all ${max} joins took ${allocMs.toFixed(0)} ms\n`)
console.log('| nodes | allocated max/mean | allocated min/mean | random max/mean | random min/mean |')
console.log('|---:|---:|---:|---:|---:|')
let worst = 0
for (let n = Math.max(rf, 1); n <= max; n++) {
  const a = balanceOf(allocated[n - 1]!, rf)
  const r = balanceOf(random[n - 1]!, rf)
  worst = Math.max(worst, a.maxOverMean)
  console.log(`| ${n} | ${a.maxOverMean.toFixed(3)} | ${a.minOverMean.toFixed(3)} | ${r.maxOverMean.toFixed(3)} | ${r.minOverMean.toFixed(3)} |`)
}
console.log(`\nworst allocated max/mean over ${rf}..${max} nodes: ${worst.toFixed(3)}`)
