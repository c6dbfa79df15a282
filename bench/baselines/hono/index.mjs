// Benchmark anchor: the same workloads on Hono, the JS framework users would pick:
// (a) text, (b) a JSON echo with a path param and a query, (c) the 130 GitHub API
// routes, (d) a route behind Hono's request id, timing, CORS and body-limit
// middleware; (e) a 16 KB order validated with `@hono/zod-validator` (what Hono
// users write for validated bodies) and answered with a computed summary, with
// the same problem documents as edgeway for bad bodies.
import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
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

// (e): the rules of the edgeway bench app's `Order` (garde), in zod.
const text = (min, max) => z.string().min(min).max(max);
const count = (min, max) => z.number().int().min(min).max(max);
const Order = z.object({
  id: text(1, 64),
  customer: z.object({ id: text(1, 64), email: text(3, 254).includes("@"), name: text(1, 128) }),
  currency: text(3, 3),
  shipping: z.object({
    country: text(2, 2),
    postal_code: text(1, 16),
    city: text(1, 64),
    street: text(1, 128),
  }),
  note: text(0, 500).nullish(),
  items: z
    .array(
      z.object({
        sku: text(1, 32),
        name: text(1, 128),
        quantity: count(1, 1000),
        unit_price_cents: count(0, 10_000_000),
        tax_rate_bp: count(0, 10_000),
      }),
    )
    .min(1)
    .max(500),
});

// The same RFC 9457 documents edgeway answers with.
const problem = (c, status, title, slug, detail, extra = {}) =>
  c.body(
    JSON.stringify({ type: `urn:edgeway:problem:${slug}`, title, status, detail, ...extra }),
    status,
    { "content-type": "application/problem+json" },
  );
const pathOf = (path) =>
  path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");

app.post(
  "/orders",
  zValidator("json", Order, (result, c) => {
    if (!result.success) {
      const errors = result.error.issues.map((i) => ({ path: pathOf(i.path), message: i.message }));
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more; see errors)` : "";
      return problem(c, 422, "Unprocessable Content", "validation", `${errors[0].path}: ${errors[0].message}${more}`, { errors });
    }
  }),
  (c) => {
    const order = c.req.valid("json");
    let units = 0;
    let subtotal = 0;
    let tax = 0;
    for (const item of order.items) {
      const line = item.quantity * item.unit_price_cents;
      units += item.quantity;
      subtotal += line;
      tax += Math.floor((line * item.tax_rate_bp + 5000) / 10000);
    }
    return c.json({
      id: order.id,
      currency: order.currency,
      lines: order.items.length,
      units,
      subtotal_cents: subtotal,
      tax_cents: tax,
      total_cents: subtotal + tax,
    });
  },
);

// Malformed JSON: the validator throws a 400, answered as edgeway does.
app.onError((err, c) =>
  err instanceof HTTPException && err.status === 400
    ? problem(c, 400, "Bad Request", "invalid-json", err.message)
    : c.text("Internal Server Error", 500),
);

export default app;
