// The server's wire shapes (GET /api/v1/openapi.json), as this client reads them.

/** Where a request stands. */
export type Status = "pending" | "approved" | "denied" | "expired" | "cancelled" | "executed" | "failed";

/** JSON the server keeps exactly (integers within ±2^53; send larger ones as strings). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A person as the OpenID Provider described them. */
export interface Identity {
  issuer: string;
  subject: string;
  email?: string | null;
  email_verified: boolean;
  name?: string | null;
  groups: string[];
}

export interface DecisionView {
  reviewer: Identity;
  verdict: "approve" | "deny";
  comment: string;
  channel: string;
  decided_at: string;
}

/** The policy that matched a request, frozen on it when it was created. */
export interface PolicySnapshot {
  id?: string | null;
  name: string;
  version: number;
  effect: "allow" | "deny" | "require_approval" | string;
  approvals_required: number;
  approver_groups: string[];
  deny_reason?: string | null;
  why?: string[] | null;
  [key: string]: unknown;
}

export interface AgentRef {
  id: string;
  name: string;
  owner?: string | null;
}

export interface ResultReport {
  status: "executed" | "failed";
  detail?: Json;
}

/** A request as the API returns it. */
export interface RequestView {
  id: string;
  status: Status;
  agent: AgentRef;
  on_behalf_of?: string | null;
  action: string;
  resource: string;
  title: string;
  reason: string;
  labels: Record<string, string>;
  payload: Json;
  diff?: string | null;
  context?: Json;
  digest: string;
  policy: PolicySnapshot;
  approvals: number;
  decisions: DecisionView[];
  created_at: string;
  expires_at: string;
  decided_at?: string | null;
  started_at?: string | null;
  result?: ResultReport | null;
  break_glass?: boolean;
  /** The signed approval receipt, on servers that issue one. */
  receipt?: string | null;
  [key: string]: unknown;
}

/** A diff: unified diff text, or before/after JSON from which the server computes one. */
export type Diff = string | { before: Json; after: Json };

/** What an agent asks to do. */
export interface ApprovalInput {
  /** Dotted lower-case action name, e.g. `db.export`. */
  action: string;
  /** What the action touches, e.g. `postgres://prod/customers`. */
  resource: string;
  /** Why the agent wants to do it. */
  reason: string;
  /** A one-line summary for reviewers; `<action> <resource>` when absent. */
  title?: string;
  /** The exact command or arguments that will run. */
  payload?: Json;
  diff?: Diff;
  labels?: Record<string, string>;
  /** The human the agent acts for; they may not decide it. */
  onBehalfOf?: string;
  /** Free context: conversation excerpt, trace link, risk. */
  context?: Json;
  /** Makes retries safe: the same key and body create one request. Generated when absent. */
  idempotencyKey?: string;
  /** Pending lifetime on the server, in seconds (the server's default when absent). */
  ttlS?: number;
  /** Where the server POSTs the outcome (its host must be on the server's list). */
  callbackUrl?: string;
}

export interface WaitOptions {
  /** How long to wait in all, in milliseconds. */
  timeoutMs?: number;
  /** Stops waiting (and, for `requestApproval`, cancels the request). */
  signal?: AbortSignal;
}

export interface RequestApprovalOptions extends ApprovalInput, WaitOptions {}
