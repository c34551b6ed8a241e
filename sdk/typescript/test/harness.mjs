// A real `signoff-server --dev` for the tests: on SQLite in a temp dir, or on a fresh Postgres
// database (dropped afterwards), on a free port; agents from its CLI, reviewers through the
// development sign-in and the reviewer API.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";

const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = path.resolve(here, "..");

export const SERVER_BIN = path.resolve(
  packageDir,
  process.env.SIGNOFF_SERVER_BIN ?? "../../target/debug/signoff-server",
);

/**
 * The stores to run on: SQLite always; Postgres when TEST_POSTGRES_URL is set. A Postgres
 * that is not there is a skip, or a failure with SIGNOFF_REQUIRE_POSTGRES=1.
 * Each entry: { name, url?, skip?: string, fail?: string }.
 */
export function stores() {
  const list = [{ name: "sqlite" }];
  const url = process.env.TEST_POSTGRES_URL;
  const required = process.env.SIGNOFF_REQUIRE_POSTGRES === "1";
  if (!url) {
    const why = "TEST_POSTGRES_URL is not set";
    list.push(required ? { name: "postgres", fail: why } : { name: "postgres", skip: why });
    return list;
  }
  const problem = postgresProblem(url);
  if (problem) {
    const why = `no Postgres at ${redact(url)}: ${problem}`;
    if (!required) process.stderr.write(`SKIPPED (${why})\n`);
    list.push(required ? { name: "postgres", url, fail: why } : { name: "postgres", url, skip: why });
  } else {
    list.push({ name: "postgres", url });
  }
  return list;
}

function redact(url) {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
}

function psql(url, sql) {
  return spawnSync("psql", [url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], {
    encoding: "utf8",
    env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
    timeout: 60_000,
  });
}

// Waits (up to a minute) for a Postgres that answers slowly; none listening is a problem at once.
function postgresProblem(url) {
  const until = Date.now() + 60_000;
  for (;;) {
    const r = psql(url, "SELECT 1");
    if (r.error) return `psql could not run: ${r.error.message}`;
    if (r.status === 0) return undefined;
    const said = (r.stderr || "").trim();
    if (/Connection refused|No such file|could not translate host/i.test(said) || Date.now() > until) return said;
    spawnSync("sleep", ["1"]);
  }
}

