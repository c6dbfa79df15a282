// Throughput and latency in workerd, driven directly (each worker in its own bare
// `workerd serve` with a generated config; no wrangler proxy) by wrk on loopback:
//   (a) plain text GET /                 Hono hello (twice: the noise), bare floor, workers-rs entry, edgeway hello
//       and behind the Ops layer          the same edgeway worker without it (the anchor)
//   (b) JSON echo, path param + query     Hono, workers-rs Router, edgeway bench app
//   (c) the 130 GitHub routes, spread     Hono, workers-rs Router, edgeway bench app
//   (d) a route behind the middleware     Hono, edgeway bench app
//       and behind a bearer key or a JWT   Hono bearerAuth / jwk, edgeway ApiKeys / Jwt
//
//   node bench/hotpath.mjs [--duration 5] [--rounds 3] [--connections 16]
//                          [--workloads a,b,c,d,e] [--json out.json]
//
// Every figure is a ratio against Hono measured in the same run; rounds are
// interleaved so drift on a shared machine hits every worker alike, and every
// round runs every worker in a fresh workerd process. The run is bounded
// (rounds × workers × duration seconds of load); each round's workerds stop at
// its end.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { createPrivateKey, sign } from "node:crypto";
import { BENCH_ROOT_KEY, arg, median, root, startWorker, workerDefinitions } from "./workerd.mjs";

const run = promisify(execFile);
const duration = Number(arg("duration", "5"));
const rounds = Number(arg("rounds", "3"));
const connections = Number(arg("connections", "16"));
const jsonOut = arg("json", null);
const selected = arg("workloads", "a,b,c,d,e").split(",");

// (d), bearer JWT: an RS256 token from the bench-only key, valid for a day.
const b64url = (data) => Buffer.from(data).toString("base64url");
const jwk = JSON.parse(await readFile(join(root, "bench/data/jwt/bench-only-private.jwk.json"), "utf8"));
const now = Math.floor(Date.now() / 1000);
const signingInput = `${b64url(JSON.stringify({ alg: "RS256", kid: jwk.kid, typ: "JWT" }))}.${b64url(
  JSON.stringify({ iss: "https://idp.bench.example", aud: "bench", sub: "bench", scope: "ping", iat: now, exp: now + 86_400 }),
)}`;
const benchJwt = `${signingInput}.${b64url(sign("sha256", Buffer.from(signingInput), createPrivateKey({ key: jwk, format: "jwk" })))}`;

// (c): one request per route, cycling, so every lookup walks a different branch.
const githubPaths = (await readFile(join(root, "bench/data/github-api-routes.txt"), "utf8"))
  .split("\n")
  .filter((l) => l.startsWith("/"))
  .map((route) => `/gh${route.replace(/[{}]/g, "")}`);
const githubScript = join(root, "bench/results/github.lua");
await writeFile(
  githubScript,
  `local paths = {${githubPaths.map((p) => JSON.stringify(p)).join(",")}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
`,
);

// (e): POST the 16 KB order on every request.
const order = (await readFile(join(root, "bench/data/order.json"), "utf8")).trim();
const orderScript = join(root, "bench/results/order.lua");
await writeFile(
  orderScript,
  `wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = [==[${order}]==]
`,
);

