/**
 * The no-op baseline: a grpc-js server with the same protos, the same loader options and the same
 * server options as zt-authz, whose Check returns an empty CheckResponse at once. Every figure of
 * the harness is a ratio against this server measured in the same run on the same core.
 */
import * as grpc from '@grpc/grpc-js';
import { serverSchema } from '../../src/config/schema/server.js';
import { bindGrpc, serverOptions } from '../../src/transport/grpc-server.js';
import { referenceAuthorizationService } from '../../test/helpers/reference-codecs.js';
import { READY_PREFIX } from './proc.js';
import { tuneHeap } from '../../src/cli/heap-tuning.js';

// The same runtime as the server under test.
tuneHeap();
const address = process.argv[2] ?? '127.0.0.1:0';
const server = new grpc.Server(serverOptions(serverSchema.parse({}).limits));
server.addService(referenceAuthorizationService(), {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, {}),
});
const grpcAddress = await bindGrpc(server, address);
process.stdout.write(`${READY_PREFIX}${JSON.stringify({ grpc: grpcAddress, pid: process.pid })}\n`);
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
setTimeout(() => undefined, 2 ** 31 - 1);
