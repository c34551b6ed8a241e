// OpenAI Agents JS (`@openai/agents`): reviewers decide a tool call through Signoff.
//
// Either wrap the tool, so its call waits for the decision inline:
//
//   import { requireApproval } from "@signoff/sdk/openai-agents";
//   const deploy = requireApproval(tool({ name: "deploy", ... }), { action: "deploy.service" });
//
// or keep the framework's own idiom (`needsApproval: true` on the tool) and let Signoff answer
// the run's interruptions:
//
//   import { runWithApprovals } from "@signoff/sdk/openai-agents";
//   const result = await runWithApprovals(agent, "Ship payments-api 1.5.0");

import type { Agent, FunctionTool, RunContext, RunResult, RunState, RunToolApprovalItem } from "@openai/agents";
import { run } from "@openai/agents";

import { Signoff } from "./client.js";
import { Cancelled, Denied, Expired, TimedOut } from "./errors.js";
import { refusalMessage } from "./refusal.js";
import type { Json } from "./types.js";

export { refusalMessage };

/** What a tool call is, for Signoff: its tool's name and the arguments the model gave. */
export interface ToolCall {
  name: string;
  /** The parsed arguments (the raw text when they are not JSON). */
  arguments: Json;
  callId?: string;
}

type Per<T> = T | ((call: ToolCall) => T);

export interface ApprovalOptions {
  /** The client; `new Signoff()` (SIGNOFF_SERVER, SIGNOFF_AGENT_KEY) when absent. */
  signoff?: Signoff;
  /** Dotted action name (default `openai_agents.<tool name>`). */
  action?: Per<string>;
  /** What the call touches (default: the tool's name). */
  resource?: Per<string>;
  /** Why (default: the tool's description, or a sentence naming the tool). */
  reason?: Per<string>;
  title?: Per<string | undefined>;
  labels?: Per<Record<string, string> | undefined>;
  onBehalfOf?: Per<string | undefined>;
  context?: Per<Record<string, Json> | undefined>;
  /** How long to wait for each decision, in ms (default: until the request leaves pending). */
  timeoutMs?: number;
  /** What the model gets when a call is not approved (default: a sentence with the comments). */
  onRefused?: (error: Denied | Expired | Cancelled | TimedOut, call: ToolCall) => string;
}

function pick<T>(value: Per<T> | undefined, call: ToolCall): T | undefined {
  return typeof value === "function" ? (value as (c: ToolCall) => T)(call) : value;
}

function actionName(toolName: string): string {
  const part = toolName.toLowerCase().replace(/[^a-z0-9_-]+/g, "_").slice(0, 100) || "tool";
  return `openai_agents.${part}`;
}

function parsed(text: string | undefined): Json {
  if (text === undefined) return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

function request(call: ToolCall, options: ApprovalOptions, description?: string, signal?: AbortSignal) {
  const context = pick(options.context, call);
  return {
    action: pick(options.action, call) ?? actionName(call.name),
    resource: pick(options.resource, call) ?? call.name,
    reason: pick(options.reason, call) ?? description ?? `The agent called the tool ${call.name}`,
    title: pick(options.title, call),
    labels: pick(options.labels, call),
    onBehalfOf: pick(options.onBehalfOf, call),
    payload: call.arguments,
    context: { ...context, tool: call.name, ...(call.callId ? { call_id: call.callId } : {}) },
    timeoutMs: options.timeoutMs,
    signal,
  };
}

function isRefusal(error: unknown): error is Denied | Expired | Cancelled | TimedOut {
  return error instanceof Denied || error instanceof Expired || error instanceof Cancelled || error instanceof TimedOut;
}

/**
 * The same function tool, but each call first asks Signoff and runs only once approved (its
 * start and outcome recorded on the request). When it is not approved the model gets the
 * reviewers' comment as the tool's output, so it can adapt.
 */
export function requireApproval<T extends FunctionTool<any, any, any>>(tool: T, options: ApprovalOptions = {}): T {
  const invoke = tool.invoke;
  let client = options.signoff;
  const gated: FunctionTool<any, any, any>["invoke"] = async (runContext: RunContext<any>, input: string, details) => {
    client ??= new Signoff();
    const call: ToolCall = { name: tool.name, arguments: parsed(input), callId: details?.toolCall?.callId };
    try {
      return await client.guard(request(call, options, tool.description, details?.signal), () =>
        invoke(runContext, input, details),
      );
    } catch (error) {
      if (isRefusal(error)) return options.onRefused ? options.onRefused(error, call) : refusalMessage(error);
      throw error;
    }
  };
  return { ...tool, invoke: gated };
}

/**
 * Answers a run's tool-approval interruptions (tools with `needsApproval`) through Signoff:
 * each becomes a request; an approval approves the call in the run's state, anything else
 * rejects it with the reviewers' comment as the message the model gets. Then run the agent
 * again with `result.state`.
 */
export async function decideInterruptions(
  result: { interruptions?: RunToolApprovalItem[]; state: RunState<any, any> },
  options: ApprovalOptions = {},
): Promise<void> {
  const client = options.signoff ?? new Signoff();
  for (const item of result.interruptions ?? []) {
    const raw = item.rawItem as { callId?: string; name?: string };
    const call: ToolCall = {
      name: item.name ?? raw.name ?? "tool",
      arguments: parsed(item.arguments),
      callId: raw.callId,
    };
    try {
      await client.requestApproval(request(call, options));
      result.state.approve(item);
    } catch (error) {
      if (!isRefusal(error)) throw error;
      const message = options.onRefused ? options.onRefused(error, call) : refusalMessage(error);
      result.state.reject(item, { message });
    }
  }
}

/**
 * `run(agent, input)`, with every tool-approval interruption decided through Signoff until
 * the run finishes.
 */
export async function runWithApprovals<TAgent extends Agent<any, any>>(
  agent: TAgent,
  input: Parameters<typeof run>[1],
  options: ApprovalOptions & { runOptions?: Record<string, unknown> } = {},
): Promise<RunResult<any, TAgent>> {
  const { runOptions, ...approval } = options;
  let result = (await run(agent, input, runOptions as never)) as RunResult<any, TAgent>;
  while (result.interruptions && result.interruptions.length > 0) {
    await decideInterruptions(result, approval);
    result = (await run(agent, result.state, runOptions as never)) as RunResult<any, TAgent>;
  }
  return result;
}
