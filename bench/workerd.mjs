// Shared by the benchmarks: the workers under test and how to run each in a bare
// workerd (a generated capnp config; no Miniflare, no wrangler proxy).
import { execFile, spawn } from "node:child_process";
import { copyFile, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const HELLO_BODY = "Hello from edgeway!";

/** Whether `body` is the answer `worker` must give: its own `expect`, else the hello text. */
export const answered = (worker, body) => (worker.expect ?? ((text) => text === HELLO_BODY))(body);

/** A Rust function's name as a module built with names gives it, without rustc's crate hashes. */
export const rustName = (name) => name.replace(/\[[0-9a-f]{1,16}\]|::h[0-9a-f]{16}\b/g, "");

/** The value after `--name` on the command line, or `fallback`. */
export const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};

/** The median of numbers. */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const compatibilityDate = "2026-11-01";

/** A Hono app bundled and minified as `wrangler deploy --minify` ships it. */
async function bundleHono(name, entry) {
  const outfile = join(root, `bench/results/build/${name}.mjs`);
  await mkdir(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(root, entry)],
    bundle: true,
    format: "esm",
    minify: true,
    outfile,
    loader: { ".txt": "text" },
    logLevel: "warning",
  });
  return outfile;
}

const run = promisify(execFile);

/**
 * A Rust worker exactly as wrangler ships it: `wrangler deploy --dry-run --outdir`
 * runs the config's `[build]` command (`edgeway build`, a no-op when up to date)
 * and bundles the result. Returns the modules: the bundle, then its wasm.
 */
export async function shipped(name, config) {
  // A build with names (EDGEWAY_KEEP_NAMES=1: bench/profile.mjs) ships to a
  // directory of its own, so that shipped/ always holds what wrangler ships and
  // an A/B base copied from it is never a build with names by accident.
  const kind = process.env.EDGEWAY_KEEP_NAMES === "1" ? "shipped-names" : "shipped";
  const outdir = join(root, "bench/results", kind, name);
  await rm(outdir, { recursive: true, force: true });
  const cwd = dirname(join(root, config));
  await run(join(root, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", outdir], {
    cwd,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    maxBuffer: 64 << 20,
  });
  const wasm = (await readdir(outdir)).filter((f) => f.endsWith(".wasm"));
  return [["index.js", join(outdir, "index.js")], ...wasm.map((f) => [f, join(outdir, f)])];
}

/** The secret both authentication workers hold, bound as text. */
export const BENCH_ROOT_KEY = "bench-root-key-protects-nothing-0123456789";

/**
 * The whole gateway as wrangler ships it, asked `GET /healthz`, which must answer
 * `"status": "ok"`. It runs without its bindings: start-up and that request touch
 * none, and a bare workerd has no D1 or queues to give it.
 */
export async function gatewayDefinition() {
  const healthy = (body) => {
    try {
      return JSON.parse(body).status === "ok";
    } catch {
      return false;
    }
  };
  return {
    name: "gateway",
    label: "edgeway gateway (root wrangler.toml), first `GET /healthz`",
    modules: await shipped("gateway", "wrangler.toml"),
    path: "/healthz",
    expect: healthy,
  };
}

/**
 * Each worker: a main module first, then the modules it imports, by import name;
 * `text`: text bindings (name to value); `sharesProcessOf`: another worker whose
 * workerd process serves this one too (bench/hotpath.mjs).
 * `path` and `expect`: what the first request asks, and the answer it must get
 * (`answered`).
 */
