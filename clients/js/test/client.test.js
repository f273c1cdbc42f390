// The JavaScript client against a live flowserve (started by ./harness.js) and the fake
// LLM provider: runs, streams, sessions, errors and retries as a user of the client sees them.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import {
  EventParser,
  LangflowClient,
  LangflowConnectionError,
  LangflowError,
  RunResult,
  retryAfterSeconds,
} from "../index.js";
import { API_KEY, BASIC, HELLO, MEMORY, PROMPT_ECHO, freePort, startFakeProvider, startFlowserve } from "./harness.js";

const MODEL_TWEAKS = { "LanguageModelComponent-FLeYF": { model: "gpt-4o-mini" } };

function withAgentModel(document) {
  for (const node of document.data.nodes) {
    if (node.id === "Agent-AlLub") {
      node.data.node.template.model.value = [{ name: "gpt-4o-mini", provider: "OpenAI" }];
    }
  }
}

/** A fetch that counts the requests it makes (the client's own injection point). */
function countingFetch() {
  const calls = [];
  const fetchImpl = (url, init) => {
    calls.push(String(url));
    return fetch(url, init);
  };
  return { calls, fetchImpl };
}

async function collect(iterable) {
  const events = [];
  for await (const event of iterable) events.push(event);
  return events;
}

