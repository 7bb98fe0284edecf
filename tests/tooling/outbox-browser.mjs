// Open the demo's outbox, open a survey email from it and answer it, as a newcomer would.
//
// Usage: node outbox-browser.mjs OUTBOX_URL SCORE USER_DATA_DIR
// Prints one JSON object: the outbox's title, axe-core's WCAG 2.1 A/AA violations
// on it, whether it scrolls sideways at 390 px, the email's subject as linked,
// and the answer page's status lines after the score link and after the tap.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [outboxUrl, score, userDataDir] = process.argv.slice(2);
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
const result = { statuses: [] };
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
  await page.goto(outboxUrl, { waitUntil: "load" });
  result.title = await page.title();
  result.sideways = await page.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
  );
  await page.evaluate(axeSource);
  const axe = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  result.violations = axe.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  const email = page.locator('a[href^="/mail/"]').first();
  result.subject = (await email.textContent())?.trim();
  await email.click();
  await page.waitForLoadState("load");
  // The score link as the email shows it: its text starts with the score.
  await page.getByRole("link", { name: new RegExp(`^${score}( |$)`) }).first().click();
  await page.waitForLoadState("load");
  await page.locator("#status").filter({ hasText: /\S/ }).waitFor();
  result.statuses.push(await page.textContent("#status"));
  await page.waitForTimeout(2500); // a person reads before tapping
  await page.getByRole("button", { name: new RegExp(`^\\S+ ${score} /`) }).click();
  await page.locator("#status").filter({ hasText: /tallennettu|sparats|saved/ }).waitFor();
  result.statuses.push(await page.textContent("#status"));
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result));
