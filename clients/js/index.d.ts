// Types for @flowserve/client (hand-written: the package has no build step).

export declare const DEFAULT_BASE_URL: string;

export type InputType = "chat" | "text" | "any";
export type OutputType = "chat" | "text" | "any" | "debug";
/** Per-node field overrides: `{ "ChatOutput-abc": { "sender_name": "Bot" } }`. */
export type Tweaks = Record<string, Record<string, unknown>>;

export interface LangflowClientOptions {
  /** The server's URL, with any path prefix (default http://127.0.0.1:7860). */
  baseUrl?: string;
  /** Sent as the x-api-key header. */
  apiKey?: string;
  /** How long to wait for an answer (a whole run; a stream's first bytes). Default 300000; 0 = no limit. */
  timeoutMs?: number;
  /** Retries of answers 429/503 and of connections never made. Default 3. */
  maxRetries?: number;
  /** First backoff when no Retry-After is given (doubles each retry, jittered). Default 500. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A Retry-After longer than this is not waited for: the error is thrown. Default 60000. */
  maxRetryAfterMs?: number;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
}

export interface RunOptions {
  /** The flow's id or endpoint name. */
  flowId: string;
  inputValue?: string;
  tweaks?: Tweaks;
  /** Continue a conversation: the flow's memory sees this session's earlier turns. */
  sessionId?: string;
  inputType?: InputType;
  outputType?: OutputType;
  /** Only this component's output. */
  outputComponent?: string;
  /** Global variables for this run only (X-LANGFLOW-GLOBAL-VAR-<NAME> headers). */
  variables?: Record<string, string>;
  signal?: AbortSignal;
}

/** Options of `flow(id).run(input, options)`, in either spelling. */
export interface FlowRunOptions extends Omit<Partial<RunOptions>, "flowId" | "inputValue"> {
  session_id?: string;
  input_type?: InputType;
  output_type?: OutputType;
  output_component?: string;
}

export declare class RunResult {
  constructor(body: unknown);
  /** The text of the first output message ("" when the flow produced none). */
  readonly output: string;
  readonly sessionId: string;
  /** Langflow's `outputs` list, untouched. */
  readonly outputs: unknown[];
  /** `duration`, `tokens_used`... as the server reports them. */
  readonly metadata: Record<string, unknown>;
  /** The whole response body. */
  readonly raw: Record<string, unknown>;
  /** Same as `output` (the name @datastax/langflow-client uses). */
  chatOutputText(): string;
}

export interface TokenEvent {
  event: "token";
  data: unknown;
  /** A piece of the answer; the chunks join to the message's text. */
  chunk: string;
  /** The id of the message the chunk belongs to. */
  id: string;
}
export interface MessageEvent {
  event: "add_message";
  data: unknown;
  text: string;
  sender: string;
  senderName: string;
  sessionId: string;
  id: string;
  state: string;
}
export interface EndEvent {
  event: "end";
  data: unknown;
  result: RunResult;
}
export interface ErrorEvent {
  event: "error";
  data: unknown;
  detail: string;
  code: string;
}
export interface OtherEvent {
  event: string;
  data: unknown;
}
export type StreamEvent = TokenEvent | MessageEvent | EndEvent | ErrorEvent | OtherEvent;

export interface Flow {
  readonly id: string;
  readonly tweaks: Tweaks;
  run(inputValue: string, options?: FlowRunOptions): Promise<RunResult>;
  stream(inputValue: string, options?: FlowRunOptions): AsyncGenerator<StreamEvent, void, undefined>;
}

export declare class LangflowClient {
  constructor(options?: LangflowClientOptions);
  readonly baseUrl: string;
  runFlow(options: RunOptions): Promise<RunResult>;
  streamFlow(options: RunOptions): AsyncGenerator<StreamEvent, void, undefined>;
  flow(flowId: string, tweaks?: Tweaks): Flow;
}
export default LangflowClient;

/** An error answer (4xx/5xx): `status`, `detail` (a string) and `code` as the server sent them. */
export declare class LangflowError extends Error {
  constructor(
    detail: string,
    init?: {
      status?: number;
      code?: string;
      requestId?: string | null;
      headers?: Record<string, string>;
      body?: unknown;
      cause?: unknown;
    },
  );
  readonly status: number;
  readonly detail: string;
  /** flowserve's code ("flow_not_found", "rate_limited"...), or one from the status. */
  readonly code: string;
  readonly requestId: string | null;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

/** No answer: the server could not be reached, timed out, or the stream broke off (status 0). */
export declare class LangflowConnectionError extends LangflowError {
  constructor(detail: string, init?: { code?: string; cause?: unknown });
}

export declare function retryAfterSeconds(value: string | null | undefined, now?: number): number | null;
export declare function mainText(outputs: unknown): string;
export declare function makeEvent(raw: unknown): StreamEvent;
export declare class EventParser {
  feed(text: string): StreamEvent[];
  close(): StreamEvent[];
}
