// Size budgets, as wrangler ships each worker: `wrangler deploy --dry-run` of every
// worker in bench/targets.json, its `Total Upload` figures, and a failure when a
// worker's gzip size passes its budget. Byte sizes are deterministic for the
// pinned toolchain, so this belongs in `make test`; timings never do.
//
//   node bench/size.mjs [--json out.json]
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { arg, root } from "./workerd.mjs";

const run = promisify(execFile);
const targets = JSON.parse(await readFile(join(root, "bench/targets.json"), "utf8"));
const rows = [];
for (const [name, t] of Object.entries(targets.size_gzip_kib)) {
  const outdir = join(root, "target/deploy-dry-run", name);
  await mkdir(outdir, { recursive: true });
  const config = join(root, t.config);
  let stdout;
  try {
    ({ stdout } = await run(
      join(root, "node_modules/.bin/wrangler"),
      ["deploy", "--dry-run", "--config", config, "--outdir", outdir],
      { cwd: dirname(config), env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, maxBuffer: 64 << 20 },
    ));
  } catch (err) {
    console.error(`${name}: wrangler deploy --dry-run failed\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
    process.exit(1);
  }
  const m = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(stdout);
  if (!m) throw new Error(`${name}: no size in wrangler's output:\n${stdout}`);
  rows.push({ name, raw_kib: Number(m[1]), gzip_kib: Number(m[2]), budget: t.budget, target: t.target });
}
console.log("| Worker | KiB | gzip KiB | budget | target |");
console.log("|---|---|---|---|---|");
for (const r of rows) {
  const met = r.gzip_kib <= r.target ? "met" : "missed";
  console.log(`| ${r.name} | ${r.raw_kib} | ${r.gzip_kib} | ${r.budget} | ${r.target} (${met}) |`);
}
const jsonOut = arg("json", null);
if (jsonOut) await writeFile(jsonOut, JSON.stringify(rows, null, 2));
const over = rows.filter((r) => r.gzip_kib > r.budget);
for (const r of over) console.error(`${r.name}: ${r.gzip_kib} KiB gzip is over its budget of ${r.budget} KiB (bench/targets.json)`);
process.exit(over.length ? 1 : 0);
