// Drive Debian's Chromium through a one-tap page as a citizen would, then check it with axe-core.
//
// Usage: node one-tap-browser.mjs URL NEW_SCORE COMMENT SCREENSHOT USER_DATA_DIR
// Prints one JSON object: the page language, the status messages seen, the
// final pressed button, axe-core's violations and every URL the page requested.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [url, newScore, comment, screenshot, userDataDir] = process.argv.slice(2);
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

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
});
const result = { requests: [], statuses: [] };
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // Waits end when the page is ready; two minutes hold on a busy 2-core machine.
  page.setDefaultTimeout(120_000);
  page.on("request", (request) => result.requests.push(request.url()));
  page.on("console", (message) => process.stderr.write(`console: ${message.text()}\n`));
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
  page.on("response", (response) =>
    process.stderr.write(`${response.status()} ${response.request().method()} ${response.url()}\n`),
  );
  await page.goto(url, { waitUntil: "load" });
  result.lang = await page.evaluate(() => document.documentElement.lang);
  result.title = await page.title();
  // The page's script posts the score of the link by itself.
  // (Locators, not waitForFunction: the page's CSP forbids the eval that needs.)
  await page.locator("#status").filter({ hasText: /\S/ }).waitFor();
  result.statuses.push(await page.textContent("#status"));
  // A person takes a moment before changing their mind.
  await page.waitForTimeout(2500);
  await page.getByRole("button", { name: `Arvosana ${newScore} /` }).click();
  await page.locator(`#vote-form[data-voted="${newScore}"]`).waitFor({ state: "attached" });
  result.statuses.push(await page.textContent("#status"));
  result.pressed = await page.getAttribute('button.score[aria-pressed="true"]', "value");
  await page.getByLabel(/kertoa lisää/).fill(comment);
  await page.keyboard.press("Tab");
  await page.getByRole("button", { name: /Lähetä kommentti/ }).press("Enter");
  await page.locator('#comment-form[data-sent="true"]').waitFor({ state: "attached" });
  result.statuses.push(await page.textContent("#status"));
  // Keyboard: every score button takes focus and shows it.
  await page.focus('button.score[value="1"]');
  result.focusOutline = await page.evaluate(
    () => getComputedStyle(document.activeElement).outlineStyle,
  );
  await page.screenshot({ path: screenshot, fullPage: true });
  const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const axe = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  result.violations = axe.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    nodes: violation.nodes.length,
  }));
  result.passes = axe.passes.length;
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result));
