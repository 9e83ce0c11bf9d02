import { App, type AppOptions } from '../../src/app.js';
import { validate } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import { authzClient, type AuthzClient } from './grpc.js';

export interface TestServer {
  app: App;
  client: AuthzClient;
  grpcAddress: string;
  httpUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts the real server in-process on ephemeral loopback ports with the given config (merged
 * over nothing: pass a full config, or omit it for the embedded demo config) and waits until ready.
 */
export async function startTestServer(config: ConfigInput = DEMO_CONFIG, opts: { logger?: Logger; waitReady?: boolean; configFile?: string; loadOptions?: AppOptions['loadOptions'] } = {}): Promise<TestServer> {
  const raw = structuredClone(config) as Record<string, unknown>;
  const server = (raw.server ?? {}) as Record<string, unknown>;
  server.grpc = { ...((server.grpc as object) ?? {}), address: '127.0.0.1:0' };
  server.http = { ...((server.http as object) ?? {}), address: '127.0.0.1:0' };
  raw.server = server;
  raw.log = { decisions: 'none', ...((raw.log as object) ?? {}) };
  const loaded = validate(raw, 'test', config === DEMO_CONFIG);
  if (!loaded.ok) throw new Error('test config invalid:\n' + loaded.errors.join('\n'));
  const app = await App.start(loaded, { logger: opts.logger ?? silentLogger, configFile: opts.configFile, loadOptions: opts.loadOptions });
  if (opts.waitReady !== false) await waitFor(() => app.ready(), 10_000, 'server ready');
  const client = authzClient(app.grpcAddress);
  return {
    app,
    client,
    grpcAddress: app.grpcAddress,
    httpUrl: `http://${app.httpAddress}`,
    async stop() {
      client.close();
      await app.shutdown(2000);
    },
  };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
