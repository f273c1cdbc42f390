// Starts what the client's tests talk to: a real `flowserve serve` on a free loopback port
// (a temporary flows directory, embedded stores, a known API key) and the repository's
// fake OpenAI-compatible provider (tests/fakes/openai_server.py), which streams tokens.
//
// The Python interpreter is FLOWSERVE_PYTHON, else the repository's .venv (make install).

import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const FLOWS = join(REPO, "tests/fixtures/flows");
export const API_KEY = "fs_js_client_tests_" + "k".repeat(24);
const PYTHON = process.env.FLOWSERVE_PYTHON || join(REPO, ".venv/bin/python");
// Bounds on waiting for a process to come up: they stop a hang, they time nothing.
const STARTUP_LIMIT_MS = 60_000;

function flowIdOf(file) {
  return JSON.parse(readFileSync(join(FLOWS, file), "utf8")).id;
}

export const HELLO = flowIdOf("hello-world.json");
export const BASIC = flowIdOf("basic-prompting.json");
export const MEMORY = flowIdOf("memory-chatbot.json");
export const PROMPT_ECHO = flowIdOf("prompt-echo.json");

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function accepts(port) {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

class Process {
  constructor(name, args, options) {
    if (!existsSync(PYTHON)) {
      throw new Error(`no Python at ${PYTHON}: run \`make install\` or set FLOWSERVE_PYTHON`);
    }
    this.name = name;
    this.output = "";
    this.child = spawn(PYTHON, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    const keep = (chunk) => {
      this.output = (this.output + chunk).slice(-20_000);
    };
    this.child.stdout.on("data", keep);
    this.child.stderr.on("data", keep);
    this.exited = new Promise((done) => this.child.once("exit", (code, signal) => done({ code, signal })));
  }

  async until(ready) {
    const giveUp = Date.now() + STARTUP_LIMIT_MS;
    let exit = null;
    this.exited.then((e) => (exit = e));
    for (;;) {
      if (await ready()) return;
      if (exit) throw new Error(`${this.name} exited (${JSON.stringify(exit)}):\n${this.output}`);
      if (Date.now() > giveUp) throw new Error(`${this.name} did not come up:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

/** The fake LLM provider; `baseUrl` is what OPENAI_BASE_URL points at. */
export async function startFakeProvider({ tokenLatency = 0.01 } = {}) {
  const port = await freePort();
  const proc = new Process(
    "fake provider",
    ["-m", "tests.fakes.openai_server", "--port", String(port), "--token-latency", String(tokenLatency)],
    { cwd: REPO, env: { ...process.env, PYTHONPATH: REPO } },
  );
  await proc.until(() => accepts(port));
  return { baseUrl: `http://127.0.0.1:${port}/v1`, stop: () => proc.stop() };
}

/**
 * A `flowserve serve` with the given flow files (from tests/fixtures/flows, each optionally
 * changed by `edit`) and extra FLOWSERVE_* settings. Stop it with `stop()`.
 */
export async function startFlowserve({ flows = ["hello-world.json"], edit = {}, env = {}, provider } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "flowserve-js-"));
  const flowsDir = join(dir, "flows");
  mkdirSync(flowsDir);
  for (const file of flows) {
    if (edit[file]) {
      const document = JSON.parse(readFileSync(join(FLOWS, file), "utf8"));
      edit[file](document);
      writeFileSync(join(flowsDir, file), JSON.stringify(document));
    } else {
      copyFileSync(join(FLOWS, file), join(flowsDir, file));
    }
  }
  const port = await freePort();
  // Only what these tests choose: no database or Redis URL from the caller's shell.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(FLOWSERVE_|LANGFLOW_|OPENAI_|ANTHROPIC_)/.test(name)),
  );
  const proc = new Process(
    "flowserve",
    [join(dirname(PYTHON), "flowserve"), "serve", "--host", "127.0.0.1", "--port", String(port), "--flows-dir", flowsDir],
    {
      cwd: dir,
      env: {
        ...inherited,
        FLOWSERVE_API_KEY: API_KEY,
        FLOWSERVE_SQLITE_PATH: join(dir, "flowserve.db"),
        FLOWSERVE_LOG_LEVEL: "warning",
        FLOWSERVE_ACCESS_LOG: "false",
        FLOWSERVE_OUTBOUND_ALLOWLIST: "127.0.0.1",
        ...(provider ? { OPENAI_API_KEY: "sk-js-tests", OPENAI_BASE_URL: provider.baseUrl } : {}),
        ...env,
      },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await proc.until(async () => {
    try {
      return (await fetch(`${url}/health`)).ok;
    } catch {
      return false;
    }
  });
  return {
    url,
    output: () => proc.output,
    stop: async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
