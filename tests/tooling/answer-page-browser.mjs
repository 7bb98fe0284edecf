// Open an answer page as a citizen on a phone (390 px wide) and report what it shows.
//
// Usage: node answer-page-browser.mjs URL USER_DATA_DIR
// Prints one JSON object: the page language, the question (the scale's legend),
// the scale's hint, the pressed score, the status line, who asks (organisation
// and service), the privacy link, whether the page scrolls sideways, and
// axe-core's WCAG 2.1 A/AA violations.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [url, userDataDir] = process.argv.slice(2);
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
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  viewport: { width: 390, height: 844 },
});
const result = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
  const response = await page.goto(url, { waitUntil: "load" });
  result.status = response.status();
  result.lang = await page.evaluate(() => document.documentElement.lang);
  result.question = (await page.textContent("#vote-form legend"))?.trim();
  result.hint = (await page.textContent("#scale-hint"))?.trim();
  result.scores = await page.$$eval("button.score", (buttons) => buttons.map((b) => b.value));
  result.pressed = await page
    .locator('button.score[aria-pressed="true"]')
    .evaluateAll((buttons) => buttons.map((b) => b.value));
  result.statusLine = (await page.textContent("#status"))?.trim();
  result.organisation = (await page.textContent("header .organisation"))?.trim();
  result.service = (await page.locator("header .service").allTextContents()).map((t) => t.trim());
  const privacy = page.locator("footer a");
  result.privacy = (await privacy.count()) ? { href: await privacy.getAttribute("href"), text: (await privacy.textContent())?.trim() } : null;
  result.sideways = await page.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
  );
  await page.evaluate(axeSource);
  const axe = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  result.violations = axe.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result));
