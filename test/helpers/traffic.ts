import type { TestResponse } from './gateway.js';

/** A response and how long it took, in ms. */
export type TimedResponse = TestResponse & { ms: number };

export async function timed(fn: () => Promise<TestResponse>): Promise<TimedResponse> {
  const started = Date.now();
  const r = await fn();
  return { ...r, ms: Date.now() - started };
}

/**
 * Runs tasks with at most `width` in flight; results in task order.
 * @example const results = await pool(Array.from({ length: 20 }, () => () => gw.get('/v1/models')), 4);
 */
export async function pool<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]();
      }
    }),
  );
  return results;
}
