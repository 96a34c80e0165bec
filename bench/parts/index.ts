// Every benchmark part, in the order they run and appear in BENCHMARKS.md.
// To add one: write bench/parts/<name>.ts exporting a BenchPart, list it here.

import type { BenchPart } from '../types.js';
import { gatewayThroughput } from './gateway-throughput.js';
import { hookRoundTrip } from './hook-roundtrip.js';
import { hotSwap } from './hot-swap.js';
import { isolation } from './isolation.js';
import { kitCost } from './kit-cost.js';
import { streaming } from './streaming.js';

export const PARTS: readonly BenchPart[] = [hookRoundTrip, gatewayThroughput, isolation, streaming, hotSwap, kitCost];
