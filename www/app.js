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

// ---- orders (a workflow) ------------------------------------------------------

const OUTCOME_COLORS = {
  ok: "#2a7a3a", error: "#b3261e", timeout: "#a86b00",
  running: "#3366cc", waiting: "#3366cc", sleeping: "#3366cc",
};
const ENDED = ["complete", "errored", "terminated"];

/** Each step attempt as a bar from its start to its end (or now, while open). */
function drawTimeline(view) {
  const chart = $("#order-timeline");
  const steps = view.steps;
  const row = 22;
  const height = Math.max(40, steps.length * row + 24);
  chart.setAttribute("viewBox", `0 0 600 ${height}`);
  if (!steps.length) return chart.replaceChildren(svg("text", { x: 8, y: 24 }, "No step has started yet."));
  const start = Math.min(...steps.map((s) => s.started_ms));
  // Open attempts run to now: the browser's clock, kept past every start so a
  // clock behind the gateway's cannot draw a bar backwards.
  const now = Math.max(Date.now(), ...steps.map((s) => s.started_ms));
  const end = Math.max(...steps.map((s) => s.ended_ms ?? now));
  const span = Math.max(end - start, 1);
  const left = 190;
  const x = (ms) => left + ((ms - start) / span) * (600 - left - 10);
  const nodes = [];
  steps.forEach((s, i) => {
    const y = 8 + i * row;
    const stop = s.ended_ms ?? now;
    const took = s.ended_ms ? `${s.ended_ms - s.started_ms} ms` : "under way";
    nodes.push(
      svg("text", { x: 4, y: y + 13 }, `${s.name} #${s.attempt}`),
      svg("rect", {
        x: x(s.started_ms), y, height: 16, rx: 3,
        width: Math.max(x(stop) - x(s.started_ms), 3),
        fill: OUTCOME_COLORS[s.outcome] || "#8888",
        "data-step": s.name, "data-outcome": s.outcome,
        "aria-label": `${s.name} attempt ${s.attempt}: ${s.outcome}, ${took}`,
      }),
    );
  });
  nodes.push(svg("text", { x: left, y: height - 4 }, "0 ms"),
    svg("text", { x: 520, y: height - 4 }, `${span} ms`));
  chart.replaceChildren(...nodes);
}

function renderOrder(view) {
  const engine = view.engine.status;
  const output = view.engine.output;
  const status = ENDED.includes(engine) && output?.status ? output.status : engine;
  $("#order-status").replaceWith(Object.assign(badge(status), { id: "order-status" }));
  drawTimeline(view);
  $("#order-steps").replaceChildren(...view.steps.map((s) => el("li", {},
    `${s.name} `, el("small", {}, `#${s.attempt} `), badge(s.outcome),
    s.error ? el("small", {}, ` ${s.error}`) : "")));
  if (view.steps.some((s) => s.outcome !== "ok")) $("#order-view").dataset.sawPending = "true";
  $("#order-approve").hidden = !view.steps.some((s) => s.name === "approval" && s.outcome === "waiting");
  const summary = $("#order-summary");
  summary.replaceChildren();
  if (view.engine.error) summary.append(el("span", { class: "error" }, view.engine.error.message));
  if (output) {
    const parts = [`${output.total_cents} cents`];
    if (output.label?.tracking) parts.push(`label ${output.label.tracking}`);
    if (output.approved_by) parts.push(`approved by ${output.approved_by}`);
    if (output.reason) parts.push(output.reason);
    summary.append(el("span", { "data-testid": "order-summary" }, parts.join("; ")));
  }
}

let following = null;

/** Follows one order until it ends or another is followed: every 0.5 s for a
 * minute, then every 5 s (an order may wait a day for its approval). */
async function followOrder(id) {
  following = id;
  $("#order-view").hidden = false;
  delete $("#order-view").dataset.sawPending;
  $("#order-id").textContent = id;
  for (let i = 0; following === id; i++) {
    const view = await api("GET", `/v1/orders/${encodeURIComponent(id)}`, { quiet: true });
    if (following !== id) return;
    renderOrder(view);
    if (ENDED.includes(view.engine.status)) break;
    await sleep(i < 120 ? 500 : 5000);
  }
  await loadOrders();
}

