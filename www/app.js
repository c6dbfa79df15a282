// The edgeway console: plain modules, no build step, nothing from the internet.
// Every call goes through `api`, which turns problem+json answers into readable
// messages and records the call for the "Recent requests" panel.

const $ = (selector) => document.querySelector(selector);
const recent = [];
const KEY_ITEM = "edgeway.api-key";

class ApiError extends Error {}
/** The gateway refused the key (401): the console asks for another. */
class SignedOut extends ApiError {}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function badge(text) {
  return el("span", { class: `badge ${text}` }, text);
}

/** A readable sentence for a failed answer; never a raw JSON dump. */
async function describe(res) {
  const type = res.headers.get("content-type") || "";
  if (type.includes("json")) {
    const doc = await res.json().catch(() => null);
    if (doc && (doc.detail || doc.title)) {
      return `${doc.title || res.statusText} (${res.status}): ${doc.detail || ""}`.trim();
    }
  }
  return `The gateway answered ${res.status} ${res.statusText}.`;
}

async function api(method, path, { json, body, contentType, quiet } = {}) {
  const init = { method, headers: {} };
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) init.headers.authorization = `Bearer ${key}`;
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["content-type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
    init.headers["content-type"] = contentType || "application/octet-stream";
  }
  const started = performance.now();
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(`Could not reach the gateway: ${err.message}`);
  } finally {
    if (!quiet || !res?.ok) {
      const timing = res?.headers.get("server-timing") || "";
      const worker = /dur=([\d.]+)/.exec(timing);
      record({
        request: `${method} ${path.split("?")[0]}`,
        status: res ? res.status : "—",
        roundTrip: `${(performance.now() - started).toFixed(0)} ms`,
        worker: worker ? `${worker[1]} ms` : "—",
      });
    }
  }
  if (res.status === 401 && !path.startsWith("/healthz")) {
    const message = await describe(res);
    signOut(message);
    throw new SignedOut(message);
  }
  if (!res.ok) throw new ApiError(await describe(res));
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

function record(entry) {
  recent.unshift(entry);
  recent.length = Math.min(recent.length, 20);
  $("#requests-list").replaceChildren(
    ...recent.map((r) => el("tr", {}, el("td", {}, el("code", {}, r.request)), el("td", {}, r.status),
      el("td", {}, r.roundTrip), el("td", {}, r.worker))),
  );
}

/** Runs `action`, showing its error in the panel's error line. */
async function guarded(panel, action) {
  const box = document.querySelector(`[data-error="${panel}"]`);
  box.hidden = true;
  try {
    await action();
  } catch (err) {
    box.textContent = err instanceof ApiError ? err.message : `Something went wrong: ${err.message}`;
    box.hidden = false;
  }
}

function parseJsonField(text, what) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`${what} is not valid JSON.`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `load` until `done(value)` or about a minute passes. */
async function poll(load, done, render) {
  for (let i = 0; i < 120; i++) {
    const value = await load();
    render(value);
    if (done(value)) return value;
    await sleep(500);
  }
  throw new ApiError("Still not finished after a minute; the status above is the latest.");
}

// ---- health --------------------------------------------------------------

async function health() {
  const pill = $("#health");
  try {
    const body = await api("GET", "/healthz", { quiet: true });
    pill.textContent = `Gateway is ${body.status}`;
    pill.className = "pill ok";
  } catch (err) {
    pill.textContent = err.message;
    pill.className = "pill down";
  }
}

// ---- events --------------------------------------------------------------

