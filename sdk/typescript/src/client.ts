import { ApiError, Cancelled, Denied, Expired, SignoffError, TimedOut, Unreachable } from "./errors.js";
import type {
  ApprovalInput,
  DecisionView,
  Json,
  PolicySnapshot,
  RequestApprovalOptions,
  RequestView,
  WaitOptions,
} from "./types.js";

export interface SignoffOptions {
  /** The server's URL; `SIGNOFF_SERVER` when absent. */
  server?: string;
  /** The agent's API key (`so_agent_…`); `SIGNOFF_AGENT_KEY` when absent. */
  key?: string;
  /** Plain `http://` to a host other than this machine (the key then travels in the clear). */
  allowInsecureHttp?: boolean;
  /** Seconds each long-poll lasts at most (1-300, default 60). */
  pollSeconds?: number;
  /** How long to keep retrying while the server cannot be reached, in ms (default 120 000). */
  outageToleranceMs?: number;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
}

/** A reviewer who approved. */
export interface Approver {
  name?: string;
  email?: string;
  issuer: string;
  subject: string;
  comment: string;
  channel: string;
  decidedAt: string;
}

/** An approved request: run exactly what was submitted. */
export interface Approval {
  id: string;
  status: RequestView["status"];
  /** The people who approved (empty when a policy or a grant approved it). */
  approvers: Approver[];
  /** The policy that decided, its version and why it matched. */
  policy: PolicySnapshot;
  /** SHA-256 over the canonical action, resource, labels, payload and diff. */
  digest: string;
  /** The signed approval receipt, once the server issues one. */
  receipt?: string;
  /** The request as the server answered. */
  request: RequestView;
}

/** What `submit` answers. */
export interface Submission {
  id: string;
  /** The key that makes resubmitting this request safe. */
  idempotencyKey: string;
  /** True when the server had this request already (same key and body). */
  replayed: boolean;
  request: RequestView;
}

const MAX_TITLE = 200;
const CALL_TIMEOUT_MS = 30_000;
const CANCEL_GRACE_MS = 10_000;

/** A failure worth retrying: the network, or the server briefly unable to answer. */
class Transient extends Error {
  retryAfterMs?: number;
  constructor(message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }
}

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const value = p?.env?.[name];
  return value === undefined || value === "" ? undefined : value;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The request as an `Approval`, or the error its status means. */
export function settle(request: RequestView): Approval {
  switch (request.status) {
    case "approved":
    case "executed":
    case "failed":
      return {
        id: request.id,
        status: request.status,
        approvers: request.decisions.filter((d) => d.verdict === "approve").map(approverOf),
        policy: request.policy,
        digest: request.digest,
        receipt: typeof request.receipt === "string" ? request.receipt : undefined,
        request,
      };
    case "denied":
      throw new Denied(request);
    case "expired":
      throw new Expired(request);
    case "cancelled":
      throw new Cancelled(request);
    default:
      throw new SignoffError(`request ${request.id} is still ${request.status}`, { request });
  }
}

function approverOf(d: DecisionView): Approver {
  return {
    name: d.reviewer.name ?? undefined,
    email: d.reviewer.email ?? undefined,
    issuer: d.reviewer.issuer,
    subject: d.reviewer.subject,
    comment: d.comment,
    channel: d.channel,
    decidedAt: d.decided_at,
  };
}

/**
 * A Signoff agent client.
 *
 * ```ts
 * const signoff = new Signoff(); // SIGNOFF_SERVER, SIGNOFF_AGENT_KEY
 * await signoff.requestApproval({ action: "db.export", resource: "postgres://prod/customers", reason: "Quarterly report" });
 * ```
 */
export class Signoff {
  readonly server: string;
  readonly #key: string;
  readonly #fetch: typeof fetch;
  readonly #pollSeconds: number;
  readonly #outageToleranceMs: number;

