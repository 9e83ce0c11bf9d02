/**
 * Redis error replies start with their kind (`-WRONGTYPE Operation against a key ...`, RESP's
 * own error code); ioredis surfaces them as ReplyError with that text as the message. The kind,
 * undefined for anything that is not an error reply (a connection loss, a timeout).
 */
export type ReplyErrorKind = 'WRONGTYPE' | 'NOPERM' | 'NOSCRIPT' | 'MOVED' | 'ASK' | 'READONLY' | 'LOADING' | 'ERR' | (string & {});

export function replyErrorKind(err: unknown): ReplyErrorKind | undefined {
  if (!(err instanceof Error) || err.name !== 'ReplyError') return undefined;
  const space = err.message.indexOf(' ');
  return space === -1 ? err.message : err.message.slice(0, space);
}