describe("against a live flowserve", () => {
  let provider;
  let server;
  let client;

  before(async () => {
    provider = await startFakeProvider();
    server = await startFlowserve({
      flows: ["hello-world.json", "prompt-echo.json", "basic-prompting.json", "memory-chatbot.json"],
      edit: { "memory-chatbot.json": withAgentModel },
      provider,
    });
    client = new LangflowClient({ baseUrl: server.url, apiKey: API_KEY });
  });

  after(async () => {
    await server?.stop();
    await provider?.stop();
  });

  test("runFlow returns the first output's text and the raw Langflow response", async () => {
    // By endpoint name; the flow's prompt wraps the input.
    const result = await client.runFlow({ flowId: "prompt-echo", inputValue: "hello there" });
    assert.ok(result instanceof RunResult);
    assert.equal(result.output, "You are terse. Question: hello there");
    assert.equal(result.chatOutputText(), result.output);
    assert.equal(result.sessionId, PROMPT_ECHO);
    assert.equal(result.raw.session_id, result.sessionId);
    assert.deepEqual(result.outputs, result.raw.outputs);
    assert.equal(result.outputs[0].outputs[0].results.message.text, result.output);
    assert.ok(result.metadata.duration >= 0);
    const hello = await client.runFlow({ flowId: HELLO });
    assert.equal(hello.output, "Hello, World!");
  });

  test("tweaks reach the flow", async () => {
    const tweaks = { "Prompt-t2oaK": { template: "Tweaked: {question}" } };
    const result = await client.runFlow({ flowId: PROMPT_ECHO, inputValue: "x", tweaks });
    assert.equal(result.output, "Tweaked: x");
  });

  test("an LLM flow answers through the provider", async () => {
    const result = await client.runFlow({ flowId: BASIC, inputValue: "tell me a joke", tweaks: MODEL_TWEAKS });
    assert.equal(result.output, "Echo: tell me a joke");
    assert.ok(result.metadata.tokens_used > 0, JSON.stringify(result.metadata));
  });

  test("a session id carries a conversation: the flow's memory sees the earlier turn", async () => {
    const sessionId = `js-session-${Date.now()}`;
    const first = await client.runFlow({ flowId: MEMORY, inputValue: "My name is Ada", sessionId });
    const second = await client.runFlow({ flowId: MEMORY, inputValue: "What is my name?", sessionId });
    assert.equal(first.sessionId, sessionId);
    assert.equal(second.output, "Echo: What is my name?");
    const stored = await fetch(`${server.url}/api/v1/monitor/messages?session_id=${sessionId}`, {
      headers: { "x-api-key": API_KEY },
    });
    assert.equal(stored.status, 200);
    const texts = (await stored.json()).map((m) => m.text);
    assert.deepEqual(texts, ["My name is Ada", "Echo: My name is Ada", "What is my name?", "Echo: What is my name?"]);
  });

  test("streamFlow yields token events with chunks, then end with the result", async () => {
    const events = await collect(
      client.streamFlow({ flowId: BASIC, inputValue: "stream me something", tweaks: MODEL_TWEAKS }),
    );
    const kinds = events.map((e) => e.event);
    assert.equal(kinds[0], "add_message");
    assert.equal(kinds.at(-1), "end");
    const tokens = events.filter((e) => e.event === "token");
    assert.ok(tokens.length > 1, `tokens: ${tokens.length}`);
    assert.equal(tokens.map((e) => e.chunk).join(""), "Echo: stream me something");
    const end = events.at(-1);
    assert.ok(end.result instanceof RunResult);
    assert.equal(end.result.output, "Echo: stream me something");
    assert.deepEqual(new Set(tokens.map((e) => e.id)), new Set([end.result.outputs[0].outputs[0].results.message.data.id]));
    const user = events.find((e) => e.event === "add_message" && e.sender === "User");
    assert.equal(user.text, "stream me something");
  });

  test("aborting a stream stops it with the caller's reason", async () => {
    const controller = new AbortController();
    const seen = [];
    const reading = (async () => {
      for await (const event of client.streamFlow({
        flowId: BASIC,
        inputValue: "a long answer of many words to stream",
        tweaks: MODEL_TWEAKS,
        signal: controller.signal,
      })) {
        seen.push(event.event);
        if (event.event === "token") controller.abort(new Error("enough"));
      }
    })();
    await assert.rejects(reading, { message: "enough" });
    assert.ok(!seen.includes("end"), seen.join(","));
  });

  test("a run that fails after the stream started ends with an error event", async () => {
    const tweaks = { "LanguageModelComponent-FLeYF": { model: "gpt-4o-mini", provider: "Anthropic" } };
    const events = await collect(client.streamFlow({ flowId: BASIC, inputValue: "x", tweaks }));
    const last = events.at(-1);
    assert.equal(last.event, "error");
    assert.match(last.detail, /Anthropic/);
    assert.ok(last.code.length > 0);
  });

  test("flow(id).run / .stream follow @datastax/langflow-client's shape", async () => {
    const flow = client.flow(BASIC, MODEL_TWEAKS);
    const result = await flow.run("compat", { session_id: "compat-session" });
    assert.equal(result.chatOutputText(), "Echo: compat");
    assert.equal(result.sessionId, "compat-session");
    const events = await collect(flow.stream("compat stream"));
    assert.equal(events.at(-1).result.output, "Echo: compat stream");
  });

  test("an unknown flow is a LangflowError with status, detail and code", async () => {
    const error = await client.runFlow({ flowId: "no-such-flow", inputValue: "x" }).catch((e) => e);
    assert.ok(error instanceof LangflowError);
    assert.ok(error instanceof Error);
    assert.equal(error.status, 404);
    assert.equal(error.code, "flow_not_found");
    assert.equal(error.detail, "Flow identifier no-such-flow not found");
    assert.match(error.requestId, /^[0-9a-f]+$/);
    // A stream is refused the same way, before any event.
    await assert.rejects(collect(client.streamFlow({ flowId: "no-such-flow" })), { status: 404, code: "flow_not_found" });
  });

  test("bad input is a 422 naming the problem", async () => {
    const error = await client
      .runFlow({ flowId: HELLO, inputValue: "x", tweaks: { "NoSuchNode-1": { a: 1 } } })
      .catch((e) => e);
    assert.ok(error instanceof LangflowError);
    assert.equal(error.status, 422);
    assert.match(error.detail, /NoSuchNode-1/);
  });

  test("a missing or wrong key is a 401", async () => {
    const anonymous = new LangflowClient({ baseUrl: server.url });
    await assert.rejects(anonymous.runFlow({ flowId: HELLO, inputValue: "x" }), { status: 401, code: "missing_api_key" });
    const wrong = new LangflowClient({ baseUrl: server.url, apiKey: "fs_wrong" });
    await assert.rejects(wrong.runFlow({ flowId: HELLO, inputValue: "x" }), { status: 401, code: "invalid_api_key" });
  });

  test("the API key does not show when the client is logged", () => {
    assert.ok(!inspect(client, { depth: 5 }).includes(API_KEY));
    assert.ok(!JSON.stringify(client).includes(API_KEY));
  });

  test("a flowId is required", async () => {
    await assert.rejects(client.runFlow({ inputValue: "x" }), TypeError);
  });
});

