// Benchmark anchor: the same workloads on Hono, the JS framework users would pick:
// (a) text, (b) a JSON echo with a path param and a query, (c) the 130 GitHub API
// routes, (d) a route behind Hono's request id, timing, CORS and body-limit
// middleware.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { requestId } from "hono/request-id";
import { timing } from "hono/timing";
import routes from "../../data/github-api-routes.txt";

const app = new Hono();
app.get("/", (c) => c.text("Hello from edgeway!"));
app.get("/hello/:name", (c) =>
  c.json({ name: c.req.param("name"), greeting: c.req.query("greeting") ?? "hello" }),
);
app.get("/healthz", (c) => c.text("ok"));

const gh = new Hono();
for (const route of routes.split("\n").filter((l) => l.startsWith("/"))) {
  gh.get(route.replace(/\{(\w+)\}/g, ":$1"), (c) => c.text("gh"));
}
app.route("/gh", gh);

const mw = new Hono();
mw.use(requestId(), timing(), cors({ origin: "https://app.example", allowMethods: ["GET", "POST"] }),
  bodyLimit({ maxSize: 64 * 1024 }));
mw.get("/ping", (c) => c.text("pong"));
app.route("/mw", mw);

export default app;
