// Server-sent events with the staff member's token: EventSource cannot send a header, so
// the stream is read with fetch. Reconnects with Last-Event-ID until stopped.
import { authHeaders } from "./api.js";

export function stream(path, onEvent, { onState } = {}) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;

  async function once() {
    const headers = { accept: "text/event-stream", ...authHeaders() };
    if (lastId) headers["last-event-id"] = lastId;
    const answer = await fetch(path, { headers, signal: controller.signal });
    if (!answer.ok || !answer.body) throw new Error(`stream ${answer.status}`);
    onState?.("open");
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const event = { type: "message", data: "" };
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(":")) continue;
          const at = line.indexOf(":");
          const name = at < 0 ? line : line.slice(0, at);
          const text = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
          if (name === "event") event.type = text;
          else if (name === "data") data.push(text);
          else if (name === "id") lastId = event.id = text;
        }
        if (!data.length) continue;
        event.data = data.join("\n");
        try {
          event.json = JSON.parse(event.data);
        } catch {
          event.json = null;
        }
        onEvent(event);
      }
    }
  }

  (async () => {
    let delay = 1000;
    while (!stopped) {
      try {
        await once();
        delay = 1000;
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
        onState?.("retrying");
      }
      if (stopped) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  })();

  return () => {
    stopped = true;
    controller.abort();
  };
}
