// Cold start, two ways, each as an increment over an empty JS worker measured in
// the same run:
//   1. `wrangler check startup` (start-up CPU as workerd profiles it), median of
//      --checks runs per worker, on bundles built once with `wrangler deploy
//      --dry-run --outfile`; the bundle size is wrangler's own figure.
//   2. First-request latency of a fresh isolate: spawn a bare workerd, then time
//      until the first 200 answer; --fresh rounds, workers interleaved, medians.
//
//   node bench/coldstart.mjs [--checks 10] [--fresh 20] [--json out.json]
import { execFile, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { answered, arg, gatewayDefinition, median, prepareWorker, root, workerDefinitions } from "./workerd.mjs";

const run = promisify(execFile);
const checks = Number(arg("checks", "10"));
const fresh = Number(arg("fresh", "20"));
const jsonOut = arg("json", null);
const wrangler = join(root, "node_modules/.bin/wrangler");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };

// ---- 1. wrangler check startup ------------------------------------------------
const startupWorkers = [
  { name: "js", label: "empty JS worker (anchor)", config: "bench/baselines/js/wrangler.toml" },
  { name: "workers-rs", label: "workers-rs #[event(fetch)], one route", config: "bench/baselines/workers-rs/wrangler.toml" },
  { name: "hello", label: "edgeway examples/hello", config: "examples/hello/wrangler.toml" },
  { name: "gateway", label: "edgeway gateway (root wrangler.toml)", config: "wrangler.toml" },
];
// Like for like: each edgeway worker against the anchor that does the same work.
const anchors = { edgeway: "hono-hello", "edgeway-app": "hono", gateway: "workers-rs" };
const out = join(root, "bench/results/startup");
await mkdir(out, { recursive: true });
const startup = [];
for (const w of startupWorkers) {
  const bundle = join(out, `${w.name}.bundle`);
  const { stdout } = await run(
    wrangler,
    ["deploy", "--dry-run", "--config", join(root, w.config), "--outfile", bundle],
    // The config's [build] command runs from wrangler's working directory.
    { env, cwd: dirname(join(root, w.config)), maxBuffer: 64 << 20 },
  );
  const size = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(stdout);
  const active = [];
  for (let i = 0; i < checks; i++) {
    const res = await run(
      wrangler,
      ["check", "startup", "--config", join(root, w.config), "--worker", bundle, "--outfile", join(out, `${w.name}.cpuprofile`)],
      { env, cwd: dirname(join(root, w.config)), maxBuffer: 64 << 20 },
    );
    const m = /Active: ([\d.]+) ms/.exec(res.stdout);
    if (!m) throw new Error(`${w.name}: no startup figure in:\n${res.stdout}`);
    active.push(Number(m[1]));
  }
  startup.push({ ...w, raw_kib: Number(size?.[1]), gzip_kib: Number(size?.[2]), active_ms: median(active), samples: active });
  console.error(`startup ${w.name}: ${median(active)} ms active (${active.join(", ")})`);
}

