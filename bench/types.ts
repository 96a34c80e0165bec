// The contract between bench/run.ts and the benchmark parts.
//
// A part is one file in bench/parts/ that exports a BenchPart and is listed in
// bench/parts/index.ts. It measures something and returns a Section: tables of
// rows plus the targets it checked. run.ts prints the section and report.ts
// writes it into its own marked block of BENCHMARKS.md.

import type { Children } from './children.js';

export type Cell = string | number;

export interface Table {
  title?: string;
  columns: string[];
  /** Per column: 'l' (default for the first column) or 'r' (default for the others). */
  align?: ('l' | 'r')[];
  rows: Cell[][];
}

export interface TargetResult {
  /** What is checked, e.g. "hook round trip p50". */
  name: string;
  /** The goal, e.g. "<= 50 us". */
  target: string;
  measured: string;
  /** null: could not be evaluated in this run. */
  met: boolean | null;
}

export interface Section {
  /** Free text shown under the heading (markdown). */
  intro?: string;
  tables: Table[];
  targets?: TargetResult[];
  /** Bullet points after the tables (markdown). */
  notes?: string[];
}

export interface PartContext {
  /** Repository root (the folder holding package.json). */
  root: string;
  /** A scratch folder for this run, removed at the end. */
  tmpDir: string;
  /** Shorter loops (for checking the harness itself, not for figures). */
  quick: boolean;
  /** Whether `taskset` exists on this machine. */
  taskset: boolean;
  /** Child processes started by the part; all are killed when the run ends, even on error. */
  children: Children;
  /** Progress output (stderr), not part of the report. */
  log(msg: string): void;
}

export interface BenchPart {
  /** Stable id, used in the BENCHMARKS.md section markers and for --only. */
  id: string;
  title: string;
  run(ctx: PartContext): Promise<Section>;
}
