import { pino } from 'pino';

export type Logger = pino.Logger;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

/**
 * Structured JSON logs on stdout (pino: fast, and every line is machine-readable
 * with the request id and plugin as fields). Pipe through `pino-pretty` to read by eye.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** The lowest plugin log level (ABI.md §4.2) the gateway's level lets through. */
export function minPluginLogLevel(level: LogLevel): number {
  return { trace: 0, debug: 0, info: 1, warn: 2, error: 3, silent: 4 }[level];
}

/** Maps a plugin's log level (ABI.md §4.2) to a logger method. */
export function logAtPluginLevel(log: Logger, level: number, fields: Record<string, unknown>, msg: string): void {
  if (level <= 0) log.debug(fields, msg);
  else if (level === 1) log.info(fields, msg);
  else if (level === 2) log.warn(fields, msg);
  else log.error(fields, msg);
}
