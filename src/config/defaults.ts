import type { ConfigInput } from './schema/index.js';

/**
 * The embedded configuration `zt-authz serve` runs with when no --config is given: in-memory
 * state, the bundled DEVELOPMENT key set and a demo policy with the numbers of the zero-trust
 * guides (risk tiers 0.3/0.4/0.5/0.7/0.8, 08:00–18:59 UTC). Never suitable for production.
 */
export const DEMO_CONFIG: ConfigInput = {
  identity: { development_keys: true },
  state: { backend: 'memory' },
  policy: {
    time_window: { timezone: 'UTC', start: '00:00', end: '23:59' },
    resources: {
      public: { sensitivity: 'low', classification: 'public' },
      profile: { sensitivity: 'low', classification: 'internal' },
      orders: { sensitivity: 'medium', classification: 'internal' },
      payments: {
        sensitivity: 'high',
        classification: 'confidential',
        time_window: { timezone: 'UTC', start: '08:00', end: '18:59', days: ['mon', 'tue', 'wed', 'thu', 'fri'] },
      },
      admin: { sensitivity: 'high', classification: 'restricted' },
      api: { sensitivity: 'medium', classification: 'internal', identity: 'any' },
      database: { sensitivity: 'high', classification: 'restricted', identity: 'workload' },
    },
    routes: [
      { prefix: '/public', resource: 'public' },
      { prefix: '/api/profile', resource: 'profile' },
      { prefix: '/api/orders', resource: 'orders' },
      { prefix: '/api/payments', resource: 'payments' },
      { prefix: '/admin', resource: 'admin' },
      { prefix: '/internal/api', resource: 'api' },
      { prefix: '/internal/db', resource: 'database' },
    ],
    service_pairs: [
      // In an Istio mesh the ingress gateway is the caller of every user request; user checks still apply.
      { from: 'istio-ingressgateway-service-account', to: '*' },
      { from: 'spiffe://cluster.local/ns/*/sa/web', to: 'api' },
      { from: 'spiffe://cluster.local/ns/*/sa/monitoring', to: 'api' },
      { from: 'spiffe://cluster.local/ns/*/sa/api', to: 'database' },
    ],
  },
};
