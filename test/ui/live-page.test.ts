import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { packageRoot } from '../../src/wire/protos.js';
import { checkRequest } from '../helpers/grpc.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { admin } from '../state/fixtures.js';

/**
 * The live security page in a real browser (Debian's chromium driven by playwright-core): real
 * Checks over gRPC, a suspension written through Redis by the admin CLI, and the page must show
 * the denies, the counts, the suspension and the alert, with no script error.
 */
export const SCREENSHOT = join(packageRoot(), 'test/ui/live-page.png');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

const CLAIMS = { allowed_resources: ['orders'], clearance_level: 'internal' };
// What an attacker would put in a user id to reach the page as markup.
const XSS_USER = '<img src=x onerror="window.__pwned=1">';

function config(url: string): ConfigInput {
  return {
    ...DEMO_CONFIG,
    server: { http: { ui: true } },
    state: { backend: 'redis', redis: { url, heartbeat_interval_ms: 200 }, remediation: { enabled: false } },
  };
}

let redis: RedisProcess;
let srv: TestServer;
let browser: Browser;
let alice: string;
let mallory: string;

beforeAll(async () => {
  redis = await startRedis();
  srv = await startTestServer(config(redis.url));
  browser = await launchChromium();
  alice = await signDevToken({ sub: 'alice', ttlS: 600, claims: CLAIMS });
  mallory = await signDevToken({ sub: 'mallory', ttlS: 600, claims: CLAIMS });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await srv?.stop();
  await redis?.stop();
});

async function reason(spec: Parameters<typeof checkRequest>[0]): Promise<string> {
  const r = await srv.client.check(checkRequest(spec));
  return r.response?.status.message || 'allowed';
}

async function openPage(): Promise<{ page: Page; errors: string[]; foreign: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1700 } });
  const errors: string[] = [];
  const foreign: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(srv.httpUrl + '/')) foreign.push(r.url());
  });
  await page.goto(`${srv.httpUrl}/ui/`);
  return { page, errors, foreign };
}

const cellText = (page: Page, table: string) => page.locator(`#${table} tbody`).innerText();

async function untilTableHas(page: Page, table: string, text: string): Promise<void> {
  await waitFor(async () => (await cellText(page, table)).includes(text), 20_000, `#${table} to show ${text}`);
}

describe('live security page', () => {
  it('shows the denies, the counts, a suspension written through Redis and its alert', async () => {
    expect(await reason({ token: alice })).toBe('allowed');
    expect(await reason({ token: alice })).toBe('allowed');
    expect(await reason({})).toBe('token_missing');
    expect(await reason({ token: alice.slice(0, -4) + 'AAAA' })).toBe('token_invalid');
    expect(await reason({ token: alice, path: '/admin/users' })).toBe('resource_not_allowed');

    const s = await admin('suspend', 'mallory', '--ttl', '600', '--reason', 'credential stuffing', '--redis', redis.url);
    expect(s.code).toBe(0);
    await waitFor(async () => (await reason({ token: mallory })) === 'user_suspended', 20_000, 'suspension enforced');

    const { page, errors, foreign } = await openPage();
    await untilTableHas(page, 'denies', 'user_suspended');
    await untilTableHas(page, 'denies', 'token_missing');
    await untilTableHas(page, 'denies', 'token_invalid');
    const denies = await cellText(page, 'denies');
    expect(denies).toContain('mallory');
    expect(denies).toContain('GET /api/orders');
    expect(denies).not.toContain(alice.slice(0, 40));

    await untilTableHas(page, 'totals', 'allowed');
    const counts = () =>
      page.$$eval('#totals tbody tr', (rows) =>
        Object.fromEntries(rows.map((r) => [r.cells[0]?.textContent ?? '', Number(r.cells[1]?.textContent)])),
      );
    await waitFor(async () => {
      const c = await counts();
      return (c.allowed ?? 0) >= 2 && (c.user_suspended ?? 0) >= 1;
    }, 20_000, 'totals to count the allows and the suspension');

    await untilTableHas(page, 'suspended', 'mallory');
    await untilTableHas(page, 'alerts', 'admin_suspend');
    expect(await cellText(page, 'alerts')).toContain('mallory');
    expect(await page.locator('#policy-hash').innerText()).toBe(srv.app.policyHash);
    expect(await page.locator('#health').innerText()).toBe('ready');
    // Each issuer's key set: its kids, age and last refresh outcome, as /readyz reports them.
    expect(await cellText(page, 'health-table')).toMatch(/jwks.*kids: .*dev-rs256-1.*last_refresh/s);
    expect(Number(await page.locator('#lat-count').innerText())).toBeGreaterThanOrEqual(6);
    expect(await page.locator('#chart polyline').count()).toBe(2);

    // The explain form, evaluated by the running server.
    await page.fill('#explain-form input[name=path]', '/api/orders/42');
    await page.fill('#explain-form input[name=token]', alice);
    await page.click('#explain-form button');
    await waitFor(async () => (await page.locator('#explain-result').innerText()).startsWith('ALLOW'), 10_000, 'explain result');
    expect(await cellText(page, 'explain-trace')).toContain('token');

    mkdirSync(join(packageRoot(), 'test/ui'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);
    expect(foreign).toEqual([]);
    await page.close();
  }, 120_000);

  it('renders hostile values as text and runs no injected script', async () => {
    // The admin CLI refuses such an id; another tool writing Redis directly does not.
    expect((await admin('suspend', XSS_USER, '--redis', redis.url)).code).not.toBe(0);
    await redis.cli('SET', `suspended_user:${XSS_USER}`, 'true', 'EX', '600');
    const { page, errors } = await openPage();
    await untilTableHas(page, 'suspended', XSS_USER);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('#suspended img').count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