$("#publish-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  guarded("publish", async () => {
    const topic = form.get("topic").trim();
    const published = await api("POST", `/v1/topics/${encodeURIComponent(topic)}/events`, {
      json: {
        type: form.get("type").trim(),
        attributes: parseJsonField(form.get("attributes"), "Attributes") || {},
        data: parseJsonField(form.get("data"), "Data") ?? null,
      },
    });
    $("#event-id").textContent = published.id;
    $("#event-matched").textContent = published.matched;
    $("#event-result").hidden = false;
    $("#deliveries").replaceChildren();
    if (published.matched === 0) return;
    const settled = (d) => ["delivered", "failed", "skipped"].includes(d.state);
    await poll(
      () => api("GET", `/v1/events/${published.id}`, { quiet: true }),
      (shown) => shown.deliveries.length >= published.matched && shown.deliveries.every(settled),
      (shown) => $("#deliveries").replaceChildren(...shown.deliveries.map((d) => el("tr", {},
        el("td", {}, el("code", {}, d.subscription_id)),
        el("td", { "data-testid": "delivery-state" }, badge(d.state)),
        el("td", {}, d.attempts),
        el("td", {}, d.last_status ?? "—"),
        el("td", {}, d.last_error ?? "")))),
    );
  });
});

// ---- subscriptions -------------------------------------------------------

async function loadSubscriptions() {
  const topic = $("#subs-load").elements.topic.value.trim();
  const subs = await api("GET", `/v1/topics/${encodeURIComponent(topic)}/subscriptions`);
  $("#subs-list").replaceChildren(...subs.map((s) => el("tr", {},
    el("td", {}, el("code", {}, s.id)),
    el("td", {}, s.kind),
    el("td", {}, s.destination),
    el("td", {}, badge(s.status), s.declared ? " (declared)" : ""),
    el("td", {}, s.declared
      ? el("small", {}, "in wrangler.toml")
      : el("button", {
        class: "secondary",
        onclick: () => guarded("subs", async () => {
          await api("DELETE", `/v1/topics/${encodeURIComponent(topic)}/subscriptions/${s.id}`);
          await loadSubscriptions();
        }),
      }, "Delete")))));
}

$("#subs-load").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded("subs", loadSubscriptions);
});

$("#subs-add").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  guarded("subs", async () => {
    const topic = $("#subs-load").elements.topic.value.trim();
    const kind = form.get("kind");
    const destination = form.get("destination").trim();
    const target = kind === "webhook"
      ? { kind, url: destination, secrets: [form.get("secret").trim()].filter(Boolean) }
      : kind === "queue" ? { kind, binding: destination } : { kind, function: destination };
    const filter = parseJsonField(form.get("filter"), "The filter");
    await api("POST", `/v1/topics/${encodeURIComponent(topic)}/subscriptions`, {
      json: filter === undefined ? { target } : { target, filter },
    });
    await loadSubscriptions();
  });
});

// ---- jobs ----------------------------------------------------------------

async function followJob(record) {
  $("#job-result").hidden = false;
  $("#job-id").textContent = record.id;
  $("#job-output").replaceChildren();
  const steps = [];
  const finished = await poll(
    () => api("GET", `/v1/jobs/${record.id}`, { quiet: true }),
    (job) => job.status === "done" || job.status === "failed",
    (job) => {
      if (steps[steps.length - 1] !== job.status) steps.push(job.status);
      $("#job-status").replaceWith(Object.assign(badge(job.status), { id: "job-status" }));
      $("#job-steps").replaceChildren(...steps.map((s) => el("li", {}, s)));
    },
  );
  const out = $("#job-output");
  if (finished.status === "failed") {
    out.append(el("p", { class: "error" }, finished.error || "The job failed."));
  } else if (finished.result?.data_url) {
    const r = finished.result;
    out.append(
      el("p", {}, `Thumbnail ${r.width}×${r.height} of a ${r.original.width}×${r.original.height} image:`),
      el("img", { class: "thumbnail", src: r.data_url, alt: "thumbnail", "data-testid": "thumbnail" }),
    );
  } else if (finished.result) {
    const r = finished.result;
    out.append(el("p", { "data-testid": "job-summary" },
      `${r.words} words on ${r.lines} line(s). Most frequent: ${r.top.map(([w, n]) => `${w} (${n})`).join(", ")}.`));
  }
  const took = finished.finished_ms - finished.created_ms;
  out.append(el("p", {}, el("small", {}, `${finished.attempts} invocation attempt(s), ${took} ms from submit to result.`)));
}

