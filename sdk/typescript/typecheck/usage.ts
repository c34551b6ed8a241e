// The README's examples, type-checked against the built declarations (tsc --noEmit).

import { tool } from "ai";
import { Agent, tool as agentTool } from "@openai/agents";
import { z } from "zod";

import { Denied, Signoff, type Approval } from "@signoff/sdk";
import { requireApproval } from "@signoff/sdk/ai";
import { requireApproval as gate, runWithApprovals } from "@signoff/sdk/openai-agents";

export async function plain(): Promise<string[]> {
  const signoff = new Signoff({ server: "https://signoff.example.com", key: "so_agent_x" });
  try {
    const approval: Approval = await signoff.requestApproval({
      action: "deploy.service",
      resource: "k8s://prod/payments-api",
      reason: "Fixes the refund rounding bug",
      payload: { image: "payments-api:1.5.0" },
      diff: { before: { image: "payments-api:1.4.2" }, after: { image: "payments-api:1.5.0" } },
      labels: { env: "prod" },
      timeoutMs: 60_000,
    });
    return approval.approvers.map((a) => a.email ?? a.subject);
  } catch (error) {
    if (error instanceof Denied) return error.comments;
    throw error;
  }
}

export const deploy = requireApproval(
  tool({
    description: "Deploy a service",
    inputSchema: z.object({ service: z.string(), version: z.string() }),
    execute: async ({ service, version }) => ({ deployed: `${service}@${version}` }),
  }),
  { action: "deploy.service", resource: (input) => `k8s://prod/${input.service}` },
);

const deployTool = agentTool({
  name: "deploy",
  description: "Deploy a service",
  parameters: z.object({ service: z.string() }),
  execute: async ({ service }) => `deployed ${service}`,
});

export const agent = new Agent({ name: "deployer", tools: [gate(deployTool, { action: "deploy.service" })] });

export async function interrupted(): Promise<unknown> {
  const result = await runWithApprovals(agent, "Ship payments-api");
  return result.finalOutput;
}
