// Hot-path throughput: edgeway's hello against its anchors, all in workerd, driven
// directly (workerd serving a generated config; no wrangler proxy) by wrk on loopback.
//
//   node bench/hotpath.mjs [--duration 5] [--rounds 3] [--connections 16] [--json out.json]
//
// Every figure is a ratio against Hono measured in the same run; rounds are
// interleaved so drift on a shared machine hits every worker alike. The run is
// bounded: rounds × workers × duration seconds of load, then every workerd stops.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { startWorker, workerDefinitions } from "./workerd.mjs";

const run = promisify(execFile);
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const duration = Number(arg("duration", "5"));
const rounds = Number(arg("rounds", "3"));
const connections = Number(arg("connections", "16"));
const jsonOut = arg("json", null);
// e.g. --only hono,edgeway while iterating; the anchor (hono) is always kept.
const only = arg("only", null)?.split(",");

const running = [];
// CPU time (user + system) the workerd process has used, in ms. Per request it is
// far steadier than req/s on a shared 2-core machine, where wrk competes for CPU.
async function cpuMs(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function parseWrk(out) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const toMs = (v, unit) => Number(v) * { us: 0.001, ms: 1, s: 1000 }[unit];
  const pct = (p) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const errors = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? "0";
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  return { rps, p50: pct(50), p99: pct(99), non2xx: Number(errors), requests };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  for (const w of await workerDefinitions()) {
    if (only && w.name !== "hono" && !only.includes(w.name)) continue;
    running.push({ ...w, ...(await startWorker(w)), samples: [] });
  }
  for (let round = 1; round <= rounds; round++) {
    for (const w of running) {
      // A short warm-up so JIT tiers settle before the measured window.
      await run("wrk", ["-t1", "-c4", "-d1s", w.url]);
      const cpuBefore = await cpuMs(w.proc.pid);
      const { stdout } = await run("wrk", [
        "-t1",
        `-c${connections}`,
        `-d${duration}s`,
        "--latency",
        w.url,
      ]);
      const sample = parseWrk(stdout);
      sample.cpuUsPerReq = ((await cpuMs(w.proc.pid)) - cpuBefore) * 1000 / sample.requests;
      if (sample.non2xx > 0) throw new Error(`${w.name}: ${sample.non2xx} non-2xx responses`);
      w.samples.push(sample);
      console.error(
        `round ${round} ${w.name}: ${sample.rps.toFixed(0)} req/s, ${sample.cpuUsPerReq.toFixed(1)} µs CPU/req`,
      );
    }
  }
} finally {
  for (const w of running) w.proc.kill("SIGKILL");
}

const hono = running.find((w) => w.name === "hono");
const anchor = median(hono.samples.map((s) => s.rps));
const anchorCpu = median(hono.samples.map((s) => s.cpuUsPerReq));
const rows = running.map((w) => {
  const rps = median(w.samples.map((s) => s.rps));
  return {
    name: w.name,
    label: w.label,
    rps: Math.round(rps),
    p50_ms: median(w.samples.map((s) => s.p50)),
    p99_ms: median(w.samples.map((s) => s.p99)),
    vs_hono: Number((rps / anchor).toFixed(2)),
    cpu_us_per_req: Number(median(w.samples.map((s) => s.cpuUsPerReq)).toFixed(1)),
  };
});

const { stdout: wrkVersion } = await run("wrk", ["--version"]).catch((e) => ({ stdout: e.stdout ?? "" }));
const result = {
  command: `node bench/hotpath.mjs --duration ${duration} --rounds ${rounds} --connections ${connections}`,
  load: `wrk -t1 -c${connections} -d${duration}s --latency, ${rounds} interleaved rounds, medians`,
  node: process.version,
  wrk: wrkVersion.split("\n")[0].trim(),
  rows: rows.map((r) => ({ ...r, cpu_vs_hono: Number((r.cpu_us_per_req / anchorCpu).toFixed(2)) })),
};
console.log("| Worker | req/s | vs Hono | p50 ms | p99 ms | workerd CPU µs/req | CPU vs Hono |");
console.log("|---|---|---|---|---|---|---|");
for (const r of result.rows) {
  console.log(
    `| ${r.label} | ${r.rps} | ${r.vs_hono.toFixed(2)}× | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ${r.cpu_us_per_req} | ${r.cpu_vs_hono.toFixed(2)}× |`,
  );
}
if (jsonOut) await writeFile(jsonOut, JSON.stringify(result, null, 2));
