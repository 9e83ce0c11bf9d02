/**
 * How a resync waits while another sidecar builds the shared snapshot. Polling every 100-250 ms
 * was most of a fleet's catch-up cost (bench/state-scale.ts, 500 sidecars x 100,000 entries:
 * ~31 fetch-or-lease calls per sidecar through a restart storm). A single-Redis store tracks the
 * snapshot's meta key on its invalidation channel, so it hears the publish and polls once; the
 * slow timer only covers what no publish announces (a builder that died, or one that gave up).
 * A wake only makes the waiter poll sooner: nothing is trusted from it.
 */
export interface PublishWaiter {
  /** Called before each poll is sent: a publish heard after this ends the next wait at once. */
  arm(): void;
  /** Resolves after the fallback interval, or soon after a publish heard since arm(). */
  wait(): Promise<void>;
}

/** For callers that hear no publish: the poll interval the fleet used before. */
export function timerWaiter(sleep: (ms: number) => Promise<void>): PublishWaiter {
  return { arm: () => undefined, wait: () => sleep(100 + Math.floor(Math.random() * 150)) };
}

/** The fallback poll (2-4 s): rare, since a publish normally ends the wait. */
const FALLBACK_MS = 2000;
/**
 * Spreads a woken fleet's polls and reads over a second. Readers that arrive together cost Redis
 * far more per byte: bench/snapshot-read.ts, 200 readers of 0.6 MB in 128 KiB windows, 146 µs
 * of command time per GETRANGE when they start at once against 8 µs spread over 150 ms.
 */
const WAKE_JITTER_MS = 1000;

export class WakeablePublishWaiter implements PublishWaiter {
  private publishes = 0;
  private armedAt = 0;
  private wake: (() => void) | undefined;

  /** Publishes heard so far. */
  get heard(): number {
    return this.publishes;
  }

  /** The snapshot's meta key was written (published or dropped). */
  published(): void {
    this.publishes++;
    this.wake?.();
  }

  arm(): void {
    this.armedAt = this.publishes;
  }

  wait(): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout;
      const done = () => {
        clearTimeout(timer);
        if (this.wake === onWake) this.wake = undefined;
        resolve();
      };
      const onWake = () => {
        // The first publish decides; later ones during the jitter change nothing.
        if (this.wake === onWake) this.wake = undefined;
        clearTimeout(timer);
        timer = setTimeout(done, Math.random() * WAKE_JITTER_MS);
        timer.unref();
      };
      timer = setTimeout(done, FALLBACK_MS + Math.random() * FALLBACK_MS);
      timer.unref();
      this.wake = onWake;
      if (this.publishes !== this.armedAt) onWake();
    });
  }
}
