import { z } from 'zod';
import { GATEWAY_UPSTREAM_HEADERS } from '../abi/http-fields.js';

// The config.json schema. Objects are strict so a misspelt key is an error
// naming it, not a setting silently ignored. Every default lives here, and the
// README's config reference lists the same values.

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 1024 * 1024,
  hookTimeoutMs: 1000,
  initTimeoutMs: 10_000,
  queueTimeoutMs: 1000,
  /**
   * A hook call on the main thread costs a few microseconds against tens on a
   * worker; 5 ms is a thousand times a healthy call (room for a machine that
   * pauses the thread now and then), and short enough that a plugin found
   * looping there costs the event loop three 5 ms pauses before it moves.
   */
  inThreadBudgetMs: 5,
  /** Plugin threads' niceness; 0: the gateway's own (README "Why can long plugin calls run at a lower priority, and why not by default?"). */
  workerNice: 0,
  /** A plugin thread whose call spins (worker-pool.ts LONG_CALL_MS); off: README "Why can long plugin calls run at a lower priority, and why not by default?". */
  longCallNice: 0,
  reloadDebounceMs: 200,
  reloadSettleMs: 2000,
  memoryLimitMb: 64,
  maxOutputBytes: 8 * 1024 * 1024,
  maxVarBytes: 1024 * 1024,
  maxLogBytesPerCall: 16 * 1024,
  /** Four full per-call budgets a second: a chatty plugin is heard, a flooding one cannot fill the disk. */
  maxLogBytesPerSecond: 64 * 1024,
  providerTimeoutMs: 60_000,
  streamIdleTimeoutMs: 30_000,
  breakerFailureThreshold: 5,
  breakerCooldownMs: 30_000,
  /**
   * Nesting of client JSON and of every value a plugin outputs. Chat bodies are
   * shallow (a tool's JSON Schema, the deepest common part, rarely passes 20
   * levels); 64 leaves room for that three times over while every plugin input
   * stays far below the AssemblyScript kit's decoding bound (256 per value) and
   * the host codec's recursion (MAX_JSON_DEPTH below).
   */
  maxJsonDepth: 64,
  /**
   * A request's context, encoded: meant for small facts (ids, flags, a routing
   * decision), and copied into every hook call's input, per stream chunk too.
   * 64 KiB is ample for that, keeps the worst case predictable (64 KiB per
   * request in flight), and matches the worker channel's input area, beyond
   * which a hook input takes the slower message path.
   */
  maxContextBytes: 64 * 1024,
} as const;

/** The host's MessagePack codec recurses and overflows near 2,000 levels: the highest max_json_depth allowed stays well below. */
export const MAX_JSON_DEPTH = 512;

const positiveInt = z.number().int().positive();

/** Signing key ids, as in trusted_keys and `.sig` files: the same characters as plugin names. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]+$/;
/** An Ed25519 public key as `sandgate keygen` prints it: base64 of its 32 raw bytes (44 characters). */
const PUBLIC_KEY_PATTERN = /^[A-Za-z0-9+/]{43}=$/;

export const PluginEntrySchema = z.strictObject({
  enabled: z.boolean().default(true),
  name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" or "-"'),
  path: z.string().min(1),
  /** Pinned hash of the .wasm file (sandgate hash FILE); a file with another hash is refused. */
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'expected the file\'s sha256 as 64 hex characters (sandgate hash FILE prints it)')
    .optional(),
  /** Overrides the top-level require_signature for this plugin. */
  require_signature: z.boolean().optional(),
  version: positiveInt.default(1),
  config: z.unknown().default({}),
  on_error: z.enum(['fail-closed', 'fail-open']).default('fail-closed'),
  timeout_ms: positiveInt.default(DEFAULTS.hookTimeoutMs),
  init_timeout_ms: positiveInt.default(DEFAULTS.initTimeoutMs),
  memory_limit_mb: positiveInt.max(4096).default(DEFAULTS.memoryLimitMb),
  max_output_bytes: positiveInt.default(DEFAULTS.maxOutputBytes),
  /** Extism variables (var_set) one instance may hold, keys included. */
  max_var_bytes: positiveInt.default(DEFAULTS.maxVarBytes),
  /** Log text one call may write (host log calls, Extism log_*, WASI stdout and stderr); the rest is dropped and counted. */
  max_log_bytes_per_call: positiveInt.default(DEFAULTS.maxLogBytesPerCall),
  /** Log text the plugin may write per second in each worker, across calls (a token bucket holding one second's worth); the rest is dropped and counted. */
  max_log_bytes_per_second: positiveInt.default(DEFAULTS.maxLogBytesPerSecond),
  circuit_breaker: z
    .strictObject({
      /** Consecutive failures that open the circuit; 0 disables it. */
      failure_threshold: z.number().int().nonnegative().default(DEFAULTS.breakerFailureThreshold),
      cooldown_ms: positiveInt.default(DEFAULTS.breakerCooldownMs),
    })
    .prefault({}),
});

