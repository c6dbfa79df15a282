// Benchmark anchor for the authentication rows of (d): the same route behind
// Hono's `bearerAuth` (the secret from the environment, as Hono's docs show for
// Workers) and behind its `jwk` (RS256 from a fixed JWKS, checking `iss` and
// `aud` as edgeway does). bench/apps/bindings is its edgeway twin.
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { jwk } from "hono/jwk";
import jwks from "../../data/jwt/jwks.json";

const app = new Hono();
app.get("/", (c) => c.text("Hello from edgeway!"));
app.use("/auth/bearer/*", (c, next) => bearerAuth({ token: c.env.EDGEWAY_ROOT_KEY })(c, next));
app.get("/auth/bearer/ping", (c) => c.text("pong"));
app.use(
  "/auth/jwk/*",
  jwk({ keys: jwks.keys, alg: ["RS256"], verification: { iss: "https://idp.bench.example", aud: "bench" } }),
);
app.get("/auth/jwk/ping", (c) => c.text("pong"));

export default app;
