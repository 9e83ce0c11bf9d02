import * as grpc from '@grpc/grpc-js';
import { AUTHORIZATION_SERVICE } from '../wire/protos.js';

const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;

/**
 * grpc.health.v1 for Envoy active health checks and Kubernetes gRPC probes. '' and the
 * Authorization service report SERVING only while the sidecar can decide (keys loaded, state synced).
 */
export class HealthService {
  private watchers = new Set<grpc.ServerWritableStream<{ service?: string }, { status: number }>>();
  private last = NOT_SERVING;
  private timer: NodeJS.Timeout;

  constructor(private readonly isReady: () => boolean) {
    // Watchers learn of readiness changes without every component having to emit events.
    this.timer = setInterval(() => this.poll(), 1000);
    this.timer.unref();
  }

  private status(service: string | undefined): number {
    if (service && service !== AUTHORIZATION_SERVICE) return SERVICE_UNKNOWN;
    return this.isReady() ? SERVING : NOT_SERVING;
  }

  private poll(): void {
    const now = this.isReady() ? SERVING : NOT_SERVING;
    if (now === this.last) return;
    this.last = now;
    for (const w of this.watchers) w.write({ status: this.status(w.request.service) });
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Check: (call: grpc.ServerUnaryCall<{ service?: string }, { status: number }>, cb: grpc.sendUnaryData<{ status: number }>) => {
        const status = this.status(call.request?.service);
        if (status === SERVICE_UNKNOWN) return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
        cb(null, { status });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: number }>) => {
        call.write({ status: this.status(call.request?.service) });
        this.watchers.add(call);
        const drop = () => this.watchers.delete(call);
        call.on('cancelled', drop);
        call.on('close', drop);
        call.on('error', drop);
      },
    };
  }

  /**
   * Tells every watcher NOT_SERVING and ends its stream. A Watch never ends by itself, so a
   * graceful server shutdown would otherwise wait the whole grace period for it.
   */
  close(): void {
    clearInterval(this.timer);
    for (const w of this.watchers) {
      try {
        w.write({ status: NOT_SERVING });
        w.end();
      } catch {
        // The stream is already gone.
      }
    }
    this.watchers.clear();
  }
}
