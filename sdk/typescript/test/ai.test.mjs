// The AI SDK adapter, driven by the AI SDK itself with its mock language model (`ai/test`)
// against a real `signoff-server --dev`, on SQLite and on Postgres.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";

import { Signoff } from "../dist/index.js";
import { requireApproval } from "../dist/ai.js";
import { startServer, stores, uniqueName } from "./harness.mjs";

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 5, text: 5, reasoning: 0 },
};

/** A model that calls `deploy` once, then answers with text; it keeps every prompt it got. */
function scriptedModel() {
  const prompts = [];
  const model = new MockLanguageModelV3({
    doGenerate: async (options) => {
      prompts.push(options.prompt);
      if (prompts.length === 1) {
        return {
          content: [
            {
              type: "tool-call",
              toolCallId: "call-1",
              toolName: "deploy",
              input: JSON.stringify({ service: "payments-api", version: "1.5.0" }),
            },
          ],
          finishReason: { unified: "tool-calls", raw: "tool_calls" },
          usage,
          warnings: [],
        };
      }
      return { content: [{ type: "text", text: "All done." }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
    },
  });
  return { model, prompts };
}

/** The tool results the model was shown, from the prompt of its second call. */
function toolResults(prompt) {
  return prompt
    .filter((message) => message.role === "tool")
    .flatMap((message) => message.content)
    .filter((part) => part.type === "tool-result");
}

function later(promise) {
  promise.catch(() => {});
  return promise;
}

for (const store of stores()) {
  describe(`AI SDK adapter on ${store.name}`, { skip: store.skip }, () => {
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

    function setup() {
      const name = uniqueName("ai-agent");
      const signoff = new Signoff({ server: server.url, key: server.createAgent(name) });
      const runs = [];
      const deploy = requireApproval(
        tool({
          description: "Deploy a service to production",
          inputSchema: z.object({ service: z.string(), version: z.string() }),
          execute: async ({ service, version }) => {
            runs.push({ service, version });
            return { deployed: `${service}@${version}` };
          },
        }),
        {
          signoff,
          action: "deploy.service",
          resource: ({ service }) => `k8s://prod/${service}`,
          title: ({ service, version }) => `Deploy ${service} ${version}`,
          labels: { env: "prod" },
        },
      );
      return { name, signoff, runs, deploy };
    }

    it("runs the tool only once a reviewer approves", async () => {
      const { name, runs, deploy } = setup();
      const { model, prompts } = scriptedModel();
      const result = later(generateText({ model, tools: { deploy }, prompt: "Ship payments-api 1.5.0", stopWhen: stepCountIs(3) }));
      const request = await riley.pendingOf(name);
      assert.equal(request.action, "deploy.service");
      assert.equal(request.resource, "k8s://prod/payments-api");
      assert.equal(request.title, "Deploy payments-api 1.5.0");
      const seen = await riley.get(request.id);
      assert.deepEqual(seen.payload, { service: "payments-api", version: "1.5.0" });
      assert.equal(seen.context.tool_call_id, "call-1");
      await sleep(300);
      assert.equal(runs.length, 0, "the tool ran before anyone approved");
      assert.equal(prompts.length, 1);
      await riley.approve(request.id);
      const { text } = await result;
      assert.equal(text, "All done.");
      assert.deepEqual(runs, [{ service: "payments-api", version: "1.5.0" }]);
      const [shown] = toolResults(prompts[1]);
      assert.deepEqual(shown.output, { type: "json", value: { deployed: "payments-api@1.5.0" } });
      assert.equal((await riley.get(request.id)).status, "executed");
    });

    it("after a denial the model gets the reviewer's comment and the tool never runs", async () => {
      const { name, runs, deploy } = setup();
      const { model, prompts } = scriptedModel();
      const result = later(generateText({ model, tools: { deploy }, prompt: "Ship payments-api 1.5.0", stopWhen: stepCountIs(3) }));
      const request = await riley.pendingOf(name);
      await riley.deny(request.id, "Freeze until Monday; ship to canary first");
      const { text } = await result;
      assert.equal(text, "All done.");
      assert.equal(runs.length, 0);
      assert.equal(prompts.length, 2);
      const [shown] = toolResults(prompts[1]);
      assert.equal(shown.toolCallId, "call-1");
      assert.match(JSON.stringify(shown.output), /Freeze until Monday; ship to canary first/);
      assert.match(JSON.stringify(shown.output), /denied/);
      assert.equal((await riley.get(request.id)).status, "denied");
    });
  });
}
