// Starts a real gocua server (the demo) for the sync engine's tests and stops it after.
// GOCUA_BIN names the binary (default target/debug/gocua); GOCUA_FIELD_DATABASE_URL a
// database to use (default: a new SQLite file).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function startServer(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "gocua-field-"));
  const bin = process.env.GOCUA_BIN || "target/debug/gocua";
  const child = spawn(bin, ["serve", "--demo"], {
    env: {
      ...process.env,
      GOCUA_DATABASE_URL: process.env.GOCUA_FIELD_DATABASE_URL || `sqlite://${join(dir, "gocua.db")}`,
      GOCUA_BIND: "127.0.0.1:0",
      GOCUA_JWT_SECRET: "field-test-secret-field-test-secret-0123",
      GOCUA_LOG_LEVEL: "warn",
      GOCUA_LOG_FORMAT: "json",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const base = await new Promise((resolve, reject) => {
    const onData = (b) => {
      out += b;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (b) => { out += b; });
    child.on("exit", (code) => reject(new Error(`gocua exited (${code}): ${out}`)));
  });
  return {
    base,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// A REST call with a token; answers {status, body}.
export async function rest(base, method, path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch (_) { parsed = text; }
  return { status: res.status, body: parsed, etag: res.headers.get("etag") };
}

export async function token(base, username) {
  const r = await rest(base, "POST", "/api/v1/auth/login", null, { username, password: "gocua-demo" });
  if (r.status !== 200) throw new Error(`login ${username}: ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}
