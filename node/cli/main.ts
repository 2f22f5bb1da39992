#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { StartupError } from '../errors.js'
import { registerNodeCommand } from './node-command.js'
import { registerDevCommand } from './dev-command.js'
import { registerKvCommands } from './kv-commands.js'
import { registerAdminCommands } from './admin-commands.js'
import { registerOperatorCommand } from './operator-command.js'

const program = new Command('ringkv')
  .description('ringkv: a Dynamo-style replicated key-value store on RocksDB')
  .version('0.1.0')
  .configureOutput({ outputError: (s, write) => write(`ringkv: ${s.replace(/^error: /, '').trim().split('\n').join(' ')} (run with --help for usage)\n`) })
  .exitOverride()

registerNodeCommand(program)
registerDevCommand(program)
registerKvCommands(program)
registerAdminCommands(program)
registerOperatorCommand(program)

try {
  await program.parseAsync(process.argv)
} catch (e) {
  if (e instanceof CommanderError) {
    // commander already printed its one-line error (or help/version)
    process.exit(e.exitCode)
  }
  if (e instanceof StartupError) {
    process.stderr.write(`ringkv: ${e.message}\n`)
    process.exit(e.exitCode)
  }
  const err = e as { code?: string; message?: string }
  process.stderr.write(`ringkv: ${err.code ? err.code + ': ' : ''}${err.message ?? String(e)}\n`)
  process.exit(1)
}
