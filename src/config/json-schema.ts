import { z } from 'zod';
import { configSchema } from './schema/index.js';

/**
 * The config file's JSON Schema, generated from the zod schema so it cannot drift from what the
 * loader accepts. Input side: keys with defaults are optional. Refinements that JSON Schema cannot
 * say (cross-field rules, time zones, route shadowing) are left to `zt-authz check-config`.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  // A file may never set it (serve --dev does), so editors should not offer it.
  const identity = (schema.properties as Record<string, { properties?: Record<string, unknown> }> | undefined)?.identity;
  delete identity?.properties?.development_keys;
  return { ...schema, title: 'zt-authz configuration', description: 'Validate fully with `zt-authz check-config FILE`.' };
}
