import { describe, expect, it } from 'vitest';
import { stateSchema } from '../../src/config/schema/state.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createStateStore, MemoryStateStore } from '../../src/state/index.js';

function memory(extra: Record<string, unknown> = {}) {
  return createStateStore(stateSchema.parse(extra), { logger: silentLogger, metrics: createMetrics() });
}

describe('MemoryStateStore (embedded default)', () => {
  it('is the default backend, always ready', async () => {
    const s = memory();
    expect(s).toBeInstanceOf(MemoryStateStore);
    await s.start();
    expect(s.health()).toEqual({ backend: 'memory', connected: true, mirrorAgeMs: 0, ready: true });
    await s.close();
  });

  it('has the same list semantics as Redis: TTLs, CIDRs, risk, validation', async () => {
    const s = memory();
    const now = Date.now();
    await s.suspendUser('bob', 1);
    expect(s.userSuspended('bob', now)).toBe('listed');
    expect(s.userSuspended('bob', now + 2000)).toBe('clear');
    await s.unsuspendUser('bob');
    expect(s.userSuspended('bob', now)).toBe('clear');
    await s.blockIp('2001:db8::/32', 60);
    await s.blockIp('192.0.2.5', 60);
    expect(s.ipBlocked('2001:db8:1::9', now)).toBe('listed');
    expect(s.ipBlocked('::ffff:192.0.2.5', now)).toBe('listed');
    expect(s.ipBlocked('192.0.2.6', now)).toBe('clear');
    await s.unblockIp('2001:DB8::/32');
    expect(s.ipBlocked('2001:db8:1::9', now)).toBe('clear');
    await s.setRisk('eve', 0.85, 10);
    expect(s.liveRisk('eve', now)).toBe(0.85);
    expect(s.liveRisk('eve', now + 11_000)).toBeUndefined();
    await expect(s.setRisk('eve', 1.5)).rejects.toThrow(/risk score/);
    await expect(s.blockIp('10.0.0.0/33', 60)).rejects.toThrow(/CIDR/);
    await expect(s.suspendUser('bob', 0)).rejects.toThrow(/ttl/);
    await expect(s.suspendUser('has space', 10)).rejects.toThrow(/user id/);
  });

  it('auto-remediation: N failures within the window block the IP for block_ttl_s', () => {
    const s = memory({ remediation: { threshold: 3, window_s: 10, block_ttl_s: 60 } }) as MemoryStateStore;
    const t = 1_000_000;
    s.recordAuthFailure('198.51.100.1', t);
    s.recordAuthFailure('198.51.100.1', t + 1000);
    s.recordAuthFailure('198.51.100.2', t + 1000);
    // The first failure has left the window by then.
    s.recordAuthFailure('198.51.100.1', t + 10_500);
    expect(s.ipBlocked('198.51.100.1', t + 10_500)).toBe('clear');
    s.recordAuthFailure('198.51.100.1', t + 10_600);
    expect(s.ipBlocked('198.51.100.1', t + 10_600)).toBe('listed');
    expect(s.ipBlocked('198.51.100.1', t + 10_600 + 60_000)).toBe('clear');
    expect(s.ipBlocked('198.51.100.2', t + 10_600)).toBe('clear');
    expect(s.alerts[0]).toMatchObject({ type: 'auto_block', ip: '198.51.100.1', failures: 3, window_s: 10 });
    s.recordAuthFailure('garbage', t);
  });

  it('auto-remediation can be disabled', () => {
    const s = memory({ remediation: { enabled: false, threshold: 1 } });
    s.recordAuthFailure('198.51.100.1', 0);
    expect(s.ipBlocked('198.51.100.1', 0)).toBe('clear');
  });
});
