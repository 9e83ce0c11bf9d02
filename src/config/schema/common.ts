import { z } from 'zod';

export const durationSeconds = z.number().nonnegative();
export const positiveInt = z.number().int().positive();
export const hostPort = z
  .string()
  .regex(/^(unix:.+|\[[0-9a-fA-F:.]+\]:\d{1,5}|[^\s:]+:\d{1,5})$/, 'expected HOST:PORT, [IPv6]:PORT or unix:/path');
export const sensitivity = z.enum(['low', 'medium', 'high']);
export const classification = z.enum(['public', 'internal', 'confidential', 'restricted']);
export const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);

/** Every object is strict: a misspelt key is an error, never silently ignored policy. */
export const obj = <T extends z.ZodRawShape>(shape: T) => z.object(shape).strict();
