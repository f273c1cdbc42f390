// The flowserve playground: chat with a PUBLIC flow through the streaming run API.
//
// No framework and nothing fetched from elsewhere. Model output is only ever put in
// the page as text (textContent), never parsed as HTML. The conversation's session
// id lives in sessionStorage: one per browser tab, kept across reloads of the tab,
// so the flow's memory components see the earlier turns.
"use strict";

(function () {
  const root = document.getElementById("playground");
  const runUrl = root.dataset.runUrl;
  const flowId = root.dataset.flowId;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const send = document.getElementById("send");
  const status = document.getElementById("status");
  const newChat = document.getElementById("new-chat");
  const storageKey = "flowserve-playground:" + flowId;
  let busy = false;

  function randomId() {
    // crypto.randomUUID needs a secure context; getRandomValues works everywhere.
    if (window.crypto && typeof window.crypto.randomUUID === "function" && window.isSecureContext) {
      return window.crypto.randomUUID();
    }
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function load() {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(storageKey) || "null");
      if (saved && typeof saved.sessionId === "string" && Array.isArray(saved.transcript)) {
        return saved;
      }
    } catch (_) {
      // Storage disabled or corrupted: start a fresh conversation.
    }
    return { sessionId: "playground-" + randomId(), transcript: [] };
  }

  let state = load();

  function save() {
    try {
      window.sessionStorage.setItem(storageKey, JSON.stringify(state));
    } catch (_) {
      // Private mode or quota: the conversation still works, it is just not kept.
    }
  }

  function bubble(kind, text) {
    const item = document.createElement("li");
    item.className = "message " + kind;
    item.textContent = text || "";
    list.appendChild(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  function setStatus(text) {
    status.textContent = text;
  }

  function setBusy(value) {
    busy = value;
    send.disabled = value;
    newChat.disabled = value;
    root.dataset.busy = value ? "true" : "false";
  }

  // The text of the first output message of a Langflow run result.
  function resultText(result) {
    for (const run of (result && result.outputs) || []) {
      for (const output of (run && run.outputs) || []) {
        const results = (output && output.results) || {};
        for (const value of Object.values(results)) {
          if (value && typeof value.text === "string") return value.text;
          if (typeof value === "string") return value;
        }
      }
    }
    return "";
  }

  function errorText(body, response) {
    const detail = body && typeof body.detail === "string" ? body.detail : "";
    if (response.status === 429) {
      const after = response.headers.get("Retry-After");
      return "Too many messages" + (after ? ": try again in " + after + " s." : ".");
    }
    return detail || "The server answered " + response.status + ".";
  }

  // One reply: bot bubbles by message id, tokens appended as they arrive.
  function replyView() {
    const bubbles = new Map();
    let first = null;

    function forId(id) {
      const key = id || "";
      let item = bubbles.get(key);
      if (!item) {
        item = bubble("bot pending", "");
        bubbles.set(key, item);
        if (!first) first = item;
      }
      return item;
    }

    return {
      message(data) {
        if (!data || data.sender === "User") return;
        const item = forId(data.id);
        if (typeof data.text === "string" && data.text) item.textContent = data.text;
      },
      token(data) {
        if (!data || typeof data.chunk !== "string") return;
        const item = forId(data.id);
        item.appendChild(document.createTextNode(data.chunk));
        item.classList.remove("pending");
        item.scrollIntoView({ block: "end" });
      },
      end(result) {
        const text = resultText(result);
        if (!first) forId("").textContent = text || "(no reply)";
        else if (!first.textContent && text) first.textContent = text;
        for (const item of bubbles.values()) item.classList.remove("pending");
        return first ? first.textContent : text;
      },
      fail(message) {
        for (const [key, item] of bubbles) {
          if (!item.textContent) {
            item.remove();
            bubbles.delete(key);
          }
        }
        bubble("error", message);
      },
    };
  }

  function parseEvent(block) {
    const payload = block
      .split("\n")
      .map((line) => (line.startsWith("data:") ? line.slice(5) : line).trim())
      .filter((line) => line && !/^(event|id|retry):/.test(line))
      .join("\n");
    if (!payload) return null; // a heartbeat
    return JSON.parse(payload);
  }

  async function run(text) {
    const view = replyView();
    const response = await fetch(runUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({
        input_value: text,
        input_type: "chat",
        output_type: "chat",
        session_id: state.sessionId,
      }),
      credentials: "omit",
    });
    if (!response.ok || !response.body) {
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        // Not JSON (a proxy's error page): the status says enough.
      }
      view.fail(errorText(body, response));
      return null;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      buffer = buffer.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (!event) continue;
        if (event.event === "add_message") view.message(event.data);
        else if (event.event === "token") view.token(event.data);
        else if (event.event === "end") return view.end(event.data && event.data.result);
        else if (event.event === "error") {
          view.fail((event.data && event.data.error) || "The run failed.");
          return null;
        }
      }
      if (done) break;
    }
    const last = buffer.trim() ? parseEvent(buffer) : null;
    if (last && last.event === "end") return view.end(last.data && last.data.result);
    view.fail("The reply was cut off before it ended.");
    return null;
  }

  async function submit(event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    bubble("user", text);
    state.transcript.push({ role: "user", text: text });
    save();
    setBusy(true);
    setStatus("Thinking…");
    try {
      const reply = await run(text);
      if (reply !== null) {
        state.transcript.push({ role: "bot", text: reply });
        save();
      }
      setStatus("");
    } catch (error) {
      bubble("error", "Could not reach the server: " + (error && error.message ? error.message : error));
      setStatus("");
    } finally {
      setBusy(false);
      input.focus();
    }
  }

  form.addEventListener("submit", submit);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  newChat.addEventListener("click", () => {
    state = { sessionId: "playground-" + randomId(), transcript: [] };
    save();
    list.replaceChildren();
    setStatus("");
    input.focus();
  });

  for (const turn of state.transcript) bubble(turn.role === "user" ? "user" : "bot", turn.text);
  save();
  setBusy(false);
  root.dataset.ready = "true";
  input.focus();
})();