const workloads = [
  // Each workload's first worker is its anchor: Hono doing the same work.
  {
    id: "a",
    title: "(a) plain text `GET /`",
    path: "/",
    // The Hono hello twice, in two processes: how far apart two processes of
    // the same worker measure in this run, the yardstick for every ratio here.
    workers: ["hono-hello", "hono-hello-again", "bare", "workers-rs", "edgeway"],
  },
  {
    id: "a-ops",
    title: "(a) the Ops layer: the text hello metered (`GET /metered/hello`) against the unmetered one (`GET /hello`), in one workerd process, in turns",
    path: "/hello",
    paths: { "edgeway-metered": "/metered/hello" },
    workers: ["edgeway-unmetered", "edgeway-metered"],
  },
  {
    id: "b",
    title: "(b) JSON echo `GET /hello/ada?greeting=hi`",
    path: "/hello/ada?greeting=hi",
    workers: ["hono", "workers-rs-router", "edgeway-app"],
  },
  {
    id: "c",
    title: "(c) the 130 GitHub API routes, requests spread over the table",
    path: "/",
    script: githubScript,
    workers: ["hono", "workers-rs-router", "edgeway-app"],
  },
  {
    id: "d",
    title: "(d) `GET /mw/ping` behind request id, timing, CORS and body limit",
    path: "/mw/ping",
    headers: ["origin: https://app.example"],
    workers: ["hono", "edgeway-app"],
  },
  {
    id: "d-bearer",
    title: "(d) `GET /auth/bearer/ping` behind a bearer secret: Hono `bearerAuth`, edgeway `ApiKeys` presented its root key",
    path: "/auth/bearer/ping",
    headers: [`authorization: Bearer ${BENCH_ROOT_KEY}`],
    workers: ["hono-auth", "edgeway-auth"],
  },
  {
    id: "d-jwk",
    title: "(d) `GET /auth/jwk/ping` behind an RS256 JWT from a fixed JWKS, `iss` and `aud` checked: Hono `jwk`, edgeway `Jwt`",
    path: "/auth/jwk/ping",
    headers: [`authorization: Bearer ${benchJwt}`],
    workers: ["hono-auth", "edgeway-auth"],
    check: refusesForgeries,
  },
  {
    id: "e",
    title: "(e) `POST /orders`: a 16 KB order validated into a typed struct (zod in Hono, garde in edgeway), answered with a computed summary",
    path: "/orders",
    script: orderScript,
    workers: ["hono", "edgeway-app"],
    check: sameAnswers,
  },
].filter((w) => selected.includes(w.id.split("-")[0]));

/**
 * (d) with a JWT is only the same work if both verify: each must refuse the
 * token with its signature changed, and accept it unchanged.
 */
