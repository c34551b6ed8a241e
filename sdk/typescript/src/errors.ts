import type { DecisionView, RequestView } from "./types.js";

/** Anything this client refuses or cannot do. */
export class SignoffError extends Error {
  /** The request concerned, when there is one. */
  readonly requestId?: string;
  /** The request as the server last answered, when there is one. */
  readonly request?: RequestView;

  constructor(message: string, options: { requestId?: string; request?: RequestView; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.requestId = options.requestId ?? options.request?.id;
    this.request = options.request;
  }
}

/** The server answered with an error (`{"error": {"code", "message"}}`). */
export class ApiError extends SignoffError {
  /** HTTP status, e.g. 401 for a refused key, 409 for a request no longer pending. */
  readonly status: number;
  /** The server's error code, e.g. `unauthorized`, `conflict`, `already_started`. */
  readonly code: string;

  constructor(status: number, code: string, message: string, requestId?: string) {
    super(`${message} (HTTP ${status}, ${code})`, { requestId });
    this.status = status;
    this.code = code;
  }
}

/** The server could not be reached for longer than the client tolerates an outage. */
export class Unreachable extends SignoffError {}

/** One reviewer's denial. */
export interface Denial {
  /** The reviewer's name, else their email, else their subject. */
  reviewer: string;
  email?: string;
  comment: string;
  decidedAt: string;
}

/** A reviewer (or a policy) denied the request. */
export class Denied extends SignoffError {
  /** The reviewers' comments (a policy's reason when a policy denied it). */
  readonly comments: string[];
  readonly denials: Denial[];
  /** The policy's reason, when a policy (not a person) denied it. */
  readonly policyReason?: string;
  declare readonly requestId: string;
  declare readonly request: RequestView;

  constructor(request: RequestView) {
    const denials = request.decisions.filter((d) => d.verdict === "deny").map(denialOf);
    const policyReason =
      denials.length === 0 && request.policy?.effect === "deny"
        ? request.policy.deny_reason || `denied by policy "${request.policy.name}"`
        : undefined;
    const comments = denials.map((d) => d.comment).filter((c) => c.length > 0);
    if (policyReason) comments.push(policyReason);
    const said = comments.length > 0 ? `: ${comments.join("; ")}` : "";
    super(`request ${request.id} (${request.action} on ${request.resource}) was denied${said}`, { request });
    this.comments = comments;
    this.denials = denials;
    this.policyReason = policyReason;
  }
}

/** Nobody decided before the request's lifetime on the server ran out. */
export class Expired extends SignoffError {
  declare readonly requestId: string;
  constructor(request: RequestView) {
    super(`request ${request.id} (${request.action} on ${request.resource}) expired before anyone decided`, { request });
  }
}

/** The request was withdrawn (by this agent, elsewhere). */
export class Cancelled extends SignoffError {
  declare readonly requestId: string;
  constructor(request: RequestView) {
    super(`request ${request.id} (${request.action} on ${request.resource}) was cancelled`, { request });
  }
}

/** No decision came within the client's timeout; the request was cancelled on the server. */
export class TimedOut extends SignoffError {
  declare readonly requestId: string;
  /** Whether the server confirmed the cancellation (false when it could not be reached). */
  readonly cancelled: boolean;
  constructor(requestId: string, timeoutMs: number, cancelled: boolean, request?: RequestView) {
    const what = cancelled ? "the request was cancelled" : "the request could not be cancelled (server unreachable)";
    super(`no decision on request ${requestId} within ${timeoutMs} ms; ${what}`, { requestId, request });
    this.cancelled = cancelled;
  }
}

function denialOf(decision: DecisionView): Denial {
  const r = decision.reviewer;
  return {
    reviewer: r.name || r.email || r.subject,
    email: r.email ?? undefined,
    comment: decision.comment,
    decidedAt: decision.decided_at,
  };
}
