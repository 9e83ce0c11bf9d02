import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../../src/wire/protos.js';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import type { WireCheckResponse } from '../../src/response/envoy.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

interface CheckMethod {
  requestSerialize(value: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

let method: CheckMethod | undefined;

/** The same serializers grpc-js uses, from the same protos the server loads. */
function checkMethod(): CheckMethod {
  if (method) return method;
  const def = protoLoader.loadSync(['envoy/service/auth/v3/external_auth.proto'], LOADER_OPTIONS);
  const service = def['envoy.service.auth.v3.Authorization'] as unknown as Record<string, CheckMethod>;
  method = service.Check!;
  return method;
}

/** A gRPC length-prefixed message: 1 byte compression flag (0), 4 bytes big-endian length, protobuf bytes. */
export function grpcFrame(req: WireCheckRequest): Buffer {
  const body = checkMethod().requestSerialize(req);
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

/** Decodes one unary response body (a single gRPC frame) into a CheckResponse. */
export function decodeCheckResponse(frame: Buffer): WireCheckResponse {
  if (frame.length < 5) throw new Error(`gRPC frame too short (${frame.length} bytes)`);
  const len = frame.readUInt32BE(1);
  return checkMethod().responseDeserialize(frame.subarray(5, 5 + len)) as WireCheckResponse;
}
