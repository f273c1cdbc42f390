// A small client for flowserve and Langflow servers: run flows, stream their events.
//
// No runtime dependencies: Node 18+ (and browsers, Deno, Bun) have fetch. Types are in
// index.d.ts. Answers 429 and 503 are retried with exponential backoff, honouring
// Retry-After, as are connections that were never established; anything else that
// fails throws a LangflowError carrying the server's status, detail and code.

export const DEFAULT_BASE_URL = "http://127.0.0.1:7860";
const RETRY_STATUSES = new Set([429, 503]);
const GLOBAL_VAR_HEADER = "X-LANGFLOW-GLOBAL-VAR-";
// Errors of a connection that was never made: nothing was sent, so even a POST may retry.
const NOT_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** An error answer of the server (4xx/5xx), or a run that failed. */
export class LangflowError extends Error {
  constructor(detail, { status = 0, code = "error", requestId = null, headers = {}, body = null, cause } = {}) {
    super(status ? `${status} ${code}: ${detail}` : `${code}: ${detail}`, cause ? { cause } : undefined);
    this.name = "LangflowError";
    this.status = status;
    this.detail = detail;
    this.code = code;
    this.requestId = requestId;
    this.headers = headers;
    this.body = body;
  }
}

/** The server could not be reached, timed out, or the event stream broke off. */
export class LangflowConnectionError extends LangflowError {
  constructor(detail, { code = "connection_error", cause } = {}) {
    super(detail, { status: 0, code, cause });
    this.name = "LangflowConnectionError";
  }
}

/** Seconds to wait from a Retry-After header (seconds or an HTTP date); null when absent. */
export function retryAfterSeconds(value, now = Date.now()) {
  if (value == null || String(value).trim() === "") return null;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, (when - now) / 1000);
}

/** The text of the first output message in Langflow's `outputs` structure ("" if none). */
export function mainText(outputs) {
  for (const runOutputs of Array.isArray(outputs) ? outputs : []) {
    for (const result of (runOutputs && runOutputs.outputs) || []) {
      const text = resultText(result);
      if (text !== null) return text;
    }
  }
  return "";
}

function resultText(result) {
  if (!result || typeof result !== "object") return null;
  for (const value of Object.values(result.results || {})) {
    if (value && typeof value === "object" && typeof value.text === "string") return value.text;
    if (typeof value === "string") return value;
  }
  for (const message of result.messages || []) {
    if (message && typeof message.message === "string") return message.message;
  }
  for (const value of Object.values(result.outputs || {})) {
    if (value && typeof value === "object" && "message" in value) return String(value.message);
  }
  return null;
}

/** The answer of a run: `output` is the first output's text, `raw` Langflow's whole body. */
export class RunResult {
  constructor(body) {
    if (!body || typeof body !== "object" || !Array.isArray(body.outputs)) {
      throw new LangflowConnectionError(`not a run result: ${JSON.stringify(body).slice(0, 200)}`, {
        code: "unexpected_answer",
      });
    }
    this.output = mainText(body.outputs);
    this.sessionId = String(body.session_id || "");
    this.outputs = body.outputs;
    this.metadata = body.metadata && typeof body.metadata === "object" ? body.metadata : {};
    this.raw = body;
  }

  /** The chat output's text, as @datastax/langflow-client's FlowResponse names it. */
  chatOutputText() {
    return this.output;
  }
}

/** One event of the run stream, with the fields callers act on lifted out of `data`. */
export function makeEvent(raw) {
  if (!raw || typeof raw !== "object" || typeof raw.event !== "string") {
    throw new LangflowConnectionError(`not a stream event: ${JSON.stringify(raw).slice(0, 200)}`, {
      code: "stream_error",
    });
  }
  const { event, data } = raw;
  const body = data && typeof data === "object" ? data : {};
  const str = (v) => (v == null ? "" : String(v));
  switch (event) {
    case "token":
      return { event, data, chunk: str(body.chunk), id: str(body.id) };
    case "add_message":
      return {
        event,
        data,
        text: str(body.text),
        sender: str(body.sender),
        senderName: str(body.sender_name),
        sessionId: str(body.session_id),
        id: str(body.id),
        state: str((body.properties && body.properties.state) || "complete"),
      };
    case "end":
      return { event, data, result: new RunResult(body.result) };
    case "error": {
      const detail = body.error ?? body.detail ?? body.text ?? data;
      return { event, data, detail: typeof detail === "string" ? detail : JSON.stringify(detail), code: str(body.code) };
    }
    default:
      return { event, data };
  }
}

/** Splits Langflow's stream (JSON objects, each followed by a blank line) into events. */
export class EventParser {
  constructor() {
    this.buffer = "";
  }

