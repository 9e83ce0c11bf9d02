import { REASONS, type Reason } from '../reasons.js';
import type { Decision } from '../model.js';
import type { PolicyConfig } from '../config/schema/policy.js';
import { REASON_HEADER, SHADOW_HEADER, bearerChallenge, denyBody } from './deny-body.js';
import { PbWriter, preencode } from '../wire/pb-writer.js';

/** HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD: a spoofed inbound copy is replaced, never appended to. */
const OVERWRITE = 2;

interface HeaderOption {
  header: { key: string; value: string };
  append_action: number;
}

// protobufjs ships google.protobuf.Struct with camelCase field names, whatever keepCase says.
type StructValue = { stringValue: string } | { numberValue: number };

/** Field numbers, from Envoy's external_auth.proto, base.proto and google/protobuf/struct.proto. */
const F = {
  status: 1, // CheckResponse.status (google.rpc.Status: code 1, message 2)
  denied: 2, // CheckResponse.denied_response
  ok: 3, // CheckResponse.ok_response
  metadata: 4, // CheckResponse.dynamic_metadata (Struct: fields 1 = map<string, Value>)
  okHeaders: 2, // OkHttpResponse.headers
  okHeadersToRemove: 5, // OkHttpResponse.headers_to_remove
  okResponseHeaders: 6, // OkHttpResponse.response_headers_to_add
  deniedHeaders: 2, // DeniedHttpResponse.headers (status 1 = HttpStatus{code 1}, body 3)
  deniedBody: 3,
} as const;

/** A Struct map entry {key: 1, value: 2 = Value{string_value: 3}}; `key` is the pre-encoded key field. */
function structString(w: PbWriter, key: Buffer, value: string): void {
  w.begin(1).raw(key).begin(2).string(3, value).end().end();
}

/** A string field, encoded once: the constant keys of headers and metadata entries. */
const keyField = (field: number, key: string) => preencode((w) => w.string(field, key));

/** HeaderValueOption.append_action (field 3) = OVERWRITE_IF_EXISTS_OR_ADD. */
const APPEND_OVERWRITE = preencode((w) => w.uint(3, OVERWRITE));

/** The CheckResponse shape @grpc/proto-loader serialises (keepCase). */
export interface WireCheckResponse {
  status: { code: number; message: string };
  ok_response?: {
    headers: HeaderOption[];
    headers_to_remove: string[];
    response_headers_to_add?: HeaderOption[];
  };
  denied_response?: { status: { code: number }; headers: HeaderOption[]; body: string };
  dynamic_metadata: { fields: Record<string, StructValue> };
}

/**
 * Turns decisions into CheckResponses. Everything that does not depend on the request
 * (status objects, header names, remove lists) is built once here, per config.
 */
export class EnvoyResponder {
  private readonly removeWithUser: string[];
  private readonly removeWithoutUser: string[];
  /** policy.headers.claims names: set from the token on an allow, removed whenever not set. */
  private readonly claimHeaderNames: readonly string[];

  /** policy.headers.expose_reason: false keeps the reason to dynamic metadata, logs and metrics. */
  private readonly exposeReason: boolean;

  constructor(private readonly headers: PolicyConfig['headers']) {
    this.exposeReason = headers.expose_reason !== false;
    const strip = headers.strip_authorization ? ['authorization'] : [];
    this.claimHeaderNames = Object.keys(headers.claims);
    // Headers we set are overwritten; the ones we do not set must still not arrive from the client.
    this.removeWithUser = [...strip];
    this.removeWithoutUser = [headers.user_id, ...this.claimHeaderNames, ...strip];
    this.wire = this.precompute();
  }

  /**
   * The CheckResponse for `d`, encoded straight to protobuf bytes: this is what the gRPC server
   * sends. test/core/response-wire.test.ts proves it decodes, with Envoy's own protos, exactly as
   * the readable reference (test/helpers/reference-codecs.ts) encoded by protobufjs.
   */
  encode(d: Decision): Buffer {
    const w = this.writer.reset();
    const k = this.wire.keys;
    if (d.allow) {
      w.raw(this.wire.okStatus).begin(F.ok);
      this.header(w, F.okHeaders, k.decisionIdHeader, d.decisionId);
      w.raw(this.riskFields(d.riskScore ?? 0).header);
      if (d.sub) this.header(w, F.okHeaders, k.userHeader, d.sub);
      if (d.sub && this.claimHeaderNames.length > 0) this.claimHeaders(w, d.claimHeaders);
      w.raw(d.sub ? this.wire.removeWithUser : this.wire.removeWithoutUser);
      if (d.shadowed && d.shadowed.length > 0) this.header(w, F.okResponseHeaders, k.shadowHeader, d.shadowed.join(','));
      w.end();
    } else {
      const pre = this.wire.deny.get(d.reason)!;
      w.raw(pre.status).begin(F.denied).raw(pre.httpStatusAndHeaders);
      this.header(w, F.deniedHeaders, k.decisionIdHeader, d.decisionId);
      const challenge = d.challenge ? bearerChallenge(d, this.exposeReason) : pre.challenge;
      if (challenge) this.header(w, F.deniedHeaders, k.challengeHeader, challenge);
      w.string(F.deniedBody, denyBody(d.reason, d.decisionId, this.exposeReason)).end();
    }
    w.begin(F.metadata);
    structString(w, k.decisionIdField, d.decisionId);
    w.raw(this.wire.reasonEntry.get(d.reason)!);
    if (d.sub) structString(w, k.subField, d.sub);
    if (d.riskScore !== undefined) w.raw(this.riskFields(d.riskScore).entry);
    if (d.resource) w.raw(this.resourceEntry(d.resource));
    return w.end().finish();
  }

