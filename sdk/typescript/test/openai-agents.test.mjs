// The OpenAI Agents JS adapter, driven by the framework's own runner with a scripted `Model`
// (no model service) against a real `signoff-server --dev`, on SQLite and on Postgres.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

import { Agent, Usage, run, setTracingDisabled, tool } from "@openai/agents";
import { z } from "zod";

import { Signoff } from "../dist/index.js";
import { requireApproval, runWithApprovals } from "../dist/openai-agents.js";
import { startServer, stores, uniqueName } from "./harness.mjs";

// No traces leave the machine.
setTracingDisabled(true);

/** A model that calls `deploy` once, then answers with text; it keeps every request it got. */
class ScriptedModel {
  constructor() {
    this.requests = [];
  }

  async getResponse(request) {
    this.requests.push(request);
    if (this.requests.length === 1) {
      return {
        usage: new Usage(),
        output: [
          {
            type: "function_call",
            callId: "call-1",
            name: "deploy",
            arguments: JSON.stringify({ service: "payments-api", version: "1.5.0" }),
            status: "completed",
          },
        ],
      };
    }
    return {
      usage: new Usage(),
      output: [
        { type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text: "All done." }] },
      ],
    };
  }

  // eslint-disable-next-line require-yield
  async *getStreamedResponse() {
    throw new Error("this scripted model does not stream");
  }
}

/** What the model was shown as the tool's output on its second call. */
function toolOutputs(request) {
  const input = Array.isArray(request.input) ? request.input : [];
  return input.filter((item) => item.type === "function_call_result");
}

function later(promise) {
  promise.catch(() => {});
  return promise;
}

for (const store of stores()) {
  describe(`OpenAI Agents adapter on ${store.name}`, { skip: store.skip }, () => {
    if (store.fail) {
      it("needs Postgres (SIGNOFF_REQUIRE_POSTGRES=1)", () => assert.fail(store.fail));
      return;
    }
    let server;
    let riley;

    before(async () => {
      server = await startServer(store);
      riley = await server.reviewer("riley");
    });
    after(async () => {
      await server?.stop();
    });

    function setup({ needsApproval = false } = {}) {
      const name = uniqueName("oa-agent");
      const signoff = new Signoff({ server: server.url, key: server.createAgent(name) });
      const runs = [];
      const deployTool = tool({
        name: "deploy",
        description: "Deploy a service to production",
        parameters: z.object({ service: z.string(), version: z.string() }),
        needsApproval,
        execute: async ({ service, version }) => {
          runs.push({ service, version });
          return `deployed ${service}@${version}`;
        },
      });
      const model = new ScriptedModel();
      return { name, signoff, runs, model, deployTool };
    }

    const approval = (signoff) => ({
      signoff,
      action: "deploy.service",
      resource: (call) => `k8s://prod/${call.arguments.service}`,
    });

    it("a wrapped tool runs only once a reviewer approves", async () => {
      const { name, signoff, runs, model, deployTool } = setup();
      const agent = new Agent({ name: "deployer", model, tools: [requireApproval(deployTool, approval(signoff))] });
      const result = later(run(agent, "Ship payments-api 1.5.0"));
      const request = await riley.pendingOf(name);
      assert.equal(request.action, "deploy.service");
      assert.equal(request.resource, "k8s://prod/payments-api");
      assert.deepEqual((await riley.get(request.id)).payload, { service: "payments-api", version: "1.5.0" });
      await sleep(300);
      assert.equal(runs.length, 0, "the tool ran before anyone approved");
      await riley.approve(request.id);
      assert.equal((await result).finalOutput, "All done.");
      assert.deepEqual(runs, [{ service: "payments-api", version: "1.5.0" }]);
      assert.match(JSON.stringify(toolOutputs(model.requests[1])), /deployed payments-api@1\.5\.0/);
      assert.equal((await riley.get(request.id)).status, "executed");
    });

    it("a wrapped tool that is denied gives the model the reviewer's comment", async () => {
      const { name, signoff, runs, model, deployTool } = setup();
      const agent = new Agent({ name: "deployer", model, tools: [requireApproval(deployTool, approval(signoff))] });
      const result = later(run(agent, "Ship payments-api 1.5.0"));
      const request = await riley.pendingOf(name);
      await riley.deny(request.id, "Freeze until Monday; ship to canary first");
      assert.equal((await result).finalOutput, "All done.");
      assert.equal(runs.length, 0);
      const outputs = JSON.stringify(toolOutputs(model.requests[1]));
      assert.match(outputs, /Freeze until Monday; ship to canary first/);
    });

    it("needsApproval interruptions are decided by reviewers (approve)", async () => {
      const { name, signoff, runs, model, deployTool } = setup({ needsApproval: true });
      const agent = new Agent({ name: "deployer", model, tools: [deployTool] });
      const result = later(runWithApprovals(agent, "Ship payments-api 1.5.0", approval(signoff)));
      const request = await riley.pendingOf(name);
      await sleep(200);
      assert.equal(runs.length, 0);
      await riley.approve(request.id);
      assert.equal((await result).finalOutput, "All done.");
      assert.equal(runs.length, 1);
    });

    it("needsApproval interruptions are decided by reviewers (deny, with the comment)", async () => {
      const { name, signoff, runs, model, deployTool } = setup({ needsApproval: true });
      const agent = new Agent({ name: "deployer", model, tools: [deployTool] });
      const result = later(runWithApprovals(agent, "Ship payments-api 1.5.0", approval(signoff)));
      const request = await riley.pendingOf(name);
      await riley.deny(request.id, "Not today: the payments team is on call elsewhere");
      assert.equal((await result).finalOutput, "All done.");
      assert.equal(runs.length, 0);
      assert.match(JSON.stringify(toolOutputs(model.requests[1])), /Not today: the payments team is on call elsewhere/);
    });
  });
}
