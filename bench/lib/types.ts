import type { Percentiles } from './stats.js';

export interface BenchOptions {
  readonly quick: boolean;
  readonly workers: number;
  readonly outDir: string;
  /** Scratch files (bodies, frames, child logs) for this run. */
  readonly workDir: string;
  readonly pin: boolean;
  readonly rounds: number;
  /** h2load measured seconds and warm-up seconds per run. */
  readonly durationS: number;
  readonly warmUpS: number;
  readonly clients: number;
  readonly streams: number;
  readonly decisionLog: 'all' | 'deny' | 'none';
  /** Distinct-token scenario: tokens per algorithm. */
  readonly uniqueTokens: number;
  /** Mix scenario: requests per run. */
  readonly mixRequests: number;
  /** Memory scenario: checks and distinct tokens. */
  readonly memoryChecks: number;
  readonly memoryTokens: number;
  /** Node generator: connections and in-flight requests per connection. */
  readonly nodeConnections: number;
  readonly nodeConcurrency: number;
  /** NODE_OPTIONS for the server under test and the baseline (default: the sidecar manifest's). */
  readonly nodeOptions: string;
  /** Run `node --cpu-prof` on the server under test and keep the profiles here. */
  readonly cpuProfDir?: string | undefined;
}

export interface Throughput {
  /** Median over rounds, requests per second. */
  readonly server: number;
  readonly baseline: number;
  /** server / baseline (medians). */
  readonly ratio: number;
  readonly rounds: readonly { server: number; baseline: number }[];
  readonly generator: 'h2load' | 'node';
}

export interface LatencyReport {
  /** Client-observed, from h2load's per-request log or the node generator (µs). */
  readonly server: Percentiles;
  readonly baseline?: Percentiles;
  readonly curve: readonly { p: number; v: number }[];
  readonly baselineCurve?: readonly { p: number; v: number }[];
  /** Inside the check handler, from the server's histogram (µs, bucket-interpolated). */
  readonly handler?: { p50: number; p90: number; p99: number; p999: number };
  readonly rate: number;
}

export interface DecisionCheck {
  readonly expected: Record<string, number>;
  readonly observed: Record<string, number>;
  /** 'exact': counts must match; 'only': every observed decision has an expected reason and there are at least as many. */
  readonly mode: 'exact' | 'only';
  readonly ok: boolean;
  readonly problems: readonly string[];
}

export interface Target {
  readonly name: string;
  readonly value: number;
  readonly target: string;
  readonly met: boolean;
}

export interface CurvePoint {
  /** Work size: routes, CIDRs, issuers. */
  readonly x: number;
  /** Median µs per decision over the rounds, and the fastest and slowest round. */
  readonly us: number;
  readonly range: readonly [number, number];
  /** Heap held by the work of this size (bytes). */
  readonly heapBytes: number;
  readonly extra: Record<string, number>;
}

/** Cost against the size of the work; the target band is within 1.2x of the smallest point. */
export interface Curve {
  readonly name: string;
  readonly title: string;
  readonly xLabel: string;
  /** What one unit of x is, for "bytes per route". */
  readonly entryLabel: string;
  readonly points: readonly CurvePoint[];
}

export interface ScenarioResult {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  throughput?: Throughput;
  /** Extra throughput series shown next to the baseline (e.g. memory store next to Redis). */
  readonly others: { label: string; reqPerSec: number; ratio: number }[];
  latency?: LatencyReport;
  curves?: Curve[];
  readonly decisions: DecisionCheck[];
  readonly figures: { label: string; value: number; unit: string }[];
  readonly targets: Target[];
  readonly commands: string[];
  readonly notes: string[];
}

export interface BenchReport {
  readonly generated: string;
  readonly command: string;
  readonly machine: {
    readonly cpu: string;
    readonly cpus: number;
    readonly memoryGb: number;
    readonly node: string;
    readonly h2load: string;
    readonly host: string;
    readonly pinning: string;
    readonly workers: number;
    readonly nodeOptions: string;
  };
  readonly options: Partial<BenchOptions>;
  readonly results: readonly ScenarioResult[];
  readonly failures: readonly string[];
}
