// Open the console's breakdowns and statements pages as an operator, at 1280 px and at
// 390 px, and check each with axe-core and for sideways scrolling.
//
// Usage: node console-browser.mjs USER_DATA_DIR TOKEN URL...
// Prints [{url, width, status, lang, title, scrollWidth, clientWidth, text, violations}]
// as JSON.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [userDataDir, token, ...urls] = process.argv.slice(2);
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
  httpCredentials: { username: "operator", password: token },
});
const results = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    for (const url of urls) {
      const response = await page.goto(url, { waitUntil: "load" });
      await page.evaluate(axeSource);
      const axe = await page.evaluate(async () =>
        // eslint-disable-next-line no-undef
        axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
      );
      const size = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      }));
      results.push({
        url,
        width,
        status: response.status(),
        lang: await page.evaluate(() => document.documentElement.lang),
        title: await page.title(),
        text: await page.evaluate(() => document.body.innerText),
        ...size,
        violations: axe.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length })),
      });
    }
  }
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(results));