$("#job-image").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = event.target.elements.image.files[0];
  guarded("jobs", async () => {
    if (!file) throw new ApiError("Choose an image first.");
    const record = await api("POST", "/v1/jobs/thumbnail", { body: file, contentType: file.type });
    await followJob(record);
  });
});

$("#job-words").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = event.target.elements.text.value;
  guarded("jobs", async () => followJob(await api("POST", "/v1/jobs/wordcount", { json: { text } })));
});

// ---- KV ------------------------------------------------------------------

$("#kv-list").addEventListener("submit", (event) => {
  event.preventDefault();
  const prefix = event.target.elements.prefix.value;
  guarded("kv", async () => {
    const keys = await api("GET", `/v1/kv?prefix=${encodeURIComponent(prefix)}`);
    $("#kv-value").hidden = true;
    $("#kv-keys").replaceChildren(...(keys.length ? keys.map((k) => el("li", {}, el("button", {
      onclick: () => guarded("kv", async () => {
        const value = await api("GET", `/v1/kv/${k.name.split("/").map(encodeURIComponent).join("/")}`);
        const pre = $("#kv-value");
        pre.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
        pre.hidden = false;
      }),
    }, k.name))) : [el("li", {}, "No keys with this prefix.")]));
  });
});

// ---- routes --------------------------------------------------------------

async function loadRoutes() {
  const routes = await api("GET", "/v1/routes");
  $("#routes-list").replaceChildren(...routes.map((r) => el("tr", {},
    el("td", {}, r.method), el("td", {}, el("code", {}, r.pattern)), el("td", {}, r.feature ?? ""))));
}

// ---- API keys ------------------------------------------------------------

async function loadKeys() {
  const keys = await api("GET", "/v1/keys");
  $("#keys-list").replaceChildren(...keys.map((k) => el("tr", {},
    el("td", {}, el("code", {}, k.id)),
    el("td", {}, k.name),
    el("td", {}, k.scopes.join(", ")),
    el("td", {}, el("button", {
      class: "secondary",
      onclick: () => guarded("keys", async () => {
        await api("DELETE", `/v1/keys/${k.id}`);
        await loadKeys();
      }),
    }, "Revoke")))));
}

$("#key-add").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  guarded("keys", async () => {
    const scopes = form.get("scopes").split(",").map((s) => s.trim()).filter(Boolean);
    const made = await api("POST", "/v1/keys", { json: { name: form.get("name").trim(), scopes } });
    $("#key-secret").textContent = made.key;
    $("#key-made").hidden = false;
    event.target.reset();
    await loadKeys();
  });
});

// ---- sign-in -------------------------------------------------------------

function showSignedIn(signedIn) {
  $("#sign-in-panel").hidden = signedIn;
  $("#signed-in").hidden = !signedIn;
  $("#console").hidden = !signedIn;
  $("nav").hidden = !signedIn;
}

function signOut(reason) {
  sessionStorage.removeItem(KEY_ITEM);
  showSignedIn(false);
  const box = document.querySelector('[data-error="sign-in"]');
  box.textContent = reason ? `That key was refused. ${reason}` : "";
  box.hidden = !reason;
}

async function loadPanels() {
  await guarded("routes", loadRoutes);
  if (!sessionStorage.getItem(KEY_ITEM)) return;
  showSignedIn(true);
  await guarded("subs", loadSubscriptions);
  await guarded("keys", loadKeys);
}

$("#sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_ITEM, event.target.elements.key.value.trim());
  event.target.reset();
  loadPanels();
});

$("#sign-out").addEventListener("click", () => signOut());

health();
if (sessionStorage.getItem(KEY_ITEM)) loadPanels();
else showSignedIn(false);
