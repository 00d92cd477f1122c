// Runs the built Worker under Miniflare (workerd) on 127.0.0.1, for the end-to-end tests.
// Configuration comes from the environment: ORIGIN_URL, ISSUER, AUDIENCE, EDGE_SECRET,
// IDENTITY_KEY, ROUTES, JWKS_REFETCH_MIN_MS, BASE_DOMAIN, IPV6_PREFIX.
// Prints "READY <url>" once it serves, and stops on SIGTERM.
import { Miniflare } from "miniflare";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const env = (name, fallback) => process.env[name] ?? fallback;

const mf = new Miniflare({
  modules: true,
  scriptPath: path.join(root, "edge/build/index.js"),
  modulesRoot: path.join(root, "edge/build"),
  modulesRules: [
    { type: "ESModule", include: ["**/*.js"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  compatibilityDate: "2026-04-26",
  durableObjects: {
    RATE_LIMITER: { className: "RateLimiter", useSQLite: true },
    REVOCATIONS: { className: "SessionRevocation", useSQLite: true },
    REVOCATION_FEED: { className: "RevocationFeed", useSQLite: true },
  },
  bindings: {
    ORIGIN_URL: env("ORIGIN_URL"),
    ISSUER: env("ISSUER"),
    AUDIENCE: env("AUDIENCE", "tessera"),
    EDGE_SECRET: env("EDGE_SECRET"),
    IDENTITY_KEY: env("IDENTITY_KEY", ""),
    IPV6_PREFIX: env("IPV6_PREFIX", "64"),
    ROUTES: env("ROUTES", "[]"),
    JWKS_REFETCH_MIN_MS: env("JWKS_REFETCH_MIN_MS", "5000"),
    BASE_DOMAIN: env("BASE_DOMAIN", ""),
  },
  host: "127.0.0.1",
  port: Number(env("PORT", "0")),
});

const url = await mf.ready;
console.log(`READY ${url.href}`);
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