describe("retries", () => {
  let server;

  before(async () => {
    // Two runs per key per 4 s window: the third is a 429 with a Retry-After of 1-4 s.
    server = await startFlowserve({
      flows: ["prompt-echo.json"],
      env: { FLOWSERVE_RATE_LIMIT_PER_KEY: "2", FLOWSERVE_RATE_LIMIT_WINDOW: "4" },
    });
  });

  after(async () => {
    await server?.stop();
  });

  test("429 is retried after Retry-After, and raised when retries are off", async () => {
    const impatient = new LangflowClient({ baseUrl: server.url, apiKey: API_KEY, maxRetries: 0 });
    await impatient.runFlow({ flowId: PROMPT_ECHO, inputValue: "one" });
    await impatient.runFlow({ flowId: PROMPT_ECHO, inputValue: "two" });
    const error = await impatient.runFlow({ flowId: PROMPT_ECHO, inputValue: "three" }).catch((e) => e);
    assert.ok(error instanceof LangflowError);
    assert.equal(error.status, 429);
    assert.equal(error.code, "rate_limited");
    const wait = Number(error.headers["retry-after"]);
    assert.ok(wait >= 1 && wait <= 4, `retry-after ${wait}`);

    const { calls, fetchImpl } = countingFetch();
    const patient = new LangflowClient({ baseUrl: server.url, apiKey: API_KEY, fetch: fetchImpl });
    const result = await patient.runFlow({ flowId: PROMPT_ECHO, inputValue: "four" });
    assert.equal(result.output, "You are terse. Question: four");
    assert.ok(calls.length >= 2, `requests made: ${calls.length}`);
  });

  test("a refused connection is retried, then a LangflowConnectionError", async () => {
    const port = await freePort(); // nothing listens there
    const { calls, fetchImpl } = countingFetch();
    const client = new LangflowClient({
      baseUrl: `http://127.0.0.1:${port}`,
      maxRetries: 2,
      backoffMs: 5,
      fetch: fetchImpl,
    });
    const error = await client.runFlow({ flowId: HELLO, inputValue: "x" }).catch((e) => e);
    assert.ok(error instanceof LangflowConnectionError);
    assert.ok(error instanceof LangflowError);
    assert.equal(error.status, 0);
    assert.equal(error.code, "connection_error");
    assert.equal(calls.length, 3);
  });
});

describe("pieces", () => {
  test("Retry-After is read as seconds or as an HTTP date", () => {
    assert.equal(retryAfterSeconds("3"), 3);
    assert.equal(retryAfterSeconds(" 1.5 "), 1.5);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(retryAfterSeconds("Thu, 01 Jan 2026 00:00:07 GMT", now), 7);
    assert.equal(retryAfterSeconds("soon"), null);
    assert.equal(retryAfterSeconds(null), null);
  });

  test("the stream parser copes with split chunks, CRLF, SSE prefixes and heartbeats", () => {
    const parser = new EventParser();
    const whole = '{"event": "token", "data": {"chunk": "He", "id": "m1"}}\r\n\r\n\n' +
      'data: {"event": "token", "data": {"chunk": "llo", "id": "m1"}}\n\n' +
      '{"event": "end", "data": {"result": {"outputs": [], "session_id": "s"}}}\n\n';
    const events = [];
    for (let i = 0; i < whole.length; i += 7) events.push(...parser.feed(whole.slice(i, i + 7)));
    events.push(...parser.close());
    assert.deepEqual(events.map((e) => e.event), ["token", "token", "end"]);
    assert.equal(events[0].chunk + events[1].chunk, "Hello");
    assert.equal(events[2].result.sessionId, "s");
    assert.throws(() => new EventParser().feed("{not json}\n\n"), { code: "stream_error" });
  });
});
