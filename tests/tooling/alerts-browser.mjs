// Drive Debian's Chromium through the dashboard's alerts as an operator would:
// see the alerting touchpoint, acknowledge its alert with a comment and an
// assignee from the alerts page, and read every page in Swedish at 390 px.
//
// Usage: node alerts-browser.mjs BASE_URL TOKEN TOUCHPOINT USER_DATA_DIR
// Prints one JSON object: what each page showed, its width at 390 px,
// axe-core's violations per page, the refused forged POST and every URL requested.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [base, token, touchpoint, userDataDir] = process.argv.slice(2);
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

async function audit(page) {
  await page.evaluate(axeSource);
  const axe = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  return axe.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    nodes: violation.nodes.length,
  }));
}

async function width(page) {
  return page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
}

const result = { requests: [], violations: {}, widths: {} };
const basic = "Basic " + Buffer.from(`päivystäjä:${token}`).toString("base64");
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  httpCredentials: { username: "operator", password: token },
  viewport: { width: 390, height: 844 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  page.on("request", (request) => result.requests.push(request.url()));
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));

  // The overview in Swedish: the alerting touchpoint's row stands out.
  await page.goto(`${base}/dashboard?lang=sv`, { waitUntil: "load" });
  await page.locator("#live[data-version]").waitFor({ state: "attached" });
  result.overview = {
    lang: await page.evaluate(() => document.documentElement.lang),
    title: await page.title(),
    alerting: await page.$$eval("tr.alerting", (rows) => rows.map((row) => row.dataset.touchpoint)),
    alertingText: await page.locator(`tr[data-touchpoint="${touchpoint}"]`).textContent(),
    names: await page.$$eval("tr[data-touchpoint] th a", (links) => links.map((a) => a.textContent)),
    alert: await page.locator("li.alert").first().textContent(),
  };
  result.widths.overview = await width(page);
  result.violations.overview = await audit(page);

  // A touchpoint's page, reached by its link.
  await page.locator(`tr[data-touchpoint="${touchpoint}"] th a`).click();
  await page.locator("#live[data-version]").waitFor({ state: "attached" });
  result.detail = { lang: await page.evaluate(() => document.documentElement.lang) };
  result.widths.detail = await width(page);
  result.violations.detail = await audit(page);

  // The alerts page, from the menu.
  await page.getByRole("navigation").getByRole("link", { name: "Larm" }).click();
  await page.waitForURL(/\/dashboard\/alerts/);
  const item = page.locator("li.alert").first();
  result.before = { state: await item.getAttribute("data-state"), text: await item.textContent() };
  result.widths.alerts = await width(page);
  result.violations.alerts = await audit(page);

  // A forged POST (no form token) from a script on another page is refused.
  const alertId = await item.getAttribute("data-alert-id");
  const forged = await fetch(`${base}/dashboard/alerts/${alertId}/ack`, {
    method: "POST",
    headers: { Authorization: basic, "Content-Type": "application/x-www-form-urlencoded" },
    body: "by=mallory&comment=forged",
  });
  result.forged = { status: forged.status, body: await forged.json() };

  // Acknowledge with a comment and an assignee, by the keyboard's own means.
  await item.getByLabel("Ansvarig person (valfritt)").fill("Tiimi A");
  await item.getByLabel("Kommentar").fill("Jonotilanne tarkistettu, lisää väkeä klo 13.");
  result.prefilled = await item.getByLabel("Kvitterat av").inputValue();
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    item.getByRole("button", { name: "Kvittera larmet" }).click(),
  ]);
  result.landed = page.url().replace(base, "");
  if (!result.landed.includes("#alert-")) {
    throw new Error(`the form led to ${result.landed}: ${await page.locator("body").textContent()}`);
  }
  const acked = page.locator(`li.alert[data-alert-id="${alertId}"]`);
  result.after = {
    state: await acked.getAttribute("data-state"),
    text: await acked.textContent(),
    section: await acked.evaluate((node) => node.closest("section").querySelector("h2").textContent),
  };
  result.violations.acknowledged = await audit(page);

  // Back on the overview, the acknowledged alert looks different there too.
  await page.goto(`${base}/dashboard?lang=fi`, { waitUntil: "load" });
  result.overviewAfter = {
    lang: await page.evaluate(() => document.documentElement.lang),
    state: await page.locator("li.alert").first().getAttribute("data-state"),
    text: await page.locator("li.alert").first().textContent(),
  };
  result.widths.overviewFi = await width(page);
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