const MockProviderSchema = z.strictObject({
  type: z.literal('mock'),
  /** Delay before each answer, to imitate a real upstream in benchmarks. */
  latency_ms: z.number().int().nonnegative().default(0),
  /** Streaming ("stream": true): content chunks per answer; 0 = one chunk per word of the echoed text. */
  stream_chunks: z.number().int().nonnegative().default(0),
  /** Streaming: delay before each chunk (latency_ms still comes before the first). */
  stream_delay_ms: z.number().int().nonnegative().default(0),
});

const OpenAiProviderSchema = z.strictObject({
  type: z.literal('openai'),
  base_url: z.url({ protocol: /^https?$/ }),
  api_key: z.string().optional(),
  timeout_ms: positiveInt.default(DEFAULTS.providerTimeoutMs),
  /** Upper bound on concurrent connections to this upstream. */
  connections: positiveInt.default(64),
  /** Streaming: the longest wait for the upstream's next bytes once its response started; longer is upstream_idle_timeout. */
  stream_idle_timeout_ms: positiveInt.default(DEFAULTS.streamIdleTimeoutMs),
  /** Client request headers sent on to the upstream (as the transport hooks left them); no others are. */
  forward_headers: z
    .array(
      z
        .string()
        .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'a header name is an RFC 9110 token (letters, digits and !#$%&\'*+-.^_`|~)')
        .transform((h) => h.toLowerCase())
        .refine((h) => !GATEWAY_UPSTREAM_HEADERS.has(h), { message: `only the gateway sets ${[...GATEWAY_UPSTREAM_HEADERS].join(', ')}; remove it from forward_headers` }),
    )
    .default([]),
  /** A forwarded (or pre_llm_hook-set) authorization header replaces the api_key's; by default the api_key wins. */
  prefer_forwarded_authorization: z.boolean().default(false),
  /** Models listed on GET /v1/models as "<provider>/<model>"; listing only, a request may name any model. */
  models: z
    .array(z.string().min(1).regex(/^\S+$/, 'a model name has no spaces'))
    .refine((names) => new Set(names).size === names.length, 'list each model once')
    .default([]),
});

export const ProviderSchema = z.discriminatedUnion('type', [MockProviderSchema, OpenAiProviderSchema]);