  constructor(options: SignoffOptions = {}) {
    const server = options.server ?? env("SIGNOFF_SERVER");
    const key = options.key ?? env("SIGNOFF_AGENT_KEY");
    if (!server) throw new SignoffError("no Signoff server: pass `server` or set SIGNOFF_SERVER");
    if (!key) throw new SignoffError("no agent key: pass `key` or set SIGNOFF_AGENT_KEY");
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new SignoffError(`the Signoff server \`${server}\` is not a URL`);
    }
    const insecureAllowed = options.allowInsecureHttp ?? ["1", "true", "yes"].includes(env("SIGNOFF_ALLOW_INSECURE_HTTP") ?? "");
    if (url.protocol === "http:" && !isLoopback(url.hostname) && !insecureAllowed) {
      throw new SignoffError(
        `the Signoff server must be https:// (or http:// to this machine): the key would travel in the clear to ${url.host}; ` +
          "set SIGNOFF_ALLOW_INSECURE_HTTP=1 or allowInsecureHttp to allow it",
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new SignoffError(`the Signoff server \`${server}\` is not an http(s) URL`);
    }
    this.server = server.replace(/\/+$/, "");
    this.#key = key;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new SignoffError("no global fetch: pass `fetch`");
    this.#fetch = f;
    this.#pollSeconds = Math.max(1, Math.min(300, Math.floor(options.pollSeconds ?? 60)));
    this.#outageToleranceMs = options.outageToleranceMs ?? 120_000;
  }

  /**
   * Submits the action, waits for the decision (reconnecting across network errors and
   * server restarts) and resolves to the approval. Rejects with `Denied` (the reviewers'
   * comments), `Expired`, `Cancelled`, or `TimedOut` after `timeoutMs` (the request is then
   * cancelled). An aborted `signal` cancels the request too.
   */
  async requestApproval(options: RequestApprovalOptions): Promise<Approval> {
    const started = Date.now();
    const deadline = options.timeoutMs === undefined ? Infinity : started + options.timeoutMs;
    const { signal } = options;
    const submission = await this.submit(options, { signal, deadline });
    const id = submission.id;
    let view = submission.request;
    try {
      view = await this.#waitUntil(id, view, deadline, signal);
    } catch (error) {
      if (signal?.aborted) await this.#cancelQuietly(id);
      throw error;
    }
    if (view.status === "pending") {
      const after = await this.#cancelQuietly(id);
      if (after && after.status !== "pending" && after.status !== "cancelled") return settle(after);
      throw new TimedOut(id, options.timeoutMs ?? 0, after?.status === "cancelled", after ?? view);
    }
    return settle(view);
  }

