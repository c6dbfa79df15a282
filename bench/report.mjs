// Writes the measured part of BENCHMARKS.md from this run's results: the machine
// line, tool versions, the exact commands, and a table per measurement with our
// figure, the anchor's and the ratio. `make bench` runs it last. The analysis
// around the tables (profiles, targets missed, next steps) is written by hand
// outside the markers and kept.
//
//   node bench/report.mjs [--out BENCHMARKS.md]
import { execFile } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { root } from "./workerd.mjs";

const run = promisify(execFile);
const out = process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1] : "BENCHMARKS.md";
const results = join(root, "bench/results");
const readJson = async (name) => JSON.parse(await readFile(join(results, name), "utf8"));
const version = async (cmd, args) => {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd: root });
    return (stdout || stderr).split("\n")[0].trim();
  } catch (e) {
    return (e.stdout || e.stderr || "unknown").split("\n")[0].trim();
  }
};
const bin = (name) => join(root, "node_modules/.bin", name);

const lines = [];
const line = (s = "") => lines.push(s);
const cpu = cpus();
line(
  `Machine: ${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB. ` +
    `Tools: workerd ${await version(bin("workerd"), ["--version"])}, wrangler ${await version(bin("wrangler"), ["--version"])}, ` +
    `Node ${process.version}, ${await version("wrk", ["--version"])}, ${await version("rustc", ["--version"])}.`,
);
line();

const hot = await readJson("hotpath.json");
const cold = await readJson("coldstart.json");
const sizes = await readJson("size.json");

// The targets, from bench/targets.json, against this run's figures: one table that
// cannot drift from the measurements under it.
const targets = JSON.parse(await readFile(join(root, "bench/targets.json"), "utf8"));
// `versus`: a ratio to another worker of the same table rather than to its
// anchor, as the quotient of the two workers' ratios to that anchor.
const figure = ({ source, worker, field, versus }) => {
  const [file, part] = source.split(".");
  const rows = file === "hotpath" ? hot.workloads.find((w) => w.id === part)?.rows : cold[part];
  const of = (name) => {
    const value = rows?.find((r) => r.name === name)?.[field];
    if (value === undefined) throw new Error(`bench/targets.json: no ${field} for ${name} in ${source}`);
    return value; // null: the anchor's increment was not positive in this run
  };
  const value = of(worker);
  if (versus === undefined || value === null) return value;
  const base = of(versus);
  return base > 0 ? value / base : null;
};
line("### Targets");
line();
line("| Target | This run | |");
line("|---|---|---|");
for (const s of sizes) {
  line(`| ${s.name} ≤ ${s.target} KiB gzip (wrangler) | ${s.gzip_kib} KiB | ${s.gzip_kib <= s.target ? "met" : "**missed**"} |`);
}
for (const t of targets.ratios) {
  const value = figure(t);
  if (value === null) {
    line(`| ${t.target} | n/a (the anchor's increment was not positive: too few rounds) | — |`);
    continue;
  }
  const met = (t.max === undefined || value <= t.max) && (t.min === undefined || value >= t.min);
  line(`| ${t.target} | ${value.toFixed(2)}× | ${met ? "met" : "**missed**"} |`);
}
line();

line("### Throughput and latency in workerd");
line();
line(`\`${hot.command}\`: ${hot.load}.`);
for (const w of hot.workloads) {
  line();
  line(`**${w.title}**`);
  line();
  line("| Worker | req/s | vs Hono | p50 ms | p99 ms | workerd CPU µs/req | CPU vs Hono |");
  line("|---|---|---|---|---|---|---|");
  for (const r of w.rows) {
    line(
      `| ${r.label} | ${r.rps} | ${r.vs_hono.toFixed(2)}× | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ${r.cpu_us_per_req} | ${r.cpu_vs_hono.toFixed(2)}× |`,
    );
  }
}
line();

line("### Cold start");
line();
line(`\`${cold.command}\``);
line();
const vs = (r) => (r.anchor ? (r.vs_anchor === null ? `n/a (${r.anchor})` : `${r.vs_anchor.toFixed(2)}× ${r.anchor}`) : "");
line("| Worker | bundle KiB | gzip KiB | start-up CPU ms (median, `wrangler check startup`) | increment over the empty JS worker | vs its anchor |");
line("|---|---|---|---|---|---|");
for (const r of cold.startup) {
  line(`| ${r.label} | ${r.raw_kib} | ${r.gzip_kib} | ${r.active_ms.toFixed(1)} | +${r.increment_ms} ms | ${vs(r)} |`);
}
line();
line("| Worker | first response of a fresh workerd, median ms | increment over the empty JS worker (median of per-round differences) | vs its anchor |");
line("|---|---|---|---|");
for (const r of cold.first_request) line(`| ${r.label} | ${r.median_ms} | +${r.increment_ms} ms | ${vs(r)} |`);
line();
const first = await readJson("firstrequest.json");
line(`What the first request compiles (\`${first.command}\`; workerd compiles wasm lazily, per function, with Liftoff):`);
line();
line("| Worker | functions compiled by the first `GET /` | their body bytes | largest | Liftoff ms (median) |");
line("|---|---|---|---|---|");
for (const r of first.rows) line(`| ${r.label} | ${r.functions} | ${r.bytes} | ${r.largest} | ${r.liftoff_ms} |`);
line();

// Criterion's own estimates from `cargo bench -p edgeway-router-bench`.
const estimate = async (group, fn) => {
  const dir = join(root, "target/criterion", group, fn, "new/estimates.json");
  return JSON.parse(await readFile(dir, "utf8")).median.point_estimate / 1000;
};
line("### Router micro-benchmark (native, criterion)");
line();
line("`cargo bench -p edgeway-router-bench --bench router` (medians)");
line();
line("| | edgeway µs | raw matchit µs | ratio |");
line("|---|---|---|---|");
for (const [label, group] of [
  ["lookup of all 130 GitHub paths", "lookup 130 GitHub paths"],
  ["one-off table build", "build 130-route table"],
]) {
  const ours = await estimate(group, "edgeway");
  const anchor = await estimate(group, "matchit");
  line(`| ${label} | ${ours.toFixed(2)} | ${anchor.toFixed(2)} | ${(ours / anchor).toFixed(2)}× |`);
}
line();

line("### Fan-out publish latency and memory");
line();
line("`cargo run --release -p edgeway-fanout-bench`");
line();
line((await readFile(join(results, "fanout.md"), "utf8")).trim());
line();

line("### Workflow steps and instances against a queue round trip");
line();
line("`cargo run --release -p edgeway-workflow-bench`");
line();
line((await readFile(join(results, "workflows.md"), "utf8")).trim());

const begin = "<!-- bench/report.mjs: begin -->";
const end = "<!-- bench/report.mjs: end -->";
const doc = await readFile(join(root, out), "utf8");
const [head, rest] = doc.split(begin);
if (rest === undefined) throw new Error(`${out} has no ${begin} marker`);
const tail = rest.split(end)[1] ?? "";
await writeFile(join(root, out), `${head}${begin}\n${lines.join("\n")}\n${end}${tail}`);
console.error(`wrote the measured section of ${out}`);
