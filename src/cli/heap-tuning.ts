import { setFlagsFromString } from 'node:v8';

/**
 * Old-generation headroom, as a percentage over the live heap (V8's growing factor - 1).
 *
 * V8 derives the factor from the heap limit: 4 with a limit of 2 GiB or more, 1.3-1.6 below it.
 * A sidecar in a pod with a memory limit must set a limit (the manifests pass
 * --max-old-space-size in NODE_OPTIONS), and with 1.3 the old generation sits so close to its
 * trigger that the objects grpc-js and node:http2 promote on every call keep incremental marking
 * running: measured with the bench's no-op server under h2load, 45 mark-compacts in 5 s instead
 * of 8, and 25 % less throughput. 200 % (factor 3) gets most of the throughput back and keeps
 * the heap inside the limit; `npm run bench -- --scenario memory` reports the RSS it costs.
 *
 * V8 reads the flag whenever it recomputes the limit, so setting it at startup works (it is not
 * one of the V8 flags NODE_OPTIONS accepts).
 */
export const HEAP_GROWING_PERCENT = 200;

export function tuneHeap(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
