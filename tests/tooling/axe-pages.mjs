// Check pages with axe-core in Debian's Chromium: node axe-pages.mjs USER_DATA_DIR URL...
// Prints [{url, status, lang, violations: [{id, impact, help, nodes}]}] as JSON.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [userDataDir, ...urls] = process.argv.slice(2);
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
});
const results = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  for (const url of urls) {
    const response = await page.goto(url, { waitUntil: "load" });
    await page.evaluate(axeSource);
    const axe = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
    );
    results.push({
      url,
      status: response.status(),
      lang: await page.evaluate(() => document.documentElement.lang),
      violations: axe.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length })),
    });
  }
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(results));