  /** Submits a request (safe to retry: the same idempotency key and body make one request). */
  async submit(input: ApprovalInput, options: { signal?: AbortSignal; deadline?: number } = {}): Promise<Submission> {
    const idempotencyKey = input.idempotencyKey ?? globalThis.crypto.randomUUID();
    const body = newRequest(input);
    const answer = await this.#retrying(
      () =>
        this.#call("POST", "/api/v1/requests", {
          body,
          headers: { "Idempotency-Key": idempotencyKey },
          signal: options.signal,
        }),
      options.signal,
      options.deadline,
    );
    const request = answer.json as RequestView;
    if (request.action !== body.action || request.resource !== body.resource) {
      throw new SignoffError(
        `the server answered about another action (${request.action} on ${request.resource}); nothing was approved`,
        { request },
      );
    }
    return { id: request.id, idempotencyKey, replayed: answer.replayed, request };
  }

  /** The request as it stands now. */
  async status(id: string, options: { signal?: AbortSignal } = {}): Promise<RequestView> {
    const answer = await this.#retrying(
      () => this.#call("GET", `/api/v1/requests/${encodeURIComponent(id)}`, { signal: options.signal, requestId: id }),
      options.signal,
    );
    return this.#checked(id, answer.json);
  }

  /**
   * Waits until the request leaves `pending` or `timeoutMs` passes (without one: until it
   * leaves pending), and answers the request as it then stands. Never cancels anything.
   */
  async wait(id: string, options: WaitOptions = {}): Promise<RequestView> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    return this.#waitUntil(id, undefined, deadline, options.signal);
  }

  /** Withdraws a pending request (409 `ApiError` when it is no longer pending). */
  async cancel(id: string, options: { signal?: AbortSignal } = {}): Promise<RequestView> {
    const answer = await this.#retrying(
      () =>
        this.#call("POST", `/api/v1/requests/${encodeURIComponent(id)}/cancel`, { signal: options.signal, requestId: id }),
      options.signal,
    );
    return this.#checked(id, answer.json);
  }

  /**
   * Records, just before running an approved action, that it starts. A second start of the
   * same approval (here or anywhere else) is an `ApiError` with code `already_started`.
   */
  async start(id: string, options: { signal?: AbortSignal } = {}): Promise<RequestView> {
    const answer = await this.#retrying(
      () =>
        this.#call("POST", `/api/v1/requests/${encodeURIComponent(id)}/start`, { signal: options.signal, requestId: id }),
      options.signal,
    );
    return this.#checked(id, answer.json);
  }

  /** Says how an approved action went. */
  async report(
    id: string,
    status: "executed" | "failed",
    detail?: Json,
    options: { signal?: AbortSignal } = {},
  ): Promise<RequestView> {
    const body: Record<string, unknown> = { status };
    if (detail !== undefined) body.detail = detail;
    let attempts = 0;
    try {
      const answer = await this.#retrying(() => {
        attempts += 1;
        return this.#call("POST", `/api/v1/requests/${encodeURIComponent(id)}/result`, {
          body,
          signal: options.signal,
          requestId: id,
        });
      }, options.signal);
      return this.#checked(id, answer.json);
    } catch (error) {
      // A retry after a lost answer finds the report already made: that is success.
      if (attempts > 1 && error instanceof ApiError && error.status === 409) {
        const now = await this.status(id, options);
        if (now.status === status) return now;
      }
      throw error;
    }
  }

  /**
   * Runs `action` only once the request is approved, records its start (so one approval runs
   * once) and reports how it went. Rejects like `requestApproval` when it is not approved.
   */
  async guard<T>(options: RequestApprovalOptions, action: (approval: Approval) => Promise<T> | T): Promise<T> {
    const approval = await this.requestApproval(options);
    if (approval.status !== "approved") {
      throw new SignoffError(`request ${approval.id} already ran (${approval.status})`, { request: approval.request });
    }
    await this.start(approval.id, { signal: options.signal });
    let result: T;
    try {
      result = await action(approval);
    } catch (error) {
      const detail = { error: error instanceof Error ? error.message : String(error) };
      await this.report(approval.id, "failed", detail).catch(() => undefined);
      throw error;
    }
    await this.report(approval.id, "executed").catch(() => undefined);
    return result;
  }

  // Long-polls until the request leaves pending or the deadline passes.
  async #waitUntil(
    id: string,
    known: RequestView | undefined,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<RequestView> {
    let view = known;
    while (view === undefined || view.status === "pending") {
      const remaining = deadline - Date.now();
      if (view !== undefined && remaining <= 0) return view;
      let seconds = Math.min(this.#pollSeconds, Math.floor(Math.max(0, remaining) / 1000));
      if (seconds === 0 && remaining > 0 && view !== undefined) {
        await sleep(remaining, signal);
        seconds = 0;
      }
      const path = `/api/v1/requests/${encodeURIComponent(id)}/wait?timeout_s=${seconds}`;
      const answer = await this.#retrying(
        () => this.#call("GET", path, { signal, timeoutMs: seconds * 1000 + CALL_TIMEOUT_MS, requestId: id }),
        signal,
        deadline,
      ).catch((error) => {
        if (view !== undefined && error instanceof Unreachable && Date.now() >= deadline) return undefined;
        throw error;
      });
      if (answer === undefined) return view as RequestView;
      view = this.#checked(id, answer.json);
    }
    return view;
  }

  async #cancelQuietly(id: string): Promise<RequestView | undefined> {
    // Retried for a few seconds, past the caller's deadline: an outage should not leave it pending.
    const signal = AbortSignal.timeout(CANCEL_GRACE_MS);
    try {
      return await this.cancel(id, { signal });
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        return await this.status(id, { signal }).catch(() => undefined);
      }
      return undefined;
    }
  }

  #checked(id: string, json: unknown): RequestView {
    const view = json as RequestView;
    if (!view || typeof view !== "object" || view.id !== id) {
      throw new SignoffError(`the server answered about another request than ${id}`, { requestId: id });
    }
    return view;
  }

  // Retries transient failures with backoff, until the outage lasts too long or the deadline passes.
  async #retrying<T>(attempt: () => Promise<T>, signal?: AbortSignal, deadline: number = Infinity): Promise<T> {
    let failingSince = 0;
    let delay = 100;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof Transient)) throw error;
        const now = Date.now();
        if (failingSince === 0) failingSince = now;
        const outage = now - failingSince;
        if (outage >= this.#outageToleranceMs || now >= deadline) {
          throw new Unreachable(`the Signoff server at ${this.server} could not answer: ${error.message}`, {
            cause: error.cause ?? error,
          });
        }
        const wait = Math.min(error.retryAfterMs ?? delay, Math.max(0, deadline - now), 5_000);
        delay = Math.min(delay * 2, 1_000);
        await sleep(wait + Math.floor(Math.random() * 50), signal);
      }
    }
  }

  async #call(
    method: string,
    path: string,
    options: {
      body?: unknown;
      headers?: Record<string, string>;
      signal?: AbortSignal;
      timeoutMs?: number;
      requestId?: string;
    } = {},
  ): Promise<{ status: number; json: unknown; replayed: boolean }> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? CALL_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.#key}`,
      Accept: "application/json",
      ...options.headers,
    };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(`${this.server}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal,
      });
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new Transient(error instanceof Error ? error.message : String(error), { cause: error });
    }
    let json: unknown = undefined;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (response.ok) {
      if (json === undefined) throw new Transient(`the server answered ${response.status} without JSON`);
      return { status: response.status, json, replayed: response.headers.get("idempotent-replayed") === "true" };
    }
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (response.status === 429 || response.status === 502 || response.status === 503 || response.status === 504) {
      const retryAfter = Number(response.headers.get("retry-after"));
      throw new Transient(error?.message ?? `HTTP ${response.status}`, {
        retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      });
    }
    throw new ApiError(
      response.status,
      error?.code ?? "http_error",
      error?.message ?? `the server answered ${response.status}`,
      options.requestId,
    );
  }
}

function newRequest(input: ApprovalInput): Record<string, unknown> & { action: string; resource: string } {
  if (!input || typeof input.action !== "string" || typeof input.resource !== "string") {
    throw new SignoffError("a request needs an action and a resource");
  }
  const body: Record<string, unknown> & { action: string; resource: string } = {
    action: input.action,
    resource: input.resource,
    title: input.title ?? defaultTitle(input.action, input.resource),
  };
  if (input.reason !== undefined) body.reason = input.reason;
  if (input.payload !== undefined) body.payload = input.payload;
  if (input.diff !== undefined) body.diff = input.diff;
  if (input.labels !== undefined) body.labels = input.labels;
  if (input.onBehalfOf !== undefined) body.on_behalf_of = input.onBehalfOf;
  if (input.context !== undefined) body.context = input.context;
  if (input.ttlS !== undefined) body.ttl_s = input.ttlS;
  if (input.callbackUrl !== undefined) body.callback_url = input.callbackUrl;
  return body;
}

function defaultTitle(action: string, resource: string): string {
  const title = `${action} ${resource}`.replace(/\s+/g, " ").trim();
  const chars = Array.from(title);
  return chars.length <= MAX_TITLE ? title : `${chars.slice(0, MAX_TITLE - 1).join("")}…`;
}
