// Take the dashboard's screenshots for docs/dashboard.md from a running
// `palaute demo` once its drop alert has fired: the overview and the degraded
// touchpoint's console in Finnish at 1280 px and 390 px, then acknowledge the
// alert with a comment from the alerts page and take that page too.
//
// Usage: node dashboard-screenshots.mjs BASE_URL TOKEN [OUT_DIR] [TOUCHPOINT] [RANGE]
//   OUT_DIR defaults to docs/img, TOUCHPOINT to phone-service, RANGE to 24h.
// Prints one JSON object: the files written and what the pages showed.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, token, outDir = "docs/img", touchpoint = "phone-service", range = "24h"] =
  process.argv.slice(2);
if (!base || !token) {
  process.stderr.write("usage: node dashboard-screenshots.mjs BASE_URL TOKEN [OUT_DIR] [TOUCHPOINT] [RANGE]\n");
  process.exit(2);
}
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
const WIDTHS = [1280, 390];
mkdirSync(outDir, { recursive: true });
const userDataDir = mkdtempSync(join(tmpdir(), "dashboard-shots-"));
const result = { files: [] };

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  httpCredentials: { username: "päivystäjä", password: token },
  viewport: { width: WIDTHS[0], height: 900 },
  deviceScaleFactor: 1,
  locale: "fi-FI",
  timezoneId: "Europe/Helsinki",
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));

  async function shoot(path, name) {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width > 600 ? 900 : 844 });
      await page.goto(`${base}${path}`, { waitUntil: "load" });
      await page.locator("#live[data-version]").waitFor({ state: "attached" });
      // The chart is an image of its own: wait until every image has loaded.
      await page.waitForFunction(() => [...document.images].every((img) => img.complete));
      const file = join(outDir, `${name}-${width}.png`);
      await page.screenshot({ path: file, fullPage: true });
      result.files.push(file);
    }
  }

  await shoot("/dashboard?lang=fi", "dashboard-overview-fi");
  result.alerting = await page.$$eval("tr.alerting", (rows) => rows.map((row) => row.dataset.touchpoint));
  await shoot(`/dashboard/touchpoints/${touchpoint}?range=${range}&lang=fi`, "dashboard-touchpoint-fi");
  // The alert moments the chart marks, as listed under it.
  result.markers = await page.$$eval("ul.markers li", (items) =>
    items.map((item) => ({ kind: item.className, text: item.textContent.trim() })),
  );

  // Acknowledge the touchpoint's drop alert with a comment and an assignee.
  await page.setViewportSize({ width: WIDTHS[0], height: 900 });
  await page.goto(`${base}/dashboard/alerts?lang=fi`, { waitUntil: "load" });
  const item = page.locator(`li.alert[data-state="firing"]`, { hasText: "Keskiarvo laski" }).first();
  const alertId = await item.getAttribute("data-alert-id");
  result.alert = { id: alertId, before: await item.getAttribute("data-state") };
  await item.getByLabel("Vastuuhenkilö (valinnainen)").fill("Neuvonnan tiimi");
  await item.getByLabel("Kommentti").fill("Jonot tarkistettu, iltapäivään lisätään kaksi neuvojaa.");
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    item.getByRole("button", { name: "Kuittaa hälytys" }).click(),
  ]);
  const acked = page.locator(`li.alert[data-alert-id="${alertId}"]`);
  result.alert.after = await acked.getAttribute("data-state");
  result.alert.text = (await acked.textContent()).replace(/\s+/g, " ").trim();
  const file = join(outDir, "dashboard-alerts-acknowledged-fi-1280.png");
  await page.screenshot({ path: file, fullPage: true });
  result.files.push(file);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(result)}\n`);
