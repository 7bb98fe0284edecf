// Answer a survey page and its follow-up statements in Debian's Chromium, then check with axe-core.
//
// Usage: node statements-browser.mjs URL SCORE_LABEL STATEMENT OPTION USER_DATA_DIR
// Taps the score button named SCORE_LABEL, waits for the statements, picks
// OPTION in the radio group named STATEMENT (by keyboard), sends them and
// prints one JSON object: whether the statements were hidden before the vote,
// the status messages seen, and axe-core's violations with the statements shown.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [url, scoreLabel, statement, option, userDataDir] = process.argv.slice(2);
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
const result = { statuses: [] };
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // Waits end when the page is ready; two minutes hold on a busy 2-core machine.
  page.setDefaultTimeout(120_000);
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
  await page.goto(url, { waitUntil: "load" });
  result.lang = await page.evaluate(() => document.documentElement.lang);
  result.hiddenBeforeVote = !(await page.locator("#statements").isVisible());
  await page.getByRole("button", { name: scoreLabel }).click();
  await page.locator("#statements").waitFor({ state: "visible" });
  result.statuses.push(await page.textContent("#status"));
  // Keyboard only: focus the group's first radio button, then arrow to the option.
  const group = page.getByRole("group", { name: statement });
  await group.getByRole("radio").first().focus();
  await page.keyboard.press("Space");
  const radios = group.getByRole("radio");
  const labels = await radios.evaluateAll((inputs) => inputs.map((input) => input.labels[0].textContent.trim()));
  for (let index = 1; index <= labels.indexOf(option); index += 1) {
    await page.keyboard.press("ArrowDown");
  }
  result.checked = await group.getByRole("radio", { name: option, exact: true }).isChecked();
  result.focusOutline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  await page.getByRole("button", { name: /Skicka svaren|Lähetä vastaukset|Send answers/ }).click();
  await page.locator('#statements-form[data-sent="true"]').waitFor({ state: "attached" });
  result.statuses.push(await page.textContent("#status"));
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
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result));
