// What a worker's first request compiles. workerd's V8 compiles wasm lazily, one
// function at a time on its first call (with Liftoff), so most of a Rust worker's
// cold start is compiling the code its first request runs (BENCHMARKS.md, "Cold
// start"). This starts each wasm worker in a bare workerd with V8's
// --trace-wasm-compilation-times, waits until its socket accepts connections
// (without sending a request), sends one GET /, and counts the functions compiled
// in answer: how many, their body bytes (exact for a given build) and Liftoff time.
// It fails when a worker's bytes pass their budget in bench/targets.json.
//
//   node bench/firstrequest.mjs [--rounds 3] [--json out.json]
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { arg, HELLO_BODY, median, prepareWorker, root, workerDefinitions } from "./workerd.mjs";

const rounds = Number(arg("rounds", "3"));
const jsonOut = arg("json", null);
const wasmWorkers = ["bare", "workers-rs", "edgeway", "edgeway-app"];

const listening = (port) =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

const compiled = (log) =>
  [...log.matchAll(/using Liftoff, took (\d+) μs .*?bodysize (\d+)/g)].map((m) => ({
    us: Number(m[1]),
    bytes: Number(m[2]),
  }));

async function firstRequest(def) {
  const { config, port } = await prepareWorker(def, ["--trace-wasm-compilation-times"]);
  const proc = spawn(join(root, "node_modules/.bin/workerd"), ["serve", config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  proc.stdout.on("data", (d) => (log += d));
  proc.stderr.on("data", (d) => (log += d));
  try {
    const deadline = Date.now() + 30_000;
    while (!(await listening(port))) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${def.name} did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Let start-up compilation (if any) print before drawing the line.
    await new Promise((r) => setTimeout(r, 200));
    const atStart = compiled(log).length;
    const res = await fetch(`http://127.0.0.1:${port}/`);
    const body = await res.text();
    if (!res.ok || body !== HELLO_BODY) throw new Error(`${def.name}: GET / answered ${res.status}`);
    await new Promise((r) => setTimeout(r, 200));
    const functions = compiled(log).slice(atStart);
    return {
      startup_functions: atStart,
      functions: functions.length,
      bytes: functions.reduce((n, f) => n + f.bytes, 0),
      largest: Math.max(0, ...functions.map((f) => f.bytes)),
      liftoff_ms: functions.reduce((n, f) => n + f.us, 0) / 1000,
    };
  } finally {
    proc.kill("SIGKILL");
    await new Promise((r) => proc.once("exit", r));
  }
}

const defs = (await workerDefinitions()).filter((d) => wasmWorkers.includes(d.name));
const samples = new Map(defs.map((d) => [d.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const def of defs) samples.get(def.name).push(await firstRequest(def));
}
const rows = defs.map((def) => {
  const s = samples.get(def.name);
  return {
    name: def.name,
    label: def.label,
    functions: s[0].functions,
    bytes: s[0].bytes,
    largest: s[0].largest,
    liftoff_ms: Number(median(s.map((x) => x.liftoff_ms)).toFixed(2)),
  };
});
const result = { command: `node bench/firstrequest.mjs --rounds ${rounds}`, rows };
console.log("| Worker | functions compiled by the first GET / | their body bytes | largest | Liftoff ms (median) |");
console.log("|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.label} | ${r.functions} | ${r.bytes} | ${r.largest} | ${r.liftoff_ms} |`);
if (jsonOut) await writeFile(jsonOut, JSON.stringify(result, null, 2));

// The byte counts are exact for a pinned toolchain, so they are held to budgets
// (bench/targets.json) like bundle sizes: a change that makes every isolate's
// first request compile more fails here until the budget is raised on purpose.
const budgets = JSON.parse(await readFile(join(root, "bench/targets.json"), "utf8")).first_request_bytes;
const over = rows.filter((r) => budgets[r.name] && r.bytes > budgets[r.name].budget);
for (const r of over) {
  console.error(`${r.label}: its first request compiles ${r.bytes} bytes, over the budget of ${budgets[r.name].budget} (bench/targets.json)`);
}
process.exit(over.length ? 1 : 0);