// ---- 2. first request of a fresh isolate ---------------------------------------
async function firstResponse(worker, config) {
  const started = performance.now();
  const proc = spawn(join(root, "node_modules/.bin/workerd"), ["serve", config.config], {
    stdio: ["ignore", "ignore", "ignore"],
  });
  try {
    const deadline = started + 30_000;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${config.port}${worker.path ?? "/"}`);
        const body = await res.text();
        if (res.ok && answered(worker, body)) return performance.now() - started;
        throw new Error(`${worker.name} answered ${res.status}: ${body.slice(0, 200)}`);
      } catch (err) {
        if (err.message.includes("answered")) throw err;
        if (performance.now() > deadline) throw new Error(`${worker.name} never answered`);
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  } finally {
    proc.kill("SIGKILL");
    await new Promise((r) => proc.once("exit", r));
  }
}

const js = { name: "js", label: "empty JS worker (anchor)", modules: [["index.mjs", join(root, "bench/baselines/js/index.mjs")]] };
// A worker sharing another's process is the same bundle: measured once.
const gateway = await gatewayDefinition();
// Where a cold start goes: a worker's module imported by a JS worker that answers
// from JS, so only its decoding and validation are paid (workerd compiles
// functions lazily, on their first call), against the whole first request.
async function importOnly(name, label, of) {
  const wasm = of.modules.find(([module]) => module.endsWith(".wasm"));
  const entry = join(root, `bench/results/${name}.mjs`);
  await writeFile(
    entry,
    `import module from "./${wasm[0]}";\nexport default { fetch() { return new Response(String(module instanceof WebAssembly.Module)); } };\n`,
  );
  return { name, label, modules: [["index.mjs", entry], wasm], path: "/", expect: (body) => body === "true" };
}
const definitions = (await workerDefinitions()).filter((d) => !d.sharesProcessOf);
const hello = definitions.find((d) => d.name === "edgeway");
const isolates = [
  js,
  ...definitions,
  gateway,
  await importOnly("hello-module", "edgeway examples/hello's wasm, imported by a JS worker that answers from JS", hello),
  await importOnly("gateway-module", "the gateway's wasm, imported by a JS worker that answers from JS", gateway),
];
const configs = new Map();
for (const w of isolates) configs.set(w.name, await prepareWorker(w));
const times = new Map(isolates.map((w) => [w.name, []]));
for (let round = 0; round < fresh; round++) {
  for (const w of isolates) times.get(w.name).push(await firstResponse(w, configs.get(w.name)));
}
const anchor = median(times.get("js"));
const ratio = (ours, anchor) => (anchor > 0 ? Number((ours / anchor).toFixed(2)) : null);
const increment = (name) => median(times.get(name).map((t, i) => t - times.get("js")[i]));
const firstRequest = isolates.map((w) => {
  const m = median(times.get(w.name));
  // Per round, the increment over the empty worker measured right next to it.
  const inc = increment(w.name);
  const anchor = anchors[w.name];
  return {
    name: w.name,
    label: w.label,
    median_ms: Number(m.toFixed(1)),
    increment_ms: Number(inc.toFixed(1)),
    // A ratio to an increment at or below zero (too few rounds on a noisy machine) means nothing.
    ...(anchor && { anchor, vs_anchor: ratio(inc, increment(anchor)) }),
  };
});

const result = {
  command: `node bench/coldstart.mjs --checks ${checks} --fresh ${fresh}`,
  startup: startup.map(({ samples, ...r }) => {
    const inc = r.active_ms - startup[0].active_ms;
    const anchor = startup.find((a) => a.name === anchors[r.name]);
    return {
      ...r,
      increment_ms: Number(inc.toFixed(1)),
      ...(anchor && { anchor: anchor.name, vs_anchor: ratio(inc, anchor.active_ms - startup[0].active_ms) }),
    };
  }),
  first_request: firstRequest,
  anchor_first_request_ms: Number(anchor.toFixed(1)),
};
console.log("| Worker | bundle KiB | gzip KiB | startup CPU ms (median) | increment over empty JS |");
console.log("|---|---|---|---|---|");
for (const r of result.startup) {
  console.log(`| ${r.label} | ${r.raw_kib} | ${r.gzip_kib} | ${r.active_ms} | +${r.increment_ms} ms |`);
}
console.log("\n| Worker | first response of a fresh workerd, median ms | increment over empty JS | vs its anchor |");
console.log("|---|---|---|---|");
for (const r of result.first_request) {
  console.log(`| ${r.label} | ${r.median_ms} | +${r.increment_ms} ms | ${r.anchor ? `${r.vs_anchor ?? "n/a"}× ${r.anchor}` : ""} |`);
}
if (jsonOut) await writeFile(jsonOut, JSON.stringify(result, null, 2));
