// Verification cost inside workerd: the Worker built with the `bench` feature under Miniflare,
// keys served by a stand-in JWKS endpoint, each figure the wall-clock difference between a
// request doing N verifications and one doing none, divided by N (median of 7).
// Run: scripts/bench-edge (builds the Worker first). Prints Markdown rows for BENCHMARKS.md.
import { Miniflare } from "miniflare";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const b64url = (buf) => Buffer.from(buf).toString("base64url");

const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
const x = publicKey.export({ format: "jwk" }).x;
const jwks = JSON.stringify({ keys: [{ kty: "OKP", crv: "Ed25519", x, kid: "bench", alg: "EdDSA", use: "sig" }] });
const server = http.createServer((_, res) => res.end(jwks));
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const now = Math.floor(Date.now() / 1000);
const header = b64url(JSON.stringify({ alg: "EdDSA", typ: "at+jwt", kid: "bench" }));
const claims = b64url(JSON.stringify({
  iss: origin, sub: "3f2c1a9e-0000-4000-8000-000000000001", email: "ann@example.com", role: "user",
  aud: "tessera", tid: "default", sid: "3f2c1a9e-0000-4000-8000-000000000002",
  iat: now, nbf: now, exp: now + 3600, jti: "j", amr: ["pwd"],
}));
const token = `${header}.${claims}.${b64url(crypto.sign(null, Buffer.from(`${header}.${claims}`), privateKey))}`;

const mf = new Miniflare({
  modules: true,
  scriptPath: path.join(root, "edge/build-bench/index.js"),
  modulesRoot: path.join(root, "edge/build-bench"),
  modulesRules: [{ type: "ESModule", include: ["**/*.js"] }, { type: "CompiledWasm", include: ["**/*.wasm"] }],
  compatibilityDate: "2026-04-26",
  durableObjects: {
    RATE_LIMITER: { className: "RateLimiter", useSQLite: true },
    REVOCATIONS: { className: "SessionRevocation", useSQLite: true },
    REVOCATION_FEED: { className: "RevocationFeed", useSQLite: true },
  },
  bindings: { ORIGIN_URL: origin, ISSUER: origin, AUDIENCE: "tessera", EDGE_SECRET: "b".repeat(32) },
});

async function run(op, n) {
  const started = process.hrtime.bigint();
  const res = await mf.dispatchFetch(`http://edge/__tessera/bench?op=${op}&n=${n}`, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.json();
  if (n > 0 && body.ok !== n) throw new Error(`${op}: ${body.ok} of ${n} verified`);
  return Number(process.hrtime.bigint() - started) / 1000;
}

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function perOp(op, n) {
  await run(op, 200);
  const empty = [], full = [];
  for (let i = 0; i < 7; i++) {
    empty.push(await run(op, 0));
    full.push(await run(op, n));
  }
  return (median(full) - median(empty)) / n;
}

const N = 2000;
const edge = await perOp("edge", N);
const wasm = await perOp("wasm", N);
const webcrypto = await perOp("webcrypto", N);
const cached = await perOp("cached", N);
const wasmFile = fs.readFileSync(path.join(root, "edge/build/index_bg.wasm"));
const gz = zlib.gzipSync(wasmFile, { level: 9 }).length;
console.log("| measure | result | baseline (same workerd) | ratio / goal |");
console.log("|---|---|---|---|");
console.log(`| Worker size | ${(wasmFile.length / 1048576).toFixed(2)} MiB raw, ${(gz / 1048576).toFixed(2)} MiB gzip | | goal ≤ 1 MiB gzip |`);
console.log(`| access-token verification at the edge (core's checks + WebCrypto Ed25519) | ${edge.toFixed(1)} µs | WebCrypto Ed25519 verify alone: ${webcrypto.toFixed(1)} µs | ${(edge / webcrypto).toFixed(2)}× (goal ≤ 1.5×) |`);
console.log(`| the same entirely in WebAssembly (core's jsonwebtoken + ed25519-dalek) | ${wasm.toFixed(1)} µs | WebCrypto: ${webcrypto.toFixed(1)} µs | ${(wasm / webcrypto).toFixed(2)}× |`);
console.log(`| the same token presented again (the isolate's cache of verified tokens, core's recheck) | ${cached.toFixed(2)} µs | full verification: ${edge.toFixed(1)} µs | ${(edge / cached).toFixed(0)}× faster |`);
await mf.dispose();
server.close();
