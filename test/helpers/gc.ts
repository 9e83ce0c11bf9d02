import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full garbage collection, in this process, without starting it with --expose-gc: the flag can
 * be set at run time and `gc` then appears in contexts created afterwards. Fault tests use it to
 * reproduce what a GC does to objects that are only weakly held (Node 20's AbortSignal.timeout).
 */
export function forceGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