  feed(text) {
    this.buffer = (this.buffer + text).replace(/\r\n/g, "\n");
    const events = [];
    let cut;
    while ((cut = this.buffer.indexOf("\n\n")) >= 0) {
      const event = EventParser.decode(this.buffer.slice(0, cut));
      this.buffer = this.buffer.slice(cut + 2);
      if (event) events.push(event);
    }
    return events;
  }

  close() {
    const rest = this.buffer;
    this.buffer = "";
    const event = EventParser.decode(rest);
    return event ? [event] : [];
  }

  static decode(block) {
    // A "data:" prefix (server-sent events) is tolerated; blank lines are heartbeats.
    const payload = block
      .split("\n")
      .map((line) => (line.startsWith("data:") ? line.slice(5) : line).trim())
      .filter((line) => line && !/^(:|event:|id:|retry:)/.test(line))
      .join("\n");
    if (!payload) return null;
    let raw;
    try {
      raw = JSON.parse(payload);
    } catch (cause) {
      throw new LangflowConnectionError(`malformed event in stream: ${payload.slice(0, 200)}`, {
        code: "stream_error",
        cause,
      });
    }
    return makeEvent(raw);
  }
}

async function errorFrom(response) {
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const headers = Object.fromEntries(response.headers.entries());
  let detail;
  let code = null;
  let requestId = response.headers.get("x-request-id");
  if (body && typeof body === "object" && "detail" in body) {
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    if (typeof body.code === "string") code = body.code;
    requestId = body.request_id || requestId;
  } else {
    detail = text.trim().slice(0, 1000) || `HTTP ${response.status}`;
  }
  // Langflow sends no codes: a code from the status, as the Python client's classes do.
  code = code || STATUS_CODES[response.status] || (response.status >= 500 ? "internal_error" : "error");
  return new LangflowError(detail, { status: response.status, code, requestId, headers, body });
}

const STATUS_CODES = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  412: "precondition_failed",
  413: "payload_too_large",
  415: "unsupported_encoding",
  422: "invalid",
  429: "rate_limited",
  500: "internal_error",
  502: "upstream_error",
  503: "unavailable",
  504: "run_timeout",
};

function neverConnected(error, depth = 0) {
  if (!error || depth > 4) return false;
  if (NOT_CONNECTED.has(error.code)) return true;
  // An address with several IPs fails with an AggregateError of each attempt.
  if (Array.isArray(error.errors) && error.errors.some((e) => neverConnected(e, depth + 1))) return true;
  return neverConnected(error.cause, depth + 1);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      if (signal) signal.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    if (signal) signal.addEventListener("abort", aborted, { once: true });
  });
}

function flowPath(flowId) {
  if (typeof flowId !== "string" || !flowId) {
    throw new TypeError("flowId is required: a flow's id or endpoint name");
  }
  return `/api/v1/run/${encodeURIComponent(flowId)}`;
}

function runBody(options) {
  const body = {
    output_type: options.outputType ?? options.output_type ?? "chat",
    input_type: options.inputType ?? options.input_type ?? "chat",
  };
  const input = options.inputValue ?? options.input_value;
  if (input !== undefined && input !== null) body.input_value = String(input);
  if (options.tweaks && Object.keys(options.tweaks).length) body.tweaks = options.tweaks;
  const session = options.sessionId ?? options.session_id;
  if (session) body.session_id = session;
  const component = options.outputComponent ?? options.output_component;
  if (component) body.output_component = component;
  return body;
}

export class LangflowClient {
  #apiKey;

  /**
   * @param {import("./index.js").LangflowClientOptions} [options]
   */
  constructor({
    baseUrl = DEFAULT_BASE_URL,
    apiKey,
    timeoutMs = 300_000,
    maxRetries = 3,
    backoffMs = 500,
    maxBackoffMs = 8_000,
    maxRetryAfterMs = 60_000,
    headers = {},
    fetch: fetchImpl,
  } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.#apiKey = apiKey || null; // private: a logged client does not show it
    this.timeoutMs = timeoutMs;
    this.maxRetries = maxRetries;
    this.backoffMs = backoffMs;
    this.maxBackoffMs = maxBackoffMs;
    this.maxRetryAfterMs = maxRetryAfterMs;
    this.headers = { ...headers };
    this.fetch = fetchImpl || globalThis.fetch;
    if (typeof this.fetch !== "function") {
      throw new TypeError("no fetch available: use Node 18 or later, or pass options.fetch");
    }
  }

  /** Run a flow and wait for its result. */
  async runFlow(options) {
    const response = await this.#send(options, false);
    let body;
    try {
      body = await response.json();
    } catch (cause) {
      throw new LangflowConnectionError("the run's answer is not JSON", { code: "unexpected_answer", cause });
    }
    return new RunResult(body);
  }