export const ConfigSchema = z
  .strictObject({
    server: z
      .strictObject({
        host: z.string().min(1).default(DEFAULTS.host),
        port: z.number().int().min(0).max(65535).default(DEFAULTS.port),
        max_body_bytes: positiveInt.default(DEFAULTS.maxBodyBytes),
      })
      .prefault({}),
    limits: z
      .strictObject({
        /** Client JSON bodies (deeper: 400 request_too_deep) and every value a plugin outputs (deeper: plugin_bad_output). */
        max_json_depth: positiveInt.max(MAX_JSON_DEPTH).default(DEFAULTS.maxJsonDepth),
        /** A request's context as encoded; a plugin patch that would make it larger is plugin_bad_output. */
        max_context_bytes: positiveInt.default(DEFAULTS.maxContextBytes),
      })
      .prefault({}),
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
    runtime: z
      .strictObject({
        /** Plugin worker threads. Each holds one instance of every plugin. */
        workers: positiveInt.max(64).optional(),
        /**
         * Longest a hook call waits for a free worker before it is shed
         * (plugin_overloaded, 503). Not part of the hook's timeout_ms, which
         * starts when a worker takes the call.
         */
        queue_timeout_ms: positiveInt.default(DEFAULTS.queueTimeoutMs),
        /**
         * Longest one hook call may run on the gateway's main thread. Plugins
         * that can be stopped there (ABI.md §7.6) run there, and one whose call
         * runs past this is run again on a worker; after three such calls
         * within 10 s the plugin moves to the workers for good. 0: every call
         * runs on the workers.
         */
        in_thread_budget_ms: z.number().min(0).max(100).default(DEFAULTS.inThreadBudgetMs),
        /**
         * CPU scheduling niceness of the plugin worker threads (Linux; 0 to 19,
         * 0 leaves them at the gateway's own priority), so that plugin code
         * burning CPU cannot starve the thread that serves HTTP and answers deadlines.
         */
        worker_nice: z.number().int().min(0).max(19).default(DEFAULTS.workerNice),
        /**
         * Niceness a plugin thread drops to while its call spins (2.5 ms of CPU time used after
         * its first 5 ms), back to worker_nice when the call ends; not above worker_nice: off. A plugin spinning toward
         * its deadline then yields the core to the main thread and to other workers' short calls.
         */
        long_call_nice: z.number().int().min(0).max(19).default(DEFAULTS.longCallNice),
        /** Watch every enabled plugin's .wasm and swap in the new version when it changes. */
        watch_plugins: z.boolean().default(true),
        /** Watch the config file the CLI was started with and apply it when it changes (SIGHUP and POST /admin/reload work either way). */
        watch_config: z.boolean().default(true),
        /** Quiet time after the last change to a plugin file (or the config file) before it is read. */
        reload_debounce_ms: positiveInt.default(DEFAULTS.reloadDebounceMs),
        /** How long a changed file that is not valid WebAssembly yet may take to be complete before it is refused. */
        reload_settle_ms: positiveInt.default(DEFAULTS.reloadSettleMs),
      })
      .prefault({}),
    providers: z.record(z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" or "-"'), ProviderSchema).default({ mock: { type: 'mock', latency_ms: 0, stream_chunks: 0, stream_delay_ms: 0 } }),
    plugins: z.array(PluginEntrySchema).default([]),
    /** The admin API (/admin/*): off unless a token is set; requests need "Authorization: Bearer <token>". */
    admin: z
      .strictObject({
        token: z.string().min(16, 'use a token of at least 16 characters (e.g. openssl rand -hex 32), or "env.NAME"').optional(),
      })
      .prefault({}),
    /** Public keys whose signatures (`<file>.sig`) are trusted, by key id. */
    trusted_keys: z
      .record(
        z.string().regex(KEY_ID_PATTERN, 'key ids use letters, digits, ".", "_" or "-"'),
        z.string().regex(PUBLIC_KEY_PATTERN, 'expected an Ed25519 public key as base64 of its 32 raw bytes (44 characters, as sandgate keygen prints it)'),
      )
      .default({}),
    /** Whether every plugin needs a valid signature by a trusted key, unless its own require_signature says otherwise. */
    require_signature: z.boolean().default(false),
  })
  .superRefine((cfg, ctx) => {
    if (Object.keys(cfg.trusted_keys).length === 0) {
      const noKeys = 'is true but trusted_keys is empty: add the public key that signs your plugins to trusted_keys (sandgate keygen prints it)';
      if (cfg.require_signature) ctx.addIssue({ code: 'custom', path: ['require_signature'], message: noKeys });
      cfg.plugins.forEach((p, i) => {
        if (p.require_signature) ctx.addIssue({ code: 'custom', path: ['plugins', i, 'require_signature'], message: noKeys });
      });
    }
    const seen = new Map<string, number>();
    cfg.plugins.forEach((p, i) => {
      if (!p.enabled) return;
      const first = seen.get(p.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['plugins', i, 'name'], message: `duplicate plugin name "${p.name}" (also plugins[${first}]); names must be unique` });
      } else seen.set(p.name, i);
    });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type PluginEntry = z.infer<typeof PluginEntrySchema>;
export type ProviderConfig = z.infer<typeof ProviderSchema>;
