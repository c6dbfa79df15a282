// The cold-start and throughput anchor for examples/hello: the same three routes
// on Hono, and nothing else.
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("Hello from edgeway!"));
app.get("/hello/:name", (c) =>
  c.json({ name: c.req.param("name"), greeting: c.req.query("greeting") ?? "hello" }),
);
app.get("/healthz", (c) => c.text("ok"));

export default app;
