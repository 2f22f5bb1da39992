import { pino, type Logger } from 'pino'

export type { Logger }

/** Structured JSON logs to stdout; one logger per process, children per subsystem. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...base }, timestamp: pino.stdTimeFunctions.isoTime })
}
