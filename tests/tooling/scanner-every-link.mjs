// Load every link of a survey email in order, as a mail scanner that runs JavaScript does.
//
// Usage: node scanner-every-link.mjs USER_DATA_DIR PAUSE_MS URL...
// Nothing is clicked: each link is loaded in the same tab with JavaScript on, the
// page's own script is given time to do whatever it does by itself (a score page
// posts its score), then the next link follows after PAUSE_MS.
// Prints one JSON array: per link, the HTTP status, whether the page voted by
// itself and the status text it showed.
import { chromium } from "playwright-core";

const [userDataDir, pauseMs, ...urls] = process.argv.slice(2);
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
  javaScriptEnabled: true,
  args: FLAGS,
});
const results = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // A busy 2-core machine: every load and the page's own POST may take long.
  page.setDefaultTimeout(120000);
  page.setDefaultNavigationTimeout(120000);
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
  for (const url of urls) {
    const response = await page.goto(url, { waitUntil: "load" });
    const result = { url, status: response ? response.status() : null, autoVoted: false, text: "" };
    const auto = await page.locator("#vote-form[data-auto-score]").count();
    if (auto > 0) {
      // The page posts its score by itself; wait until that POST has been answered.
      await page.locator("#vote-form[data-voted]").waitFor({ state: "attached" });
      result.autoVoted = true;
      result.text = (await page.textContent("#status")) ?? "";
    }
    results.push(result);
    await page.waitForTimeout(Number(pauseMs));
  }
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(results));
