import { z } from 'zod';

export const durationSeconds = z.number().nonnegative();
export const positiveInt = z.number().int().positive();
export const hostPort = z
  .string()
  .regex(/^(unix:.+|\[[0-9a-fA-F:.]+\]:\d{1,5}|[^\s:]+:\d{1,5})$/, 'expected HOST:PORT, [IPv6]:PORT or unix:/path')
  .refine((a) => a.startsWith('unix:') || Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535, 'the port must be 0 to 65535');
export const sensitivity = z.enum(['low', 'medium', 'high']);
export const classification = z.enum(['public', 'internal', 'confidential', 'restricted']);
export const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);

/** Every object is strict: a misspelt key is an error, never silently ignored policy. */
export const obj = <T extends z.ZodRawShape>(shape: T) => z.object(shape).strict();