  /** The claim headers this decision carries, and a removal for each configured one it does not. */
  private claimHeaders(w: PbWriter, pairs: Decision['claimHeaders']): void {
    for (const name of this.claimHeaderNames) {
      const pair = pairs?.find((p) => p[0] === name);
      if (pair === undefined) w.string(F.okHeadersToRemove, name);
      else this.header(w, F.okHeaders, this.claimKey(name), pair[1]);
    }
  }

  private claimKey(name: string): Buffer {
    let k = this.claimKeys.get(name);
    if (k === undefined) {
      k = keyField(1, name);
      this.claimKeys.set(name, k);
    }
    return k;
  }

  private readonly claimKeys = new Map<string, Buffer>();

  /** HeaderValueOption {header: {key, value}, append_action}; `key` is the pre-encoded key field. */
  private header(w: PbWriter, field: number, key: Buffer, value: string): void {
    w.begin(field).begin(1).raw(key).string(2, value).end().raw(APPEND_OVERWRITE).end();
  }

  /**
   * Risk scores repeat (a user keeps one until it changes) and resources are the policy's few
   * names: their header and metadata fields are encoded once per value, not per call.
   */
  private riskFields(score: number): { header: Buffer; entry: Buffer } {
    let f = this.riskCache.get(score);
    if (f === undefined) {
      if (this.riskCache.size >= 1024) this.riskCache.clear();
      const k = this.wire.keys;
      f = {
        header: preencode((w) => this.header(w, F.okHeaders, k.riskHeader, String(score))),
        entry: preencode((w) => w.begin(1).raw(k.riskField).begin(2).double(2, score).end().end()),
      };
      this.riskCache.set(score, f);
    }
    return f;
  }

  private resourceEntry(resource: string): Buffer {
    let e = this.resourceCache.get(resource);
    if (e === undefined) {
      // Resource names come from the policy, so this stays small; the bound is a backstop.
      if (this.resourceCache.size >= 1024) this.resourceCache.clear();
      e = preencode((w) => structString(w, this.wire.keys.resourceField, resource));
      this.resourceCache.set(resource, e);
    }
    return e;
  }

  private readonly riskCache = new Map<number, { header: Buffer; entry: Buffer }>();
  private readonly resourceCache = new Map<string, Buffer>();
  private readonly writer = new PbWriter();
  private readonly wire: ReturnType<EnvoyResponder['precompute']>;

  private precompute() {
    const deny = new Map<Reason, { status: Buffer; httpStatusAndHeaders: Buffer; challenge: string | undefined }>();
    for (const [reason, spec] of Object.entries(REASONS) as [Reason, (typeof REASONS)[Reason]][]) {
      deny.set(reason, {
        status: preencode((w) => w.begin(F.status).uint(1, spec.grpc).string(2, reason).end()),
        httpStatusAndHeaders: preencode((w) => {
          w.begin(1).uint(1, spec.http).end();
          this.header(w, F.deniedHeaders, keyField(1, 'content-type'), 'application/json');
          if (this.exposeReason) this.header(w, F.deniedHeaders, keyField(1, REASON_HEADER), reason);
        }),
        challenge: bearerChallenge({ allow: false, reason, decisionId: '' }, this.exposeReason),
      });
    }
    const removals = (names: string[]) => preencode((w) => names.forEach((n) => w.string(F.okHeadersToRemove, n)));
    return {
      // code 0 and message '' written out, as protobufjs writes a set field: proto3 readers that
      // keep presence (and clients decoding with defaults off) then see an explicit OK.
      okStatus: preencode((w) => w.begin(F.status).raw(Buffer.from([0x08, 0x00, 0x12, 0x00])).end()),
      deny,
      removeWithUser: removals(this.removeWithUser),
      removeWithoutUser: removals(this.removeWithoutUser),
      reasonEntry: new Map((Object.keys(REASONS) as Reason[]).map((r) => [r, preencode((w) => structString(w, keyField(1, 'reason'), r))])),
      keys: {
        decisionIdHeader: keyField(1, this.headers.decision_id),
        riskHeader: keyField(1, this.headers.risk_score),
        userHeader: keyField(1, this.headers.user_id),
        shadowHeader: keyField(1, SHADOW_HEADER),
        challengeHeader: keyField(1, 'www-authenticate'),
        decisionIdField: keyField(1, 'decision_id'),
        subField: keyField(1, 'sub'),
        riskField: keyField(1, 'risk_score'),
        resourceField: keyField(1, 'resource'),
      },
    };
  }
}
