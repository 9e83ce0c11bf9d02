import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';

const INVALIDATE = '__redis__:invalidate';
/** After this many failed heartbeats on a connection that still looks open, drop it and reconnect. */
const STALLED_HEARTBEATS = 3;

export interface ChannelEvents {
  /** Keys modified or expired on this node; null after FLUSHDB/FLUSHALL. */
  onInvalidate(keys: string[] | null): void;
  /** The channel stopped (false) or started (true) delivering every invalidation. */
  onHealth(healthy: boolean): void;
}

/**
 * Client-side tracking for one Redis node: a RESP2 subscriber on `__redis__:invalidate` and a
 * second connection (for a single Redis, the data connection itself: two connections per sidecar) with `CLIENT TRACKING on REDIRECT <subscriber id> BCAST PREFIX ...`. Tracking
 * is per connection and per node, so every reconnect of either side re-establishes it, and a
 * heartbeat (PING on the subscriber, CLIENT TRACKINGINFO on the tracker) notices a stalled node
 * whose TCP connections still look open.
 */
export class TrackingChannel {
  private subId: number | undefined;
  private healthy = false;
  /** Bumped when either connection closes: a tracking setup begun before that is stale. */
  private generation = 0;
  /** Bumped when the subscriber closes or starts a setup: only its own setup may set subId. */
  private subGeneration = 0;
  private failedBeats = 0;
  /** "<generation>:<subId>" tracking was last switched on for; undefined while not known on. */
  private trackingOn: string | undefined;
  private enabling: Promise<void> | undefined;
  /** How many times tracking has been switched on; a heartbeat's re-enable is dropped if it grew. */
  private trackingOnCount = 0;
  /** Between `CLIENT TRACKING off` and the answer to `on`: no heartbeat may call the channel healthy. */
  private switching = false;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly sub: Redis,
    /** Also used to snapshot this node; for a single Redis it is the store's data connection. */
    readonly tracker: Redis,
    private readonly prefixes: string[],
    private readonly events: ChannelEvents,
    private readonly logger: Logger,
    /** The tracker belongs to the caller (it is the data connection): close() leaves it open. */
    private readonly sharedTracker = false,
  ) {
    sub.on('messageBuffer', (channel: Buffer, message: Buffer[] | Buffer | null) => {
      if (channel.toString() !== INVALIDATE) return;
      if (message === null) this.events.onInvalidate(null);
      else if (Array.isArray(message)) this.events.onInvalidate(message.map((k) => k.toString()));
      else this.events.onInvalidate([message.toString()]);
    });
    sub.on('ready', () => void this.setupSubscriber());
    tracker.on('ready', () => void this.enableTracking());
    sub.on('close', () => {
      this.subGeneration++;
      this.subId = undefined;
    });
    for (const conn of [sub, tracker]) {
      conn.on('close', () => this.lost());
      // ioredis logs unhandled 'error' events to stderr; connection errors are reported via health.
      conn.on('error', (err: Error) => this.logger.debug({ err: err.message, node: this.name }, 'redis connection error'));
    }
  }

  isHealthy(): boolean {
    return this.healthy;
  }

  private lost(): void {
    this.generation++;
    this.setHealthy(false);
  }

  private setHealthy(h: boolean): void {
    if (this.healthy === h) return;
    this.healthy = h;
    if (!this.closed) this.events.onHealth(h);
  }

  private async setupSubscriber(): Promise<void> {
    // Only a newer subscriber connection or setup makes this one stale. (The tracker dropping
    // meanwhile, as both do in a failover, must not: the subscriber would be left subscribed
    // with no id, and tracking could never be pointed at it again.)
    const gen = ++this.subGeneration;
    this.setHealthy(false);
    try {
      // The id must be read before SUBSCRIBE: a RESP2 connection in subscribe mode accepts no CLIENT command.
      const id = Number(await this.sub.client('ID'));
      await this.sub.subscribe(INVALIDATE);
      if (gen !== this.subGeneration) return;
      this.subId = id;
      await this.enableTracking();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, node: this.name }, 'redis invalidation subscriber setup failed');
      // A half-set-up subscriber (say, SUBSCRIBE timed out) would stay without an id: start over.
      if (gen === this.subGeneration && this.sub.status === 'ready') this.sub.disconnect(true);
    }
  }

  /**
   * Both connections' setups and the heartbeat call this; one switching tracking off while
   * another's is already on would open a window where writes go unnoticed. A forced request (a
   * heartbeat that found tracking off) names how many times tracking had gone on when its check was
   * sent, and is skipped if it went on since: three beats that saw tracking off during a reconnect
   * used to queue three more off/on cycles behind the setup that fixed it, and
   * test/state/tracking-recovery.test.ts lost a write inside one of them.
   */
  private enableTracking(force = false, onCountWhenAsked = this.trackingOnCount): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.trackingOn === `${this.generation}:${this.subId}` && (!force || this.trackingOnCount > onCountWhenAsked)) return;
      await this.doEnableTracking();
    };
    this.enabling = (this.enabling ?? Promise.resolve()).then(run, run);
    return this.enabling;
  }

  private async doEnableTracking(): Promise<void> {
    const subId = this.subId;
    if (subId === undefined || this.tracker.status !== 'ready' || this.closed) return;
    const gen = this.generation;
    this.trackingOn = undefined;
    // Tracking is off from here until `on` answers: a write meanwhile is covered only by the resync
    // that onHealth(true) starts, so the channel must not stay healthy across the switch.
    this.setHealthy(false);
    this.switching = true;
    try {
      // Re-enabling with a new REDIRECT is refused while tracking is on, so switch it off first;
      // writes in between are covered by the resync that follows onHealth(true).
      await this.tracker.call('CLIENT', 'TRACKING', 'off');
      const args = ['TRACKING', 'on', 'REDIRECT', String(subId), 'BCAST'];
      for (const p of this.prefixes) args.push('PREFIX', p);
      await this.tracker.call('CLIENT', ...args);
      if (gen !== this.generation || this.subId !== subId) return;
      this.trackingOn = `${gen}:${subId}`;
      this.trackingOnCount++;
      this.failedBeats = 0;
      this.setHealthy(true);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, node: this.name }, 'CLIENT TRACKING failed');
      this.setHealthy(false);
    } finally {
      this.switching = false;
    }
  }

  /**
   * True when the subscriber answered and (with `verify`) the tracker did too and tracking still
   * redirects to our subscriber. A PING on the subscriber is the cheap part that runs every beat:
   * it proves the node answers and the invalidation connection is alive. Tracking itself can
   * only be lost with one of the two connections closing, which is seen at once, so its check
   * (CLIENT TRACKINGINFO, several times the cost of a PING) runs less often.
   */
  async heartbeat(verify = true): Promise<boolean> {
    if (this.closed) return false;
    try {
      if (!verify) {
        await this.sub.ping();
        this.failedBeats = 0;
        return this.healthy;
      }
      const onCount = this.trackingOnCount;
      const [, info] = await Promise.all([this.sub.ping(), this.tracker.call('CLIENT', 'TRACKINGINFO')]);
      const fields = info as unknown[];
      const flags = fields[fields.indexOf('flags') + 1] as string[];
      const redirect = Number(fields[fields.indexOf('redirect') + 1]);
      const ok = flags.includes('on') && !flags.includes('broken_redirect') && redirect === this.subId;
      this.failedBeats = 0;
      // A reply read while a re-enable is switching tracking off and on may describe the moment
      // before the switch: it proves nothing either way (the switch ends healthy or not itself).
      if (this.switching) return this.healthy;
      if (ok) {
        this.setHealthy(true);
        return true;
      }
      // Connections answer but tracking is off or points elsewhere: set it up again.
      this.setHealthy(false);
      await this.enableTracking(true, onCount);
      return false;
    } catch {
      // A beat that timed out on connections that are still open loses no invalidation: Redis
      // queues them for the subscriber and closes it if that queue overflows (seen at once as a
      // close). So a slow beat only stops the mirror being vouched for (the store's fail_closed
      // bound); treating it as a desync made every busy moment cost a full resync, and under a
      // restart storm each one needed a fresh snapshot build (bench/state-scale.ts: 50 builds for
      // 50 sidecars). A node that stays silent for STALLED_HEARTBEATS is recycled (and resynced).
      if (++this.failedBeats >= STALLED_HEARTBEATS) {
        this.failedBeats = 0;
        for (const conn of [this.sub, this.tracker]) if (conn.status === 'ready') conn.disconnect(true);
      }
      return false;
    }
  }

  /**
   * True once every invalidation Redis queued for this channel before the PING was executed has
   * been handed to onInvalidate: replies and pushes on the subscriber arrive in the order Redis
   * queued them, and ioredis emits a push before it resolves a later reply. False if tracking was
   * not on throughout (a PONG on a newer subscriber says nothing of the old one's queue).
   */
  async barrier(): Promise<boolean | 'timeout'> {
    const gen = this.generation;
    const subGen = this.subGeneration;
    const onCount = this.trackingOnCount;
    const intact = () => this.healthy && !this.closed && gen === this.generation && subGen === this.subGeneration && onCount === this.trackingOnCount;
    if (!intact()) return false;
    try {
      await this.sub.ping();
    } catch (err) {
      // A PING that timed out on a subscriber still open proves nothing either way, and loses no
      // invalidation (see heartbeat): the caller may try again. Treated as a failure, it is one
      // way a storm's keeper stopped under load (bench/state-scale.ts: tracking_disrupted).
      return /timed out/i.test((err as Error).message) && this.sub.status === 'ready' && intact() ? 'timeout' : false;
    }
    return intact();
  }

  close(): void {
    this.closed = true;
    this.healthy = false;
    this.sub.disconnect();
    if (!this.sharedTracker) this.tracker.disconnect();
  }
}
