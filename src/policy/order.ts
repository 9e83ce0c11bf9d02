import { POLICY_CHECKS, type PolicyCheckName } from '../config/schema/checks.js';

/**
 * The order `evaluate` runs the checks in (the check table is built from it). The engine has
 * already normalised the request, refused blocked IPs and verified the token (a bad token never
 * gets here). Route and identity requirement are never shadowed: without a resource or a caller
 * there is nothing for the later checks to evaluate. The README table is this list.
 */
export const CHECK_ORDER = POLICY_CHECKS;

export type { PolicyCheckName };
