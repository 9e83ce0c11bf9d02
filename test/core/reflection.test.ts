import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The reflection protocol's own definition, as the package ships it (what grpcurl speaks). */
const REFLECTION_PROTO = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

function reflectionClient(address: string) {
  const def = protoLoader.loadSync(REFLECTION_PROTO, { keepCase: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  return new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
}

/** One request on the bidirectional ServerReflectionInfo stream, as a reflection client sends it. */
function ask(client: grpc.Client, request: Record<string, string>): Promise<ReflectionResponse> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> }).ServerReflectionInfo();
    call.on('data', (r: ReflectionResponse) => {
      resolve(r);
      call.end();
    });
    call.on('error', reject);
    call.write(request);
  });
}

const withReflection = (on: boolean) => ({ ...DEMO_CONFIG, server: { grpc: { address: '127.0.0.1:0', reflection: on } } });

describe('gRPC server reflection', () => {
  let on: TestServer;
  let off: TestServer;
  beforeAll(async () => {
    on = await startTestServer(withReflection(true) as typeof DEMO_CONFIG);
    off = await startTestServer();
  });
  afterAll(async () => {
    await on.stop();
    await off.stop();
  });

  it('when enabled, lists the Authorization and Health services and serves their descriptors', async () => {
    const client = reflectionClient(on.grpcAddress);
    try {
      const listed = await ask(client, { list_services: '' });
      const names = listed.list_services_response?.service.map((s) => s.name) ?? [];
      expect(names).toEqual(expect.arrayContaining(['envoy.service.auth.v3.Authorization', 'grpc.health.v1.Health']));
      const file = await ask(client, { file_containing_symbol: 'envoy.service.auth.v3.Authorization' });
      const descriptors = file.file_descriptor_response?.file_descriptor_proto ?? [];
      expect(descriptors.length).toBeGreaterThan(0);
      expect(Buffer.concat(descriptors).toString('latin1')).toContain('CheckRequest');
    } finally {
      client.close();
    }
  });

  it('is off by default: the reflection service is not there', async () => {
    const client = reflectionClient(off.grpcAddress);
    try {
      const err = await ask(client, { list_services: '' }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });
});