export async function workerDefinitions() {
  const bindingsApp = await shipped("edgeway-bindings", "bench/apps/bindings/wrangler.toml");
  const honoHello = [["index.mjs", await bundleHono("hono-hello", "bench/baselines/hono-hello/index.mjs")]];
  return [
    {
      name: "hono-hello",
      label: "Hono hello (the same 3 routes as examples/hello)",
      modules: honoHello,
    },
    {
      name: "hono-hello-again",
      label: "Hono hello again, a second copy measured on its own (two measurements of one worker: the run's noise)",
      modules: honoHello,
    },
    {
      name: "hono",
      label: "Hono (130 routes, 4 middleware: the bench app's twin)",
      modules: [["index.mjs", await bundleHono("hono", "bench/baselines/hono/index.mjs")]],
    },
    {
      name: "bare",
      label: "bare wasm-bindgen export + tiny JS fetch (floor)",
      modules: [
        ["worker.mjs", join(root, "bench/baselines/bare/worker.mjs")],
        ["pkg/bench_bare_bg.js", join(root, "bench/baselines/bare/pkg/bench_bare_bg.js")],
        ["pkg/bench_bare_bg.wasm", join(root, "bench/baselines/bare/pkg/bench_bare_bg.wasm")],
      ],
    },
    {
      name: "workers-rs",
      label: "workers-rs #[event(fetch)], no router (built by edgeway build: same shim and size pipeline)",
      modules: await shipped("workers-rs", "bench/baselines/workers-rs/wrangler.toml"),
    },
    { name: "edgeway", label: "edgeway examples/hello", modules: await shipped("edgeway", "examples/hello/wrangler.toml") },
    {
      name: "workers-rs-router",
      label: "workers-rs Router (built per request, as documented; built by edgeway build)",
      modules: await shipped("workers-rs-router", "bench/baselines/workers-rs-router/wrangler.toml"),
    },
    {
      name: "edgeway-app",
      label: "edgeway bench app (130 routes, middleware; built `--optimize-for speed`)",
      modules: await shipped("edgeway-app", "bench/apps/edgeway/wrangler.toml"),
    },
    {
      name: "hono-auth",
      label: "Hono bearerAuth, jwk",
      modules: [["index.mjs", await bundleHono("hono-auth", "bench/baselines/hono-auth/index.mjs")]],
      text: { EDGEWAY_ROOT_KEY: BENCH_ROOT_KEY },
    },
    {
      name: "edgeway-auth",
      label: "edgeway ApiKeys, Jwt",
      modules: bindingsApp,
      text: { EDGEWAY_ROOT_KEY: BENCH_ROOT_KEY },
    },
    // For (a) with and without the Ops layer: one process, two paths, so the
    // difference between two processes of one bundle (more than the 3 % being
    // measured) is not in the figure.
    { name: "edgeway-unmetered", label: "edgeway, text hello", modules: bindingsApp },
    {
      name: "edgeway-metered",
      label: "edgeway, text hello behind the Ops layer",
      modules: bindingsApp,
      sharesProcessOf: "edgeway-unmetered",
    },
  ];
}

export const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });

/**
 * Copies the worker's modules next to a generated config; returns its path and
 * port. `v8Flags` are passed to workerd's V8 (e.g. to trace wasm compilation).
 */
export async function prepareWorker(worker, v8Flags = []) {
  const dir = join(root, "bench/results/workerd", worker.name);
  await rm(dir, { recursive: true, force: true });
  const modules = [];
  for (const [name, source] of worker.modules) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await copyFile(source, join(dir, name));
    const kind = name.endsWith(".wasm") ? "wasm" : "esModule";
    modules.push(`(name = "${name}", ${kind} = embed "${name}")`);
  }
  const bindings = Object.entries(worker.text ?? {}).map(
    ([name, value]) => `(name = ${JSON.stringify(name)}, text = ${JSON.stringify(value)})`,
  );
  const port = await freePort();
  const config = join(dir, "config.capnp");
  await writeFile(
    config,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  v8Flags = [${v8Flags.map((f) => JSON.stringify(f)).join(", ")}],
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${modules.join(", ")}],
  bindings = [${bindings.join(", ")}],
  compatibilityDate = "${compatibilityDate}",
);
`,
  );
  return { config, port };
}

/**
 * Starts workerd for `worker` and waits (bounded) until GET / answers the hello
 * body. A port taken between `freePort` and workerd's bind is tried again on a
 * new one (hotpath starts every worker every round, so this race comes up).
 */
export async function startWorker(worker, extraArgs = []) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(worker, extraArgs);
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/.test(err.message)) throw err;
    }
  }
}

async function startOnce(worker, extraArgs) {
  const { config, port } = await prepareWorker(worker);
  const proc = spawn(join(root, "node_modules/.bin/workerd"), ["serve", config, ...extraArgs], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    let res;
    try {
      res = await fetch(url);
    } catch (err) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        proc.kill("SIGKILL");
        throw new Error(`${worker.name} did not start: ${err.message}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const body = await res.text();
    if (!res.ok || body !== HELLO_BODY) {
      proc.kill("SIGKILL");
      throw new Error(`${worker.name}: GET / answered ${res.status} ${JSON.stringify(body)}\n${stderr}`);
    }
    return { proc, url, port };
  }
}
