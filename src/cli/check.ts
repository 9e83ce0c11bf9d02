import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../wire/protos.js';
import { parse, usageFailed } from './args.js';

const USAGE = `Usage: zt-authz check --addr HOST:PORT [--token T] [--method M] [--path P] [--host H] [--ip IP]
                      [--principal SPIFFE_ID] [--header k=v]... [--timeout-ms N] [--json]

Sends one Envoy-shaped CheckRequest to a running zt-authz (or any ext_authz gRPC server) and prints
the decision, gRPC status, reason, the headers it sets and its dynamic metadata.
--token T is sent as "authorization: Bearer T"; --ip is the downstream peer (source.address).
Exit status: 0 allow, 3 deny, 1 no answer (connection refused, deadline), 2 usage.
`;

interface HeaderOption {
  header?: { key?: string; value?: string };
}
/** google.protobuf.Value as proto-loader gives it: protobufjs's bundled well-known types are camelCase. */
interface StructValue {
  stringValue?: string;
  numberValue?: number;
  boolValue?: boolean;
  structValue?: { fields?: Record<string, StructValue> };
  listValue?: { values?: StructValue[] };
}
interface CheckResponse {
  status?: { code?: number; message?: string };
  ok_response?: { headers?: HeaderOption[]; headers_to_remove?: string[]; response_headers_to_add?: HeaderOption[] };
  denied_response?: { status?: { code?: number }; headers?: HeaderOption[]; body?: string };
  dynamic_metadata?: { fields?: Record<string, StructValue> };
}

const GRPC_NAMES: Record<number, string> = { 0: 'OK', 7: 'PERMISSION_DENIED', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED' };

function plain(v: StructValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue) return Object.fromEntries(Object.entries(v.structValue.fields ?? {}).map(([k, x]) => [k, plain(x)]));
  if (v.listValue) return (v.listValue.values ?? []).map(plain);
  return null;
}

function headerList(h: HeaderOption[] | undefined): [string, string][] {
  return (h ?? []).map((o) => [o.header?.key ?? '', o.header?.value ?? '']);
}

export async function runCheck(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parse(argv, {
      addr: { type: 'string' },
      token: { type: 'string' },
      method: { type: 'string', default: 'GET' },
      path: { type: 'string', default: '/' },
      host: { type: 'string', default: 'localhost' },
      ip: { type: 'string', default: '127.0.0.1' },
      principal: { type: 'string' },
      header: { type: 'string', multiple: true, default: [] },
      'timeout-ms': { type: 'string', default: '5000' },
      json: { type: 'boolean', default: false },
    }));
  } catch (err) {
    return usageFailed(err, USAGE);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.addr) {
    process.stderr.write(`check: --addr HOST:PORT is required\n\n${USAGE}`);
    return 2;
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    process.stderr.write('check: --timeout-ms must be a positive whole number\n');
    return 2;
  }
  const method = values.method.toUpperCase();
  // What Envoy sends: lower-case keys, pseudo-headers included, repeated headers joined with ",".
  const headers: Record<string, string> = { ':authority': values.host, ':method': method, ':path': values.path, ':scheme': 'https' };
  if (values.token) headers.authorization = `Bearer ${values.token}`;
  for (const h of values.header) {
    const eq = h.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`check: --header must be k=v, got "${h}"\n`);
      return 2;
    }
    const key = h.slice(0, eq).trim().toLowerCase();
    const prev = headers[key];
    headers[key] = prev === undefined ? h.slice(eq + 1) : `${prev},${h.slice(eq + 1)}`;
  }
  const request = {
    attributes: {
      source: { address: { socket_address: { address: values.ip, port_value: 40000 } }, ...(values.principal ? { principal: values.principal } : {}) },
      request: {
        time: { seconds: String(Math.floor(Date.now() / 1000)), nanos: 0 },
        http: { id: 'zt-authz-check', method, headers, path: values.path, host: values.host, scheme: 'https', protocol: 'HTTP/1.1' },
      },
    },
  };

  const def = protoLoader.loadSync(['envoy/service/auth/v3/external_auth.proto'], LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  const client = new pkg.envoy.service.auth.v3.Authorization(values.addr, grpc.credentials.createInsecure());
  let timer: NodeJS.Timeout | undefined;
  const outcome = await new Promise<{ err?: grpc.ServiceError | Error; res?: CheckResponse }>((resolve) => {
    // grpc-js's deadline should end the call; our own timer settles it whatever happens.
    timer = setTimeout(() => resolve({ err: new Error(`no answer within ${timeoutMs} ms`) }), timeoutMs + 500);
    (client as unknown as { Check: (req: unknown, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: CheckResponse) => void) => void }).Check(
      request,
      { deadline: new Date(Date.now() + timeoutMs) },
      (err, res) => resolve(err ? { err } : res ? { res } : { err: new Error('empty response') }),
    );
  });
  clearTimeout(timer);
  client.close();
  if (outcome.err || !outcome.res) {
    process.stderr.write(`check: ${values.addr}: ${outcome.err?.message ?? 'no response'}\n`);
    return 1;
  }
  const res = outcome.res;
  const code = res.status?.code ?? 0;
  const allow = code === 0;
  const metadata = Object.fromEntries(Object.entries(res.dynamic_metadata?.fields ?? {}).map(([k, v]) => [k, plain(v)]));
  const reason = typeof metadata.reason === 'string' ? metadata.reason : res.status?.message || (allow ? 'allowed' : '');
  const out = allow
    ? {
        decision: 'allow',
        grpc_status: code,
        reason,
        upstream_headers: Object.fromEntries(headerList(res.ok_response?.headers)),
        headers_to_remove: res.ok_response?.headers_to_remove ?? [],
        response_headers: Object.fromEntries(headerList(res.ok_response?.response_headers_to_add)),
        dynamic_metadata: metadata,
      }
    : {
        decision: 'deny',
        grpc_status: code,
        reason,
        http_status: res.denied_response?.status?.code ?? 403,
        client_headers: Object.fromEntries(headerList(res.denied_response?.headers)),
        body: res.denied_response?.body ?? '',
        dynamic_metadata: metadata,
      };
  if (values.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    const grpcName = GRPC_NAMES[code] ? ` ${GRPC_NAMES[code]}` : '';
    const http = allow ? '' : `, HTTP ${res.denied_response?.status?.code ?? 403}`;
    const lines = [`${allow ? 'ALLOW' : 'DENY'} ${reason} (gRPC ${code}${grpcName}${http})`];
    if (allow) {
      for (const [k, v] of headerList(res.ok_response?.headers)) lines.push(`  upstream header   ${k}: ${v}`);
      for (const k of res.ok_response?.headers_to_remove ?? []) lines.push(`  removed header    ${k}`);
      for (const [k, v] of headerList(res.ok_response?.response_headers_to_add)) lines.push(`  response header   ${k}: ${v}`);
    } else {
      for (const [k, v] of headerList(res.denied_response?.headers)) lines.push(`  client header     ${k}: ${v}`);
      lines.push(`  body              ${res.denied_response?.body ?? ''}`);
    }
    for (const [k, v] of Object.entries(metadata)) lines.push(`  metadata          ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return allow ? 0 : 3;
}
