export type CircuitState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  /** Consecutive failures that open the circuit; 0 disables the breaker. */
  failureThreshold: number;
  /** How long the circuit stays open before one trial call is let through. */
  cooldownMs: number;
}

/**
 * Per-plugin circuit breaker. After `failureThreshold` consecutive failures
 * the plugin is not called for `cooldownMs`; then exactly one trial call
 * decides: success closes the circuit, failure opens it for another cool-down.
 * A plugin that fails every call thus costs one call per cool-down, not one per request.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private current: CircuitState = 'closed';

  constructor(
    private readonly opts: BreakerOptions,
    private readonly onChange: (state: CircuitState) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    return this.current;
  }

  /** Whether a call may go ahead now. A true in half-open state is the one trial call. */
  admit(): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open') {
      if (this.now() - this.openedAt < this.opts.cooldownMs) return false;
      this.set('half_open');
    }
    if (this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  onSuccess(): void {
    this.consecutive = 0;
    this.trialInFlight = false;
    if (this.current !== 'closed') this.set('closed');
  }

  /**
   * The admitted call was not made after all (shed for load): it says nothing
   * about the plugin. The count stays; in half-open state the next call may be the trial.
   */
  onNoVerdict(): void {
    this.trialInFlight = false;
  }

  onFailure(): void {
    this.trialInFlight = false;
    this.consecutive++;
    if (this.current === 'half_open' || (this.opts.failureThreshold > 0 && this.consecutive >= this.opts.failureThreshold)) {
      this.openedAt = this.now();
      if (this.current !== 'open') this.set('open');
    }
  }

  private set(state: CircuitState): void {
    this.current = state;
    this.onChange(state);
  }
}
