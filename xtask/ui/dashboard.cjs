// Browser tests of the dashboard: a real Chromium (Debian's, driven by
// playwright-core) against a real `smpp serve`, with the real `smpp listen`,
// `smpp send` and `smpp bench` as ESMEs. Run by `cargo xtask ui`, which
// installs what it needs and passes:
//   SMPP_BIN        the smpp binary
//   PLAYWRIGHT_CORE the playwright-core module's folder
//   CHROMIUM        the browser
//   SHOTS           where screenshots go (target/ui)
// Every server listens on 127.0.0.1, port 0. Exits non-zero on the first failure.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const SMPP = process.env.SMPP_BIN;
const SHOTS = process.env.SHOTS;
const WAIT = 20000;
const children = [];

function fail(message) {
  throw new Error(message);
}

// Starts `smpp ARGS`; resolves once `ready(lines)` is true of its stdout
// lines (at once without `ready`).
function start(args, ready = null) {
  return new Promise((resolve, reject) => {
    const child = spawn(SMPP, args, { stdio: ["pipe", "pipe", "pipe"], cwd: os.tmpdir() });
    children.push(child);
    child.lines = [];
    child.stderrText = "";
    let pending = "";
    const timer = setTimeout(
      () => reject(new Error(`smpp ${args.join(" ")}: not ready: ${child.lines.join("\n")}\n${child.stderrText}`)),
      WAIT,
    );
    child.stdout.on("data", (chunk) => {
      pending += chunk.toString();
      const parts = pending.split("\n");
      pending = parts.pop();
      child.lines.push(...parts);
      if (ready && ready(child.lines)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr.on("data", (chunk) => {
      child.stderrText += chunk.toString();
    });
    child.on("exit", (code) => {
      child.exited = code;
    });
    if (!ready) {
      clearTimeout(timer);
      resolve(child);
    }
  });
}

// Runs `smpp ARGS` to its end; its stdout (a non-zero exit fails unless
// `anyExit`).
function run(args, anyExit = false) {
  return new Promise((resolve, reject) => {
    const child = spawn(SMPP, args, { cwd: os.tmpdir() });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    child.on("exit", (code) =>
      code === 0 || anyExit ? resolve(out) : reject(new Error(`smpp ${args.join(" ")}: exit ${code}\n${err}`)),
    );
  });
}

function address(child, label) {
  const prefix = `${label} listening on `;
  const line = child.lines.find((l) => l.startsWith(prefix));
  if (!line) fail(`no "${prefix}" line in ${child.lines.join("\n")}`);
  return line.slice(prefix.length).trim();
}

async function until(what, check) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  console.log(`  screenshot ${name}.png`);
}

const banner = (lines) => lines.some((l) => l.startsWith("store:"));

async function simulatorPages(browser) {
  const serve = await start(
    ["serve", "--memory", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--dlr-delay", "200ms"],
    banner,
  );
  const http = `http://${address(serve, "HTTP")}`;
  const port = address(serve, "SMPP").split(":").pop();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

  console.log("overview, no session yet");
  await page.goto(`${http}/`);
  if ((await page.textContent("h1")) !== "Overview") fail("the overview's heading");
  await page.waitForSelector("text=No session is bound.");
  await shot(page, "overview-empty");

  console.log("a session appears, live, when smpp listen binds");
  const listen = await start(["listen", "--port", port, "--json"]);
  await page.waitForSelector('#sessions [data-session="smppclient1"]', { timeout: WAIT });

  console.log("an MO from the form reaches smpp listen");
  await page.click('nav a[href="/mo"]');
  await page.fill('input[name="from"]', "447700900123");
  await page.fill('input[name="to"]', "1234");
  await page.fill('textarea[name="text"]', "Hello from the dashboard");
  await page.click('button[type="submit"]');
  await page.waitForSelector(".notice.ok");
  await until("the MO at smpp listen", () =>
    listen.lines.some((l) => l.includes("Hello from the dashboard")),
  );
  await shot(page, "inject-mo");

  console.log("a sent message is found by id, its receipt in the timeline");
  // Its receipt goes to the account's receiver: smpp listen.
  const sent = await run(["send", "--port", port, "--from", "Acme", "--to", "447700900456", "--text", "find me", "--receipt"]);
  const id = /message_id (\S+)/.exec(sent)[1];
  await page.goto(`${http}/messages`);
  await page.fill('input[name="id"]', id);
  await page.click('button[type="submit"]');
  // The page may come before the receipt (200 ms): its timeline is live.
  await page.waitForSelector('[data-event="final"]');
  await page.waitForSelector('[data-event="receipt"]');
  if ((await page.textContent('[data-field="state"]')) !== "DELIVRD") fail("the message's state");
  await shot(page, "message");

  console.log("a running smpp bench moves the chart and the counters");
  await page.goto(`${http}/`);
  const before = await page.getAttribute("#chart polyline", "points");
  const bench = run(["bench", "--port", port, "--duration", "5s", "--window", "16"]);
  // Hundreds a second at least: the bench's load, not the one message before.
  await until("the bench's messages per second on the overview", async () => {
    const text = await page.textContent("#traffic .card:nth-child(2) .value");
    const rate = text.endsWith("k") ? Number(text.slice(0, -1)) * 1000 : Number(text);
    return rate >= 100;
  });
  await until("the chart redrawn", async () => (await page.getAttribute("#chart polyline", "points")) !== before);
  await shot(page, "overview-under-load");
  await bench;

  console.log("the sessions page unbinds smpp listen");
  await page.goto(`${http}/sessions`);
  await shot(page, "sessions");
  await page.click('[data-session="smppclient1"] button');
  await page.waitForSelector(".notice.ok");
  await until("smpp listen ended by the unbind", () => listen.exited !== undefined);

  console.log("a rule edited on the simulator page applies to the next message");
  await page.goto(`${http}/simulator`);
  await page.fill('textarea[name="rules"]', '[[rule]]\nprefix = "999"\nstate = "UNDELIV"\nerror = 5\n');
  await page.fill('input[name="dlr_delay"]', "0s");
  await page.click('button[type="submit"]');
  await page.waitForSelector(".notice.ok");
  await shot(page, "simulator");
  // (smpp send exits 1 when the final state is not DELIVRD.)
  const undeliv = await run(["send", "--port", port, "--from", "1", "--to", "999001", "--text", "x", "--wait-receipt", "10s"], true);
  if (!undeliv.includes("state UNDELIV")) fail(`the rule did not apply: ${undeliv}`);

  console.log("legible at a phone's width");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${http}/`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (overflow) fail("the overview scrolls sideways at 390 px");
  await shot(page, "overview-phone");
  await page.close();
  serve.kill();
}

// Without JavaScript the pages still work (only the live updates stop).
async function withoutJavaScript(browser) {
  const serve = await start(["serve", "--memory", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"], banner);
  const http = `http://${address(serve, "HTTP")}`;
  const port = address(serve, "SMPP").split(":").pop();
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  console.log("without JavaScript: pages render, forms post");
  const listen = await start(["listen", "--port", port]);
  await until("smpp listen bound", async () => {
    await page.goto(`${http}/sessions`);
    return (await page.$('[data-session="smppclient1"]')) !== null;
  });
  await page.goto(`${http}/mo`);
  await page.fill('input[name="from"]', "1");
  await page.fill('input[name="to"]', "2");
  await page.fill('textarea[name="text"]', "no script needed");
  await page.click('button[type="submit"]');
  await page.waitForSelector(".notice.ok");
  await until("the MO at smpp listen", () => listen.lines.some((l) => l.includes("no script needed")));
  await context.close();
  serve.kill();
}

async function signIn(browser) {
  const serve = await start(
    ["serve", "--memory", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--http-token", "ui-t0ken"],
    banner,
  );
  const http = `http://${address(serve, "HTTP")}`;
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  console.log("with a token: the login form first");
  await page.goto(`${http}/sessions`);
  if (!page.url().endsWith("/login")) fail(`not sent to the form: ${page.url()}`);
  await page.fill('input[name="token"]', "wrong");
  await page.click('button[type="submit"]');
  await page.waitForSelector(".notice.error");
  await shot(page, "login");
  await page.fill('input[name="token"]', "ui-t0ken");
  await page.click('button[type="submit"]');
  await page.waitForSelector("h1:text('Overview')");
  const api = await page.request.get(`${http}/metrics`);
  if (api.status() !== 200) fail(`the cookie opens the API too: ${api.status()}`);
  await page.close();
  serve.kill();
}

async function gatewayPages(browser) {
  const upstream = await start(["serve", "--memory", "--listen", "127.0.0.1:0", "--dlr-delay", "100ms"], banner);
  const up = address(upstream, "SMPP");
  const second = await start(["serve", "--memory", "--listen", "127.0.0.1:0", "--dlr-delay", "100ms"], banner);
  const up2 = address(second, "SMPP");
  const gateway = await start(
    [
      "gateway", "--memory", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
      "--account", "esme:secret", "--balance", "esme=10",
      "--upstream", `a=smppclient1:password@${up}`,
    ],
    banner,
  );
  const http = `http://${address(gateway, "HTTP")}`;
  const port = address(gateway, "SMPP").split(":").pop();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

  console.log("gateway: the overview and its connectors");
  await page.goto(`${http}/`);
  if ((await page.textContent("h1")) !== "Overview") fail("the gateway overview");
  await page.goto(`${http}/connectors`);
  await page.waitForSelector('[data-connector="a"]');

  console.log("gateway: a connector added from the form comes up");
  await page.fill('input[name="name"]', "b");
  await page.fill('input[name="address"]', up2);
  await page.fill('input[name="system_id"]', "smppclient1");
  await page.fill('input[name="password"]', "password");
  await page.click('form.stack button[type="submit"]');
  await page.waitForSelector(".notice.ok");
  await until("b's bind up", async () => {
    await page.goto(`${http}/connectors`);
    return (await page.getAttribute('[data-connector="b"] [data-up]', "data-up")) === "1";
  });
  await shot(page, "gateway-connectors");

  console.log("gateway: a route from the form sends 4470 to b");
  await page.goto(`${http}/routes`);
  await page.fill('input[name="route"]', "4470=b");
  await page.click('form.stack button[type="submit"]');
  await page.waitForSelector('[data-route="4470=b"]');
  await page.waitForSelector('[data-route="*=a,b"]');
  await shot(page, "gateway-routes");

  console.log("gateway: a message through it, found with its timeline");
  const sent = await run([
    "send", "--port", port, "--system-id", "esme", "--password", "secret",
    "--from", "Acme", "--to", "447012345678", "--text", "via b", "--wait-receipt", "10s",
  ]);
  const id = /message_id (\S+)/.exec(sent)[1];
  await page.goto(`${http}/messages?id=${id}`);
  await page.waitForSelector('[data-event="DELIVRD"]');
  if (!(await page.textContent('[data-event="FORWARDED"]')).includes("to b as")) fail("forwarded to b");
  await shot(page, "gateway-message");

  console.log("gateway: a balance added to from the accounts page");
  await page.goto(`${http}/accounts`);
  await page.fill('[data-account="esme"] input[name="add"]', "2.50");
  await page.click('[data-account="esme"] button');
  await page.waitForSelector(".notice.ok");
  await shot(page, "gateway-accounts");

  console.log("gateway: a batch's progress and its CSV");
  const auth = "Basic " + Buffer.from("esme:secret").toString("base64");
  const made = await page.request.post(`${http}/api/v1/batches`, {
    headers: { authorization: auth },
    data: { from: "Acme", to: ["33600000001", "33600000002", "33600000003"], text: "batch", receipt: true },
  });
  const batch = (await made.json()).batch;
  await until("the batch final", async () => {
    await page.goto(`${http}/batches?id=${batch}`);
    return (await page.textContent("main")).includes("3 (100%)");
  });
  await shot(page, "gateway-batch");
  const csv = await page.request.get(`${http}/batches/${batch}/report.csv`);
  const lines = (await csv.text()).trim().split("\n");
  if (lines.length !== 4 || !lines[1].endsWith(",DELIVRD")) fail(`the batch CSV: ${lines.join(" | ")}`);
  await page.goto(`${http}/`);
  await shot(page, "gateway-overview");
  await page.close();
  gateway.kill();
  upstream.kill();
  second.kill();
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    await simulatorPages(browser);
    await withoutJavaScript(browser);
    await signIn(browser);
    await gatewayPages(browser);
  } finally {
    await browser.close();
  }
}

main()
  .then(() => {
    console.log("ui: all passed");
  })
  .catch((e) => {
    console.error(`ui: FAILED: ${e.stack || e}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill();
  });
