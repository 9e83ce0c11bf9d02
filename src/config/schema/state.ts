import { isIP } from 'node:net';
import { z } from 'zod';
import { durationSeconds, obj, positiveInt } from './common.js';

/** An IP or CIDR, checked here so a typo is a config error rather than a failure at listen. */
const ipOrCidr = z.string().refine((v) => {
  const [addr = '', bits, extra] = v.split('/');
  const family = isIP(addr);
  if (family === 0 || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}, 'expected an IP or CIDR');

const onUnavailable = z.enum(['fail_static', 'fail_closed']);

export const stateSchema = obj({
  backend: z.enum(['memory', 'redis']).default('memory'),
  redis: obj({
    url: z.string().regex(/^rediss?:\/\//).optional(),
    sentinel: obj({
      name: z.string().min(1),
      sentinels: z.array(obj({ host: z.string(), port: z.number().int() })).min(1),
      password_env: z.string().optional(),
    }).optional(),
    cluster: obj({
      nodes: z.array(obj({ host: z.string(), port: z.number().int() })).min(1),
      password_env: z.string().optional(),
    }).optional(),
    /** Prepended to every key: `${prefix}suspended_user:<id>`. */
    key_prefix: z.string().default(''),
    command_timeout_ms: positiveInt.default(250),
    connect_timeout_ms: positiveInt.default(1000),
    /** Periodic full resync on top of tracking; 0 (default): only at start and after a disruption. */
    resync_interval_s: z.number().min(0).default(0),
    /** PING/TRACKINGINFO probe of every connection: detects a stalled (not just closed) Redis. */
    heartbeat_interval_ms: positiveInt.default(1000),
  }).prefault({}),
  /** What a list does when Redis is unreachable. */
  on_unavailable: obj({
    suspended_users: onUnavailable.default('fail_static'),
    blocked_ips: onUnavailable.default('fail_static'),
    user_risk: onUnavailable.default('fail_static'),
  }).prefault({}),
  /** Past this age a fail_static mirror fails closed too; fail_closed lists deny from here on. */
  max_staleness_s: durationSeconds.default(300),
  remediation: obj({
    enabled: z.boolean().default(true),
    threshold: positiveInt.default(5),
    window_s: positiveInt.default(900),
    block_ttl_s: positiveInt.default(1800),
    /**
     * Client IPs/CIDRs never counted or auto-blocked: proxies, gateways, NAT egresses and health
     * checkers that speak for many clients. An operator's own block still applies to them.
     */
    exempt: z.array(ipOrCidr).default([]),
  }).prefault({}),
}).prefault({});

export type StateConfig = z.infer<typeof stateSchema>;
