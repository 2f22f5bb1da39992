// The registry mirror here 404s msgpackr-extract's prebuilt packages for other platforms, so
// npm leaves them out of the lock and `npm ci` then calls the lock out of sync. Record them as
// the platform-specific optional packages they are; npm skips them on linux-x64 without fetching.
import { readFileSync, writeFileSync } from 'node:fs'
const file = process.argv[2] ?? 'package-lock.json'
const lock = JSON.parse(readFileSync(file, 'utf8'))
const missing = { 'darwin-arm64': ['darwin', 'arm64'], 'darwin-x64': ['darwin', 'x64'], 'linux-arm': ['linux', 'arm'], 'win32-x64': ['win32', 'x64'] }
for (const [name, [os, cpu]] of Object.entries(missing)) {
  const k = `node_modules/@msgpackr-extract/msgpackr-extract-${name}`
  if (!lock.packages[k]) lock.packages[k] = { version: '3.0.7', cpu: [cpu], license: 'MIT', optional: true, os: [os] }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)))
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n')
