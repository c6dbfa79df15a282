// V8 CPU profile of a worker under load, taken from workerd's inspector, or
// with --heap the JS bytes it allocates per request, by allocating function.
//
//   node bench/profile.mjs <hono|bare|workers-rs|edgeway|edgeway-app> [--duration 3] [--path /] [--script bench/results/github.lua] [--out file.cpuprofile] [--heap]
//
// With EDGEWAY_KEEP_NAMES=1 the edgeway workers are built with their function
// names (`edgeway build --keep-names`), so V8 lists wasm frames by Rust name.
//
// Starts the worker in workerd with --inspector-addr, starts the profiler over the
// Chrome DevTools Protocol, drives wrk at it on loopback for a bounded time, then
// prints the top functions by self time and saves the .cpuprofile (open it in
// Chrome DevTools or speedscope).
import { execFile, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { arg, freePort, prepareWorker, root, rustName, workerDefinitions } from "./workerd.mjs";

const run = promisify(execFile);
const which = process.argv[2] ?? "edgeway";
const duration = Number(arg("duration", "3"));
// --heap: V8's sampling heap profiler instead, counting objects the garbage
// collector has already freed too (what a request leaves behind is garbage).
const heap = process.argv.includes("--heap");
const out = arg("out", join(root, `bench/results/${which}.${heap ? "heapprofile" : "cpuprofile"}`));
// A path to load instead of `/`, or a wrk Lua script (such as the one
// bench/hotpath.mjs writes for workload (c)) to spread requests over many.
const path = arg("path", "/");
const script = arg("script", null);

const def = (await workerDefinitions()).find((w) => w.name === which);
if (!def) throw new Error(`unknown worker ${which}`);
const { config, port } = await prepareWorker(def);
const inspectorPort = await freePort();
const proc = spawn(
  join(root, "node_modules/.bin/workerd"),
  ["serve", config, `--inspector-addr=127.0.0.1:${inspectorPort}`],
  { stdio: ["ignore", "ignore", "inherit"] },
);
try {
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url)).ok) break;
    } catch {}
    if (i > 200) throw new Error("worker did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let nextId = 1;
  const pending = new Map();
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  };
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  const load = script ? ["-s", script] : [];
  const target = `http://127.0.0.1:${port}${path}`;
  // Warm up the path first, so JIT tiers settle before the profile starts.
  await run("wrk", ["-t1", "-c8", "-d1s", ...load, target]);
  const drive = () => run("wrk", ["-t1", "-c16", `-d${duration}s`, ...load, target]);
  await (heap ? heapProfile : cpuProfile)(send, drive);
  ws.close();
} finally {
  proc.kill("SIGKILL");
}

// A module built with names (EDGEWAY_KEEP_NAMES=1) labels wasm frames by Rust
// function; rustc's crate hashes only lengthen them.
function label(frame) {
  return rustName(frame.functionName || "(anonymous)").slice(0, 160);
}

async function cpuProfile(send, drive) {
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  await drive();
  const { result } = await send("Profiler.stop");
  await writeFile(out, JSON.stringify(result.profile));

  const { nodes, samples, timeDeltas } = result.profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  samples.forEach((id, i) => {
    const node = byId.get(id);
    const name = `${label(node.callFrame)} ${node.callFrame.url.split("/").pop()}`;
    const dt = timeDeltas[i] ?? 0;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  });
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
  console.log(`top self time, ${which}, ${(total / 1000).toFixed(0)} ms sampled:`);
  for (const [name, t] of top) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${name}`);
  console.log(`saved ${out}`);
}

async function heapProfile(send, drive) {
  await send("HeapProfiler.enable");
  await send("HeapProfiler.startSampling", {
    samplingInterval: 32,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const { stdout } = await drive();
  const { result } = await send("HeapProfiler.stopSampling");
  await writeFile(out, JSON.stringify(result.profile));
  const requests = Number(/(\d+) requests in/.exec(stdout)[1]);
  // Bytes by allocating function and its caller, per request.
  const bySite = new Map();
  let total = 0;
  const walk = (node, caller) => {
    const here = `${label(node.callFrame)} ${node.callFrame.url.split("/").pop()}`;
    if (node.selfSize > 0) {
      const site = `${here} <- ${caller}`;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child, here);
  };
  walk(result.profile.head, "");
  console.log(`JS bytes allocated per request, ${which}: ${(total / requests).toFixed(0)} (${requests} requests, sampled)`);
  const top = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 20);
  for (const [site, bytes] of top) console.log(`${(bytes / requests).toFixed(0).padStart(6)}  ${site}`);
  console.log(`saved ${out}`);
}
