// The plugin worker thread's first module. It lowers the thread's priority
// before anything else is loaded: loading the worker (entry.ts and the Extism
// SDK under it) costs ~50 ms of CPU, which a replacement thread must not take
// from the main thread or the other workers' calls. Static imports would all
// be loaded before this module's body ran, hence the dynamic import.

import { workerData } from 'node:worker_threads';
import type { WorkerInit } from '../messages.js';
import { setUpPluginThread } from './os-thread.js';

setUpPluginThread((workerData as WorkerInit).nice);
await import('./entry.js');
