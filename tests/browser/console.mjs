// Drives the www/ console in real headless Chromium (Debian's, via playwright-core)
// against a running gateway, at phone width. Run by tests/console.rs:
//   node tests/browser/console.mjs <gateway url> <image to upload> <screenshot path> <API key>
// Exits non-zero, with the reason, on the first thing that does not work.
import { chromium } from "playwright-core";

const [base, image, screenshot, apiKey] = process.argv.slice(2);
const fail = (why) => { throw new Error(why); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  page.setDefaultTimeout(60_000);
  const offsite = [];
  page.on("request", (req) => {
    const url = req.url();
    if (!url.startsWith(base) && !url.startsWith("data:")) offsite.push(url);
  });
  const consoleErrors = [];
  page.on("pageerror", (err) => consoleErrors.push(err.message));

  await page.goto(`${base}/`);
  await page.waitForSelector("#health.ok");
  // Closed until signed in: a wrong key is refused with the gateway's reason,
  // the right one opens the panels.
  await page.waitForSelector("#sign-in input[name=key]");
  if (await page.isVisible("#console")) fail("the panels show before signing in");
  await page.fill("#sign-in input[name=key]", "not-the-key");
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector('[data-error="sign-in"]:has-text("refused")');
  await page.fill("#sign-in input[name=key]", apiKey);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#routes-list tr");
  const routeCount = await page.locator("#routes-list tr").count();

  // Publish to the declared audit topic and watch the delivery settle.
  await page.click("#publish-form button[type=submit]");
  await page.waitForSelector("[data-testid=delivery-state] .badge.delivered");
  const eventId = await page.textContent("#event-id");

  // The queue delivery is then filed in KV by a consumer, one more queue hop
  // later: list until it shows up, then open it.
  await page.fill("#kv-list input[name=prefix]", "audit:");
  const key = page.locator(`#kv-keys button:text("audit:${eventId}")`);
  for (let i = 0; i < 60 && (await key.count()) === 0; i++) {
    await page.click("#kv-list button[type=submit]");
    await page.waitForTimeout(500);
  }
  await key.click();
  await page.waitForSelector("#kv-value:not([hidden])");
  const stored = await page.textContent("#kv-value");
  if (!stored.includes(eventId)) fail(`KV value does not hold event ${eventId}: ${stored}`);

  // A word count on Lambda: queued, then running, then done.
  await page.click("#job-words button[type=submit]");
  await page.waitForSelector("#job-status.done");
  const summary = await page.textContent("[data-testid=job-summary]");
  if (!/11 words/.test(summary)) fail(`unexpected word count: ${summary}`);
  const steps = await page.locator("#job-steps li").allTextContents();
  if (steps[steps.length - 1] !== "done") fail(`job steps: ${steps}`);

  // A thumbnail of an uploaded image.
  await page.setInputFiles("#job-image input[type=file]", image);
  await page.click("#job-image button[type=submit]");
  await page.waitForSelector("[data-testid=thumbnail]");
  const size = await page.$eval("[data-testid=thumbnail]", (img) => [img.naturalWidth, img.naturalHeight]);
  if (size[0] !== 128) fail(`thumbnail is ${size}`);

  // An order: its workflow's steps are drawn while they run, then all end ok.
  await page.fill("#order-form input[name=quantity]", "2");
  await page.click("#order-form button[type=submit]");
  await page.waitForSelector("#order-view:not([hidden])");
  await page.waitForSelector("#order-status.completed", { timeout: 90_000 });
  if ((await page.getAttribute("#order-view", "data-saw-pending")) !== "true") {
    fail("the order's steps were never seen under way");
  }
  const orderSteps = await page.locator("#order-steps li").allTextContents();
  const expected = ["reserve stock", "charge", "label: submit", "label", "publish order.completed"];
  const names = orderSteps.map((t) => t.replace(/ #\d+.*$/, ""));
  if (JSON.stringify(names) !== JSON.stringify(expected)) fail(`order steps: ${orderSteps}`);
  if (!orderSteps.every((t) => / ok$/.test(t))) fail(`order steps not all ok: ${orderSteps}`);
  const drawn = await page.locator("#order-timeline rect").evaluateAll((rects) => rects.map((r) => r.getAttribute("data-outcome")));
  if (drawn.length !== expected.length || !drawn.every((o) => o === "ok")) fail(`timeline bars: ${drawn}`);
  if (!/label EW\d{10}/.test(await page.textContent("[data-testid=order-summary]"))) fail("no label in the summary");
  const orderId = (await page.textContent("#order-id")).trim();
  await page.locator("#orders-list button", { hasText: orderId }).waitFor();
  await page.locator("#orders").screenshot({ path: screenshot.replace(/\.png$/, "-orders.png") });

  // An API error reads as a sentence, not a JSON dump.
  await page.fill("#publish-form input[name=topic]", "not a topic!");
  await page.click("#publish-form button[type=submit]");
  await page.waitForSelector("[data-error=publish]:not([hidden])");
  const message = await page.textContent("[data-error=publish]");
  if (message.trim().startsWith("{") || !/Bad Request \(400\)/.test(message)) fail(`error reads: ${message}`);

  // Make a key with a scope, see it listed, then revoke it.
  await page.fill("#key-add input[name=name]", "console-made");
  await page.fill("#key-add input[name=scopes]", "kv:read");
  await page.click("#key-add button[type=submit]");
  await page.waitForSelector("#key-made:not([hidden])");
  const made = (await page.textContent("#key-secret")).trim();
  if (!/^ewk_[0-9a-f]{16}_[0-9a-f]{64}$/.test(made)) fail(`the new key reads ${made}`);
  const row = page.locator("#keys-list tr", { hasText: "console-made" });
  await row.waitFor();
  if (!/kv:read/.test(await row.textContent())) fail("the new key's scope is not listed");
  await row.locator("button").click();
  await row.waitFor({ state: "detached" });
  // A scope no route has is refused with the gateway's reason.
  await page.fill("#key-add input[name=name]", "typo");
  await page.fill("#key-add input[name=scopes]", "kvv");
  await page.click("#key-add button[type=submit]");
  await page.waitForSelector('[data-error=keys]:has-text("kvv")');

  // Usage and cost. A cold-start rule draws its threshold; the console's own
  // requests are metered: refresh until they are reported, then read the plots.
  await page.evaluate(async (key) => {
    const rules = [{ name: "kv-cold", metric: "cold_start_p99_ms", feature: "kv", threshold: 250 }];
    const res = await fetch("/v1/ops/alerts", {
      method: "PUT",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(rules),
    });
    if (!res.ok) throw new Error(`PUT /v1/ops/alerts: ${res.status}`);
  }, apiKey);
  const plotted = page.locator('#usage-rate [data-feature="kv"]');
  for (let i = 0; i < 60 && (await plotted.count()) === 0; i++) {
    await page.waitForTimeout(1000);
    await page.click("#usage-form button[type=submit]");
  }
  if ((await plotted.count()) === 0) fail("the kv feature's requests were never plotted");
  const legend = await page.textContent("#usage-legend");
  if (!/kv: \d+ \(\d+ cold\)/.test(legend)) fail(`usage legend: ${legend}`);
  const bars = await page.locator("#usage-latency rect").evaluateAll((rects) => rects.map((r) => r.getAttribute("aria-label")));
  if (!bars.some((b) => /^kv P99 [\d.]+ ms$/.test(b))) fail(`latency bars: ${bars}`);
  if ((await page.locator('#usage-latency line[data-rule="kv-cold"]').count()) !== 1) fail("no threshold line for the kv rule");
  const bills = await page.locator("#usage-cost rect").evaluateAll((rects) => rects.map((r) => r.getAttribute("aria-label")));
  if (bills.length !== 3 || !bills.every((b) => /\$\d/.test(b))) fail(`cost bars: ${bills}`);
  if (!/Containers/.test(await page.textContent("#usage-break-even"))) fail("no break-even sentence");
  await page.locator("#usage").screenshot({ path: screenshot.replace(/\.png$/, "-usage.png") });

  // Recent request timings are listed.
  const timed = await page.locator("#requests-list tr").count();
  if (timed < 3) fail(`only ${timed} recent requests listed`);

  // Phone width: nothing pushes the page sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) fail(`the page is ${overflow}px wider than a phone screen`);

  if (offsite.length) fail(`the console fetched from outside the gateway: ${offsite}`);
  if (consoleErrors.length) fail(`page errors: ${consoleErrors}`);

  await page.screenshot({ path: screenshot, fullPage: true });
  const orderStatus = (await page.textContent("#order-status")).trim();
  console.log(JSON.stringify({ ok: true, routes: routeCount, event: eventId, thumbnail: size, order_status: orderStatus, screenshot }));
} finally {
  await browser.close();
}