async function refusesForgeries(workers) {
  const forged = benchJwt.slice(0, -4) + (benchJwt.endsWith("AAAA") ? "BBBB" : "AAAA");
  for (const w of workers) {
    for (const [token, status] of [[benchJwt, 200], [forged, 401]]) {
      const res = await fetch(`http://127.0.0.1:${w.port}/auth/jwk/ping`, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      if (res.status !== status) throw new Error(`(d) jwk: ${w.name} answered ${res.status} where ${status} was due`);
    }
  }
  console.error("(d) jwk: both accept the token and refuse it forged");
}

/**
 * (e) must be the same work in both: the same summary for the order, and the
 * same problem (status, type, the violated paths) for a malformed body and for
 * an order that breaks rules. Throws, naming the difference, when they differ.
 */
async function sameAnswers(workers) {
  const broken = JSON.parse(order);
  broken.customer.email = "nobody";
  broken.items[3].quantity = 0;
  const bodies = { valid: order, malformed: '{"id": "ord_1", "items": [', invalid: JSON.stringify(broken) };
  const seen = {};
  for (const w of workers) {
    for (const [kind, body] of Object.entries(bodies)) {
      const res = await fetch(`http://127.0.0.1:${w.port}/orders`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const doc = await res.json();
      const answer = {
        status: res.status,
        type: doc.type ?? null,
        paths: (doc.errors ?? []).map((e) => e.path).sort(),
        summary: res.ok ? doc : null,
      };
      const first = (seen[kind] ??= { name: w.name, answer });
      if (JSON.stringify(first.answer) !== JSON.stringify(answer)) {
        throw new Error(
          `(e) is not the same work: for the ${kind} body ${first.name} answered ${JSON.stringify(first.answer)} and ${w.name} ${JSON.stringify(answer)}`,
        );
      }
    }
  }
  console.error(`(e): both answer the same summary, 400 invalid-json and 422 validation (${seen.invalid.answer.paths.join(", ")})`);
}

const running = new Map();
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


const samples = new Map(); // `${workload}/${worker}` -> samples
const definitions = (await workerDefinitions()).filter((d) => workloads.some((w) => w.workers.includes(d.name)));

// Every round starts every worker in a fresh workerd process and stops it after.
// Two processes of the same worker differ by up to ±5% for their whole life (an
// A/A run of one JS worker in four processes measured 0.95× to 0.99× the
// first's CPU per request, 1.01× to 1.05× its req/s), which is
// as large as the differences measured here; a process per round turns that into
// round-to-round noise, which the medians take out.
async function startAll() {
  for (const def of definitions.filter((d) => !d.sharesProcessOf)) {
    running.set(def.name, { ...def, ...(await startWorker(def)) });
  }
  // A worker that shares another's process is measured on it, path by path.
  for (const def of definitions.filter((d) => d.sharesProcessOf)) {
    const host = running.get(def.sharesProcessOf);
    running.set(def.name, { ...def, proc: host.proc, port: host.port, url: host.url, shared: true });
  }
}
function stopAll() {
  for (const w of running.values()) if (!w.shared) w.proc.kill("SIGKILL");
}

try {
  for (let round = 1; round <= rounds; round++) {
    await startAll();
    if (round === 1) {
      for (const load of workloads) await load.check?.(load.workers.map((name) => running.get(name)));
    }
    for (const load of workloads) {
      // Alternate the order, so whatever favours going first or last (the
      // machine's drift within a round) favours each worker alike.
      const order = round % 2 === 1 ? load.workers : [...load.workers].reverse();
      for (const name of order) {
        const w = running.get(name);
        const url = `http://127.0.0.1:${w.port}${load.paths?.[name] ?? load.path}`;
        const extra = [
          ...(load.script ? ["-s", load.script] : []),
          ...(load.headers ?? []).flatMap((h) => ["-H", h]),
        ];
        // A short warm-up so JIT tiers settle before the measured window (not in
        // `make bench-smoke`'s one-second runs, which only check that it works).
        if (duration > 1) await run("wrk", ["-t1", "-c4", "-d1s", ...extra, url]);
        const cpuBefore = await cpuMs(w.proc.pid);
        const { stdout } = await run("wrk", ["-t1", `-c${connections}`, `-d${duration}s`, "--latency", ...extra, url]);
        const sample = parseWrk(stdout);
        sample.cpuUsPerReq = (((await cpuMs(w.proc.pid)) - cpuBefore) * 1000) / sample.requests;
        if (sample.non2xx > 0) throw new Error(`${load.id}/${name}: ${sample.non2xx} non-2xx responses`);
        const key = `${load.id}/${name}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
        console.error(
          `round ${round} ${key}: ${sample.rps.toFixed(0)} req/s, ${sample.cpuUsPerReq.toFixed(1)} µs CPU/req`,
        );
      }
    }
    stopAll();
    running.clear();
  }
} finally {
  stopAll();
}

const { stdout: wrkVersion } = await run("wrk", ["--version"]).catch((e) => ({ stdout: e.stdout ?? "" }));
const result = {
  command: `node bench/hotpath.mjs --duration ${duration} --rounds ${rounds} --connections ${connections} --workloads ${selected.join(",")}`,
  load: `wrk -t1 -c${connections} -d${duration}s --latency, ${rounds} interleaved rounds, each worker in a fresh workerd every round; medians, and ratios as medians of per-round ratios`,
  node: process.version,
  wrk: wrkVersion.split("\n")[0].trim(),
  workloads: [],
};
for (const load of workloads) {
  const of = (name) => samples.get(`${load.id}/${name}`);
  const anchor = of(load.workers[0]);
  // Ratios are the median of per-round ratios: a worker and its anchor measured
  // seconds apart in the same round share whatever the machine was doing then.
  const paired = (s, field) => median(s.map((x, i) => x[field] / anchor[i][field]));
  const rows = load.workers.map((name) => {
    const s = of(name);
    return {
      name,
      label: definitions.find((d) => d.name === name).label,
      rps: Math.round(median(s.map((x) => x.rps))),
      vs_hono: Number(paired(s, "rps").toFixed(2)),
      p50_ms: median(s.map((x) => x.p50)),
      p99_ms: median(s.map((x) => x.p99)),
      cpu_us_per_req: Number(median(s.map((x) => x.cpuUsPerReq)).toFixed(1)),
      cpu_vs_hono: Number(paired(s, "cpuUsPerReq").toFixed(2)),
    };
  });
  result.workloads.push({ id: load.id, title: load.title, rows });
  console.log(`\n${load.title}\n`);
  console.log("| Worker | req/s | vs Hono | p50 ms | p99 ms | workerd CPU µs/req | CPU vs Hono |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.label} | ${r.rps} | ${r.vs_hono.toFixed(2)}× | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ${r.cpu_us_per_req} | ${r.cpu_vs_hono.toFixed(2)}× |`,
    );
  }
}
if (jsonOut) await writeFile(jsonOut, JSON.stringify(result, null, 2));
