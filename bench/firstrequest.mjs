// What a worker's first request compiles. workerd's V8 compiles wasm lazily, one
// function at a time on its first call (with Liftoff), so most of a Rust worker's
// cold start is compiling the code its first request runs (BENCHMARKS.md, "Cold
// start"). This starts each wasm worker in a bare workerd with V8's
// --trace-wasm-compilation-times, waits until its socket accepts connections
// (without sending a request), sends one GET / (the gateway: GET /healthz), and
// counts the functions compiled in answer: how many, their body bytes (exact for a
// given build) and Liftoff time.
// It fails when a worker's bytes pass their budget in bench/targets.json.
//
//   node bench/firstrequest.mjs [--rounds 3] [--json out.json] [--top N]
//
// --top N lists the N largest functions each first request compiled. Built with
// EDGEWAY_KEEP_NAMES=1 (`edgeway build --keep-names`; every edgeway worker is
// rebuilt that way, and again by the next plain run), they are listed by Rust
// name. The budgets are for shipped builds, which drop the names: a named build
// is not checked against them.
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { answered, arg, gatewayDefinition, median, prepareWorker, root, rustName, workerDefinitions } from "./workerd.mjs";

const rounds = Number(arg("rounds", "3"));
const jsonOut = arg("json", null);
const top = Number(arg("top", "0"));
const wasmWorkers = ["bare", "workers-rs", "edgeway", "edgeway-app"];
const gateway = await gatewayDefinition();

const listening = (port) =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

const compiled = (log) =>
  [...log.matchAll(/#(\d+) using Liftoff, took (\d+) μs .*?bodysize (\d+)/g)].map((m) => ({
    index: Number(m[1]),
    us: Number(m[2]),
    bytes: Number(m[3]),
  }));

/** The function names in a module's name section, by index (none when stripped). */
function functionNames(bytes) {
  const names = new Map();
  let i = 8;
  const leb = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (i >= bytes.length) throw new Error("a truncated wasm module");
      const byte = bytes[i++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (i < bytes.length) {
    const id = bytes[i++];
    const end = leb() + i;
    if (id === 0) {
      const length = leb();
      const section = bytes.subarray(i, i + length).toString();
      i += length;
      while (section === "name" && i < end) {
        const sub = bytes[i++];
        const subEnd = leb() + i;
        for (let count = sub === 1 ? leb() : 0; count > 0; count--) {
          const index = leb();
          const length = leb();
          names.set(index, bytes.subarray(i, i + length).toString());
          i += length;
        }
        i = subEnd;
      }
    }
    i = end;
  }
  return names;
}

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
    const res = await fetch(`http://127.0.0.1:${port}${def.path ?? "/"}`);
    const body = await res.text();
    if (!res.ok || !answered(def, body)) {
      throw new Error(`${def.name}: GET ${def.path ?? "/"} answered ${res.status}: ${body.slice(0, 200)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
    const functions = compiled(log).slice(atStart);
    return {
      startup_functions: atStart,
      functions: functions.length,
      bytes: functions.reduce((n, f) => n + f.bytes, 0),
      largest: Math.max(0, ...functions.map((f) => f.bytes)),
      liftoff_ms: functions.reduce((n, f) => n + f.us, 0) / 1000,
      largest_functions: [...functions].sort((a, b) => b.bytes - a.bytes).slice(0, top),
    };
  } finally {
    proc.kill("SIGKILL");
    await new Promise((r) => proc.once("exit", r));
  }
}

const defs = [...(await workerDefinitions()).filter((d) => wasmWorkers.includes(d.name)), gateway];
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
// Each module's function names: none in a shipped build.
const namesOf = new Map();
for (const def of defs) {
  const wasm = def.modules.find(([name]) => name.endsWith(".wasm"));
  namesOf.set(def.name, functionNames(await readFile(wasm[1])));
}
for (const def of top > 0 ? defs : []) {
  const names = namesOf.get(def.name);
  console.log(`\n${def.label}: the ${top} largest functions its first request compiled (bytes, name)`);
  for (const f of samples.get(def.name)[0].largest_functions) {
    const name = names.has(f.index) ? rustName(names.get(f.index)) : undefined;
    console.log(`${String(f.bytes).padStart(7)}  ${name?.slice(0, 160) ?? `function #${f.index}`}`);
  }
}
if (jsonOut) await writeFile(jsonOut, JSON.stringify(result, null, 2));

// The byte counts are exact for a pinned toolchain, so they are held to budgets
// (bench/targets.json) like bundle sizes: a change that makes every isolate's
// first request compile more fails here until the budget is raised on purpose.
const budgets = JSON.parse(await readFile(join(root, "bench/targets.json"), "utf8")).first_request_bytes;
const named = rows.filter((r) => budgets[r.name] && namesOf.get(r.name).size > 0);
for (const r of named) console.error(`${r.label}: built with names, so not held to its budget`);
const over = rows.filter(
  (r) => budgets[r.name] && namesOf.get(r.name).size === 0 && r.bytes > budgets[r.name].budget,
);
for (const r of over) {
  console.error(`${r.label}: its first request compiles ${r.bytes} bytes, over the budget of ${budgets[r.name].budget} (bench/targets.json)`);
}
process.exit(over.length ? 1 : 0);