function databaseUrl(base, name) {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

async function freePort() {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts a dev server on the store; `await server.stop()` when done. */
export async function startServer(store) {
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`no server binary at ${SERVER_BIN}: build it (cargo build -p signoff-server) or set SIGNOFF_SERVER_BIN`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), "signoff-ts-"));
  const port = await freePort();
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("SIGNOFF_") || name === "DATABASE_URL") delete env[name];
  }
  env.SIGNOFF_DATA_DIR = dir;
  env.SIGNOFF_LISTEN = `127.0.0.1:${port}`;
  env.SIGNOFF_SWEEP_INTERVAL = "200ms";
  env.RUST_LOG = process.env.RUST_LOG ?? "warn";
  let database;
  if (store.name === "postgres") {
    database = `signoff_ts_${Date.now()}_${randomBytes(3).toString("hex")}`;
    const made = psql(store.url, `CREATE DATABASE ${database}`);
    if (made.status !== 0) throw new Error(`could not create database ${database}: ${made.stderr}`);
    env.DATABASE_URL = databaseUrl(store.url, database);
  }
  const server = new Server({ dir, port, env, store, database });
  try {
    await server.start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

class Server {
  constructor({ dir, port, env, store, database }) {
    this.dir = dir;
    this.port = port;
    this.env = env;
    this.store = store;
    this.database = database;
    this.url = `http://127.0.0.1:${port}`;
    this.child = undefined;
    this.log = "";
  }

  async start() {
    const child = spawn(SERVER_BIN, ["--dev"], { env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start in 60 s:\n${this.log}`)), 60_000);
      const onData = (chunk) => {
        this.log += chunk.toString();
        if (this.log.includes(`listening on ${this.url}`)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", (chunk) => {
        this.log += chunk.toString();
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code ?? signal}) before it listened:\n${this.log}`));
      });
    });
  }

  /** Stops the process (SIGTERM, then SIGKILL after 10 s). */
  async halt() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(killer);
  }

  /** Stops the server and starts it again on the same port and store. */
  async restart() {
    await this.halt();
    await this.start();
  }

  async stop() {
    await this.halt();
    if (this.database) {
      const dropped = psql(this.store.url, `DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`);
      if (dropped.status !== 0) process.stderr.write(`could not drop ${this.database}: ${dropped.stderr}\n`);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A new agent (and its key) from `signoff-server agents create`. */
  createAgent(name, owner) {
    const args = ["agents", "create", "--name", name];
    if (owner) args.push("--owner", owner);
    const r = spawnSync(SERVER_BIN, args, { env: this.env, encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`agents create failed: ${r.stderr}${r.stdout}`);
    const key = r.stdout.trim().split("\n").pop().trim();
    if (!key.startsWith("so_agent_")) throw new Error(`no key in: ${r.stdout}`);
    return key;
  }

  /** Imports a policy file (TOML text). */
  importPolicies(toml) {
    const file = path.join(this.dir, `policies-${Date.now()}.toml`);
    writeFileSync(file, toml);
    const r = spawnSync(SERVER_BIN, ["policies", "import", file], { env: this.env, encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`policies import failed: ${r.stderr}${r.stdout}`);
  }

  /** A reviewer signed in through the development sign-in (riley, ada, reese). */
  async reviewer(user = "riley") {
    return await Reviewer.signIn(this.url, user);
  }
}

class Reviewer {
  constructor(base) {
    this.base = base;
    this.cookies = new Map();
    this.csrf = undefined;
  }

  static async signIn(base, user) {
    const reviewer = new Reviewer(base);
    const page = await reviewer.#fetch("/auth/dev");
    const formCsrf = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1];
    if (!formCsrf) throw new Error("no CSRF token on the development sign-in page");
    const signedIn = await reviewer.#fetch("/auth/dev", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ user, csrf: formCsrf, next: "/" }).toString(),
    });
    if (signedIn.status !== 303) throw new Error(`development sign-in answered ${signedIn.status}: ${await signedIn.text()}`);
    await signedIn.arrayBuffer();
    const home = await reviewer.#fetch("/");
    reviewer.csrf = /name="csrf-token" content="([^"]+)"/.exec(await home.text())?.[1];
    if (!reviewer.csrf) throw new Error("no CSRF token on the console after sign-in");
    return reviewer;
  }

  async #fetch(pathname, init = {}) {
    const headers = { ...init.headers };
    if (this.cookies.size > 0) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const response = await fetch(`${this.base}${pathname}`, { ...init, headers, redirect: "manual" });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      this.cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    return response;
  }

  async #json(pathname, init = {}) {
    const response = await this.#fetch(pathname, init);
    const text = await response.text();
    const body = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const error = new Error(`${init.method ?? "GET"} ${pathname} answered ${response.status}: ${text}`);
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return body;
  }

  /** One request, as a reviewer sees it. */
  async get(id) {
    return await this.#json(`/api/v1/requests/${id}`);
  }

  /** Requests in a status (default pending), optionally of one agent. */
  async list({ status = "pending", agent } = {}) {
    const query = new URLSearchParams({ status });
    if (agent) query.set("agent", agent);
    return (await this.#json(`/api/v1/requests?${query}`)).items;
  }

  async decide(id, verdict, comment) {
    const body = { verdict };
    if (comment !== undefined) body.comment = comment;
    return await this.#json(`/api/v1/requests/${id}/decisions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": this.csrf },
      body: JSON.stringify(body),
    });
  }

  async approve(id, comment) {
    return await this.decide(id, "approve", comment);
  }

  async deny(id, comment) {
    return await this.decide(id, "deny", comment);
  }

  /** Waits until the agent has exactly one pending request, and answers it. */
  async pendingOf(agent, timeoutMs = 15_000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const items = await this.list({ agent });
      if (items.length === 1) return items[0];
      if (items.length > 1) throw new Error(`agent ${agent} has ${items.length} pending requests`);
      if (Date.now() > until) throw new Error(`agent ${agent} submitted nothing in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

let counter = 0;
/** A name no other test uses. */
export function uniqueName(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}