async function loadOrders() {
  const instances = await api("GET", "/v1/workflows/orders/instances");
  $("#orders-list").replaceChildren(...instances.map((i) => el("tr", {},
    el("td", {}, el("button", { class: "secondary", type: "button",
      onclick: () => guarded("orders", () => followOrder(i.instance)) }, i.instance)),
    el("td", {}, badge(i.outcome)),
    el("td", {}, new Date(i.started_ms).toLocaleTimeString()))));
}

$("#order-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const f = event.target.elements;
  const id = `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const order = {
    id,
    customer: f.customer.value,
    items: [{ sku: "console-mug", quantity: Number(f.quantity.value), unit_cents: Number(f.unit.value) }],
    ship_to: { name: f.customer.value, line1: "1 Edge Way", city: "Lisbon", postcode: "1000-001", country: "PT" },
  };
  guarded("orders", async () => {
    await api("POST", "/v1/orders", { json: order });
    await followOrder(id);
  });
});

$("#orders-load").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded("orders", loadOrders);
});

// The view keeps following the order, so the approval shows as its step ends.
$("#order-approve").addEventListener("click", () => {
  const id = $("#order-id").textContent;
  $("#order-approve").hidden = true;
  guarded("orders", () => api("POST", `/v1/orders/${encodeURIComponent(id)}/approve`, { json: { by: "console" } }));
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

// ---- usage and cost --------------------------------------------------------

const COLORS = ["#3366cc", "#dc7633", "#2a9d8f", "#b3261e", "#8e44ad", "#a86b00", "#5d6d7e", "#1f8a70"];
const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const dollars = (usd) => (usd >= 100 ? `$${usd.toFixed(0)}` : `$${usd.toFixed(2)}`);
const times = (m) => (m < 10 ? m.toFixed(2) : m.toFixed(1));

/** Invocations per minute: one line per feature over the window. */
function drawRate(groups, since, until) {
  const chart = $("#usage-rate");
  const [width, height, pad] = [600, 200, 28];
  const top = Math.max(1, ...groups.flatMap((g) => g.per_minute.map(([, n]) => n)));
  const x = (ms) => pad + ((ms - since) / (until - since)) * (width - 2 * pad);
  const y = (n) => height - pad - (n / top) * (height - 2 * pad);
  const children = [
    svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: "currentColor", "stroke-opacity": 0.4 }),
    svg("text", { x: 2, y: pad - 10 }, `${top} a minute`),
    svg("text", { x: pad, y: height - 8 }, new Date(since).toLocaleTimeString()),
    svg("text", { x: width - pad, y: height - 8, "text-anchor": "end" }, "now"),
  ];
  groups.forEach((g, i) => {
    // Every minute of the window, zero where nothing was reported, so a quiet
    // spell reads as one.
    const counts = new Map(g.per_minute);
    const points = [];
    for (let minute = Math.floor(since / 60_000) * 60_000; minute < until; minute += 60_000) {
      const mid = Math.min(Math.max(minute + 30_000, since), until);
      points.push(`${x(mid).toFixed(1)},${y(counts.get(minute) ?? 0).toFixed(1)}`);
    }
    // A single minute is a dot, more are a line.
    const color = COLORS[i % COLORS.length];
    children.push(points.length > 1
      ? svg("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2, "data-feature": g.feature })
      : svg("circle", { cx: points[0].split(",")[0], cy: points[0].split(",")[1], r: 3, fill: color, "data-feature": g.feature }));
  });
  chart.replaceChildren(...children);
  $("#usage-legend").replaceChildren(...groups.map((g, i) => el("li", {},
    el("span", { style: `background:${COLORS[i % COLORS.length]}` }),
    `${g.feature}: ${g.invocations} (${g.cold_starts} cold)`)));
}

/** P99 and cold P99 per feature as bars, with each cold-start rule's threshold. */
function drawLatency(groups, rules) {
  const chart = $("#usage-latency");
  const shown = groups.slice(0, 8);
  const row = 26;
  const [width, label, pad] = [600, 90, 8];
  const height = Math.max(60, shown.length * row + 2 * pad);
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const thresholds = rules.filter((r) => r.metric === "cold_start_p99_ms");
  const top = Math.max(1, ...shown.flatMap((g) => [g.wall_ms.p99 ?? 0, g.cold_wall_ms.p99 ?? 0]),
    ...thresholds.map((r) => r.threshold)) * 1.1;
  // Room on the right for the longest bar's figures.
  const x = (ms) => label + (ms / top) * (width - label - 190);
  const children = [];
  shown.forEach((g, i) => {
    const y0 = pad + i * row;
    children.push(svg("text", { x: 2, y: y0 + 15 }, g.feature));
    const p99 = g.wall_ms.p99 ?? 0;
    const cold = g.cold_wall_ms.p99;
    children.push(svg("rect", { x: label, y: y0 + 2, width: Math.max(1, x(p99) - label), height: 9, fill: "#3366cc",
      "aria-label": `${g.feature} P99 ${times(p99)} ms` }));
    if (cold !== null) {
      children.push(svg("rect", { x: label, y: y0 + 12, width: Math.max(1, x(cold) - label), height: 9, fill: "#dc7633",
        "aria-label": `${g.feature} cold P99 ${times(cold)} ms` }));
    }
    children.push(svg("text", { x: x(Math.max(p99, cold ?? 0)) + 4, y: y0 + 15 },
      `${times(p99)} ms${cold !== null ? `, cold ${times(cold)} ms` : ""}`));
    // Per-route rules have no place on a per-feature bar.
    for (const rule of thresholds.filter((r) => !r.route && (!r.feature || r.feature === g.feature))) {
      children.push(svg("line", { x1: x(rule.threshold), x2: x(rule.threshold), y1: y0, y2: y0 + row - 2,
        stroke: "#b3261e", "stroke-width": 2, "data-rule": rule.name }));
    }
  });
  chart.replaceChildren(...children);
}

/** The month's bill on each platform as bars, and the break-even in words. */
function drawCost(cost) {
  const bills = [["Workers", cost.workers], ["Lambda + API Gateway", cost.lambda], ["Containers", cost.containers]];
  const [width, label, row, pad] = [600, 175, 30, 8];
  const top = Math.max(...bills.map(([, b]) => b.total_usd)) * 1.2 || 1;
  $("#usage-cost").replaceChildren(...bills.flatMap(([name, bill], i) => {
    const y0 = pad + i * row;
    const w = Math.max(1, (bill.total_usd / top) * (width - label - pad));
    return [
      svg("text", { x: 2, y: y0 + 16 }, name),
      svg("rect", { x: label, y: y0 + 4, width: w, height: 16, fill: COLORS[i], "aria-label": `${name} ${dollars(bill.total_usd)} a month` }),
      svg("text", { x: label + w + 4, y: y0 + 16 }, dollars(bill.total_usd)),
    ];
  }));
  const say = (against, m) => m === null
    ? `Containers do not become cheaper than ${against} at any traffic up to a million times this.`
    : m <= 1 ? `Containers are already cheaper than ${against}.`
      : `Containers become cheaper than ${against} at ${times(m)}× this traffic.`;
  $("#usage-break-even").textContent = `${say("Workers", cost.break_even.workers)} ${say("Lambda", cost.break_even.lambda)}`
    + (cost.cpu_is_wall_time ? " (CPU billed as wall time: an upper bound.)" : "");
}

async function loadUsage() {
  const minutes = Number(new FormData($("#usage-form")).get("minutes"));
  // A second ahead, so a report flushed just now is in; the cost's period is
  // the window itself.
  const until = Date.now() + 1_000;
  const since = until - minutes * 60_000;
  const range = `since=${since}&until=${until}`;
  const [usage, alerts, cost] = await Promise.all([
    api("GET", `/v1/ops/usage?by=feature&${range}`, { quiet: true }),
    api("GET", "/v1/ops/alerts", { quiet: true }),
    api("GET", `/v1/ops/cost?${range}`, { quiet: true }),
  ]);
  $("#usage-empty").hidden = usage.groups.length > 0;
  drawRate(usage.groups, since, until);
  drawLatency(usage.groups, alerts.rules);
  drawCost(cost);
}

$("#usage-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded("usage", loadUsage);
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
  await guarded("orders", loadOrders);
  await guarded("usage", loadUsage);
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
