// The Vercel AI SDK (`ai`): a tool whose `execute` runs only once a reviewer approves.
//
//   import { requireApproval } from "@signoff/sdk/ai";
//   const deploy = requireApproval(tool({ ... }), { action: "deploy.service", resource: (i) => `k8s://prod/${i.service}` });

import type { Tool, ToolExecutionOptions } from "ai";

import { Signoff, type Approval } from "./client.js";
import { Cancelled, Denied, Expired, TimedOut } from "./errors.js";
import { refusalMessage } from "./refusal.js";
import type { Json } from "./types.js";

export { refusalMessage };

type Per<INPUT, T> = T | ((input: INPUT, options: ToolExecutionOptions) => T);

export interface RequireApprovalOptions<INPUT> {
  /** The client; `new Signoff()` (SIGNOFF_SERVER, SIGNOFF_AGENT_KEY) when absent. */
  signoff?: Signoff;
  /** Dotted action name reviewers and policies see, e.g. `deploy.service`. */
  action: Per<INPUT, string>;
  /** What the call touches. */
  resource: Per<INPUT, string>;
  /** Why (default: the tool's description). */
  reason?: Per<INPUT, string>;
  title?: Per<INPUT, string | undefined>;
  labels?: Per<INPUT, Record<string, string> | undefined>;
  onBehalfOf?: Per<INPUT, string | undefined>;
  /** What reviewers see as the payload (default: the tool call's input). */
  payload?: (input: INPUT) => Json;
  /** Extra context (the tool call's id is always added). */
  context?: Per<INPUT, Record<string, Json> | undefined>;
  /** Idempotency key (default: a new one per call). */
  idempotencyKey?: (input: INPUT, options: ToolExecutionOptions) => string;
  /** How long to wait for a decision, in ms (default: until the request leaves pending). */
  timeoutMs?: number;
  /**
   * What the model gets instead of the tool's output when the call is not approved
   * (default: a sentence with the reviewers' comments).
   */
  onRefused?: (error: Denied | Expired | Cancelled | TimedOut, input: INPUT) => unknown;
}

function pick<INPUT, T>(value: Per<INPUT, T>, input: INPUT, options: ToolExecutionOptions): T {
  return typeof value === "function" ? (value as (i: INPUT, o: ToolExecutionOptions) => T)(input, options) : value;
}

/**
 * The same tool, but its `execute` first asks Signoff and runs only once approved; the start
 * and the outcome are recorded on the request. When the call is denied (or expires, or times
 * out) the model gets the reviewers' comment as the tool's result, so it can adapt.
 */
export function requireApproval<INPUT, OUTPUT>(
  tool: Tool<INPUT, OUTPUT>,
  options: RequireApprovalOptions<INPUT>,
): Tool<INPUT, OUTPUT> {
  const execute = tool.execute;
  if (typeof execute !== "function") {
    throw new TypeError("requireApproval needs a tool with an execute function");
  }
  let client = options.signoff;
  const gated = async (input: INPUT, callOptions: ToolExecutionOptions) => {
    client ??= new Signoff();
    const context = pick(options.context, input, callOptions);
    try {
      return await client.guard(
        {
          action: pick(options.action, input, callOptions),
          resource: pick(options.resource, input, callOptions),
          reason: pick(options.reason, input, callOptions) ?? tool.description ?? "The agent called a tool",
          title: pick(options.title, input, callOptions),
          labels: pick(options.labels, input, callOptions),
          onBehalfOf: pick(options.onBehalfOf, input, callOptions),
          payload: options.payload ? options.payload(input) : (input as Json),
          context: { ...context, tool_call_id: callOptions.toolCallId },
          idempotencyKey: options.idempotencyKey?.(input, callOptions),
          timeoutMs: options.timeoutMs,
          signal: callOptions.abortSignal,
        },
        async (_approval: Approval) => {
          const output = execute(input, callOptions);
          if (output && typeof (output as AsyncIterable<OUTPUT>)[Symbol.asyncIterator] === "function") {
            // A streaming tool: its last value is its output.
            let last: OUTPUT | undefined;
            for await (const part of output as AsyncIterable<OUTPUT>) last = part;
            return last as OUTPUT;
          }
          return await (output as PromiseLike<OUTPUT> | OUTPUT);
        },
      );
    } catch (error) {
      if (error instanceof Denied || error instanceof Expired || error instanceof Cancelled || error instanceof TimedOut) {
        return (options.onRefused ? options.onRefused(error, input) : refusalMessage(error)) as OUTPUT;
      }
      throw error;
    }
  };
  return { ...tool, execute: gated } as Tool<INPUT, OUTPUT>;
}