  /**
   * Run a flow and yield its events as they arrive (`token` events carry `chunk`), ending
   * with `end` (its `result` is what runFlow returns) or `error` (`detail`, `code`).
   * Errors found before the run starts throw.
   */
  async *streamFlow(options) {
    const response = await this.#send(options, true);
    if (!response.body) throw new LangflowConnectionError("the stream has no body", { code: "stream_error" });
    const parser = new EventParser();
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    let finished = false;
    const last = (event) => {
      finished = event.event === "end" || event.event === "error";
      return event;
    };
    try {
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (cause) {
          if (options.signal && options.signal.aborted) throw options.signal.reason;
          throw new LangflowConnectionError(`the event stream broke off: ${cause.message}`, {
            code: "stream_error",
            cause,
          });
        }
        if (chunk.done) break;
        for (const event of parser.feed(decoder.decode(chunk.value, { stream: true }))) {
          // Events already read are not handed out once the caller has aborted.
          if (options.signal && options.signal.aborted) throw options.signal.reason;
          yield last(event);
        }
      }
      for (const event of [...parser.feed(decoder.decode()), ...parser.close()]) yield last(event);
      if (!finished) {
        throw new LangflowConnectionError("the event stream ended before the run did", { code: "stream_error" });
      }
    } finally {
      // Leaving the loop early cancels the request: the server stops the run.
      await reader.cancel().catch(() => {});
    }
  }

  /** A flow handle in the shape of @datastax/langflow-client: `flow(id).run(input, options)`. */
  flow(flowId, tweaks = {}) {
    const client = this;
    return {
      id: flowId,
      tweaks,
      run(inputValue, options = {}) {
        return client.runFlow({ ...options, flowId, inputValue, tweaks: { ...tweaks, ...options.tweaks } });
      },
      stream(inputValue, options = {}) {
        return client.streamFlow({ ...options, flowId, inputValue, tweaks: { ...tweaks, ...options.tweaks } });
      },
    };
  }

  #headers(options, stream) {
    const headers = {
      ...this.headers,
      "content-type": "application/json",
      accept: stream ? "text/event-stream" : "application/json",
    };
    if (this.#apiKey) headers["x-api-key"] = this.#apiKey;
    for (const [name, value] of Object.entries(options.variables || {})) {
      headers[GLOBAL_VAR_HEADER + name] = String(value);
    }
    return headers;
  }

  #delay(attempt, response) {
    if (attempt >= this.maxRetries) return null;
    if (response) {
      const after = retryAfterSeconds(response.headers.get("retry-after"));
      if (after !== null) {
        const ms = after * 1000;
        return ms <= this.maxRetryAfterMs ? ms : null;
      }
    }
    const base = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** attempt);
    return base / 2 + Math.random() * (base / 2);
  }

  async #send(options, stream) {
    if (!options || typeof options !== "object") throw new TypeError("options with a flowId are required");
    const url = `${this.baseUrl}${flowPath(options.flowId)}?stream=${stream}`;
    const init = {
      method: "POST",
      headers: this.#headers(options, stream),
      body: JSON.stringify(runBody(options)),
    };
    for (let attempt = 0; ; attempt += 1) {
      // The timeout bounds the wait for an answer (a whole run, without streaming; the
      // first bytes with it); the caller's signal may abort at any time, the stream too.
      const controller = new AbortController();
      const timedOut = new LangflowConnectionError(`no answer from ${this.baseUrl} in ${this.timeoutMs} ms`, {
        code: "timeout",
      });
      const timer = this.timeoutMs ? setTimeout(() => controller.abort(timedOut), this.timeoutMs) : null;
      const forward = () => controller.abort(options.signal.reason);
      if (options.signal) {
        if (options.signal.aborted) throw options.signal.reason;
        options.signal.addEventListener("abort", forward, { once: true });
      }
      let response;
      let wait;
      try {
        response = await this.fetch(url, { ...init, signal: controller.signal });
      } catch (error) {
        if (options.signal) options.signal.removeEventListener("abort", forward);
        if (controller.signal.aborted) throw controller.signal.reason;
        wait = neverConnected(error) ? this.#delay(attempt, null) : null;
        if (wait === null) {
          throw new LangflowConnectionError(`cannot reach ${this.baseUrl}: ${error.message}`, { cause: error });
        }
      } finally {
        if (timer) clearTimeout(timer);
      }
      if (response) {
        if (response.ok) return response;
        if (options.signal) options.signal.removeEventListener("abort", forward);
        wait = RETRY_STATUSES.has(response.status) ? this.#delay(attempt, response) : null;
        if (wait === null) throw await errorFrom(response);
        await response.body?.cancel().catch(() => {});
      }
      await sleep(wait, options.signal);
    }
  }
}

export default LangflowClient;
