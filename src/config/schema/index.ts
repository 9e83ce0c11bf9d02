import { z } from 'zod';
import { identitySchema } from './identity.js';
import { policySchema } from './policy.js';
import { logSchema, networkSchema, serverSchema } from './server.js';
import { stateSchema } from './state.js';
import { tracingSchema } from './tracing.js';

export const configSchema = z
  .object({
    server: serverSchema.prefault({}),
    log: logSchema,
    network: networkSchema,
    identity: identitySchema,
    state: stateSchema,
    policy: policySchema,
    tracing: tracingSchema,
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
