// Drive Debian's Chromium through the operations dashboard as an operator would,
// then check the pages with axe-core.
//
// Usage: node dashboard-browser.mjs BASE_URL TOKEN LATE_TOUCHPOINT SCREENSHOT USER_DATA_DIR
// Prints "loaded" on the first line once the overview is live (the test then
// publishes LATE_TOUCHPOINT's figures), and one JSON object on the second line:
// the refused status, the rows, the alerts, the late row, axe-core's violations
// and every URL the pages requested.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [base, token, late, screenshot, userDataDir] = process.argv.slice(2);
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

const result = { requests: [], violations: {} };
// Without the credential: what a passer-by gets.
result.refused = (await fetch(`${base}/dashboard`)).status;

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  httpCredentials: { username: "operator", password: token },
  viewport: { width: 1400, height: 900 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // Waits end when the page is ready; two minutes hold on a busy 2-core machine.
  page.setDefaultTimeout(120_000);
  page.on("request", (request) => result.requests.push(request.url()));
  page.on("console", (message) => process.stderr.write(`console: ${message.text()}\n`));
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
  await page.goto(`${base}/dashboard?lang=en`, { waitUntil: "load" });
  // The script has connected to the event stream once it marks the version.
  await page.locator("#live[data-version]").waitFor({ state: "attached" });
  result.lang = await page.evaluate(() => document.documentElement.lang);
  result.title = await page.title();
  result.rows = await page.$$eval("tr[data-touchpoint]", (rows) =>
    rows.map((row) => ({
      touchpoint: row.dataset.touchpoint,
      text: row.textContent,
      cells: [...row.querySelectorAll("td[data-window]")].map((cell) => ({
        window: cell.dataset.window,
        count: cell.dataset.count,
        mean: cell.dataset.mean,
        csat: cell.dataset.csat,
        text: cell.textContent,
      })),
    })),
  );
  result.alerts = await page.$$eval("li.alert", (items) =>
    items.map((item) => ({ id: item.dataset.alertId, classes: item.className, text: item.textContent })),
  );
  await page.screenshot({ path: screenshot, fullPage: true });
  result.violations.overview = await audit(page);

  process.stdout.write("loaded\n");
  const lateRow = page.locator(`tr[data-touchpoint="${late}"]`);
  await lateRow.waitFor();
  result.late = await lateRow.textContent();

  await page.getByRole("link", { name: /Puhelinpalvelu/ }).click();
  await page.locator("#live[data-version]").waitFor({ state: "attached" });
  const chart = page.locator("figure.chart img");
  await page.waitForFunction(() => {
    const image = document.querySelector("figure.chart img");
    return image && image.complete && image.naturalWidth > 0;
  });
  result.detail = {
    title: await page.title(),
    alerts: await page.locator("li.alert").count(),
    chart: { loaded: true, src: await chart.getAttribute("src") },
    ranges: await page.$$eval("nav.range-picker a", (links) =>
      links.map((link) => link.textContent),
    ),
    markers: await page.$$eval("ul.markers li", (items) =>
      items.map((item) => [item.classList[1], item.dataset.alertId]),
    ),
    rows: await page.locator("table.buckets tbody tr").count(),
  };
  result.violations.detail = await audit(page);

  // The keyboard reaches the range links: four weeks, per day.
  const month = page.getByRole("link", { name: "28 days" });
  await month.focus();
  await page.keyboard.press("Enter");
  await page.waitForURL(/range=28d/);
  await page.locator("#live[data-version]").waitFor({ state: "attached" });
  const cellsOf = (row) => [...row.cells].map((cell) => cell.textContent);
  result.month = {
    rows: await page.locator("table.buckets tbody tr").count(),
    first: await page.locator("table.buckets tbody tr").first().evaluate(cellsOf),
    last: await page.locator("table.buckets tbody tr").last().evaluate(cellsOf),
    figures: {
      current: await page.locator('tr[data-period="current"]').evaluate(cellsOf),
      previous: await page.locator('tr[data-period="previous"]').evaluate(cellsOf),
    },
  };
  result.violations.month = await audit(page);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-touchpoint.png"), fullPage: true });

  // A phone's width: the page never scrolls sideways (tables scroll in their own region).
  result.overflow = {};
  for (const width of [1400, 390]) {
    await page.setViewportSize({ width, height: 900 });
    result.overflow[width] = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
  }
  result.violations.narrow = await audit(page);
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
