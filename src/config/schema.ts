import { z } from 'zod';
import { identitySchema } from './schema/identity.js';
import { policySchema } from './schema/policy.js';
import { logSchema, networkSchema, serverSchema } from './schema/server.js';
import { stateSchema } from './schema/state.js';

export const configSchema = z
  .object({
    server: serverSchema.prefault({}),
    log: logSchema,
    network: networkSchema,
    identity: identitySchema,
    state: stateSchema,
    policy: policySchema,
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
