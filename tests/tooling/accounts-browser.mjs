// Drive Debian's Chromium through sign-in with an OpenID Connect provider, as a
// viewer, an operator and an admin in turn, on a 390 px wide screen.
//
// Usage: node accounts-browser.mjs BASE_URL TOUCHPOINT NEW_QUESTION USER_DATA_DIR
// The provider's own form asks for the subject; the test has given each
// subject their claims. Prints one JSON object: what each person could do
// and saw, each page's width, axe-core's violations per page of ours, and the
// URLs requested from our service.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [base, touchpoint, newQuestion, userDataDir] = process.argv.slice(2);
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

// Open a page of ours; without a session it leads to the provider's form,
// where the person names their subject; the provider sends them back.
async function signIn(page, path, subject) {
  await page.goto(`${base}${path}`, { waitUntil: "load" });
  await page.locator('input[name="sub"]').fill(subject);
  await Promise.all([
    page.waitForURL((url) => url.href.startsWith(base) && !url.pathname.startsWith("/auth/")),
    page.locator('button[type="submit"]', { hasText: "Authorize" }).click(),
  ]);
}

async function signOut(page) {
  await Promise.all([
    page.waitForURL(/\/signin\/done/),
    page.locator("form.account button").click(),
  ]);
}

const result = { requests: [], violations: {}, widths: {} };
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  viewport: { width: 390, height: 844 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  page.on("request", (request) => {
    if (request.url().startsWith(base)) result.requests.push(request.url());
  });
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));

  // The viewer reads the alerts but may not acknowledge one.
  await signIn(page, "/dashboard/alerts?lang=en", "viewer-1");
  result.viewer = { landed: page.url().replace(base, ""), account: await page.locator("form.account").textContent() };
  result.widths.alertsViewer = await width(page);
  result.violations.alertsViewer = await audit(page);
  const item = page.locator("li.alert").first();
  await item.getByLabel("Comment").fill("Katsoin tämän.");
  const [refused] = await Promise.all([
    page.waitForResponse((response) => response.request().method() === "POST"),
    item.getByRole("button", { name: "Acknowledge alert" }).click(),
  ]);
  result.viewer.ackStatus = refused.status();
  await page.waitForLoadState("load");
  result.viewer.refusedPage = await page.locator("main").textContent();
  result.violations.refused = await audit(page);
  await page.goto(`${base}/dashboard/alerts?lang=en`, { waitUntil: "load" });
  result.viewer.stateAfter = await page.locator("li.alert").first().getAttribute("data-state");
  await signOut(page);
  result.signedOut = await page.locator("main").textContent();
  result.violations.signedOut = await audit(page);

  // The operator acknowledges it; the alert shows their name from the sign-in.
  await signIn(page, "/dashboard/alerts?lang=en", "operator-1");
  const operatorItem = page.locator("li.alert").first();
  await operatorItem.getByLabel("Comment").fill("Jonotilanne tarkistettu.");
  await Promise.all([
    page.waitForURL(/#alert-/),
    operatorItem.getByRole("button", { name: "Acknowledge alert" }).click(),
  ]);
  const acked = page.locator("li.alert").first();
  result.operator = {
    state: await acked.getAttribute("data-state"),
    text: await acked.textContent(),
    account: await page.locator("form.account").textContent(),
  };
  result.violations.alertsOperator = await audit(page);
  // The operator is no admin.
  const adminRefused = await page.goto(`${base}/admin?lang=en`, { waitUntil: "load" });
  result.operator.adminStatus = adminRefused.status();
  await page.goto(`${base}/dashboard?lang=en`, { waitUntil: "load" });
  await signOut(page);

  // The admin changes the English question and previews it before saving.
  await signIn(page, "/admin?lang=en", "admin-1");
  result.admin = { landed: page.url().replace(base, "") };
  result.widths.admin = await width(page);
  result.violations.admin = await audit(page);
  await Promise.all([
    page.waitForURL(/\/admin\/touchpoints\//),
    page.locator(`li[data-touchpoint="${touchpoint}"] a`).click(),
  ]);
  result.widths.edit = await width(page);
  result.violations.edit = await audit(page);
  result.admin.smsBefore = await page.locator('section.preview[data-language="en"] pre.sms').textContent();
  await page.getByLabel("Question (English)").fill(newQuestion);
  await Promise.all([
    page.waitForURL(/\/preview/),
    page.getByRole("button", { name: "Preview" }).click(),
  ]);
  const english = page.locator('section.preview[data-language="en"]');
  result.admin.preview = {
    sms: await english.locator("pre.sms").textContent(),
    segments: await english.locator(".segments").textContent(),
    segmentCount: await english.locator(".segments").getAttribute("data-segments"),
    email: await english.locator("pre.email").textContent(),
    page: await english.locator("div.page").textContent(),
    finnishSms: await page.locator('section.preview[data-language="fi"] pre.sms').textContent(),
    swedishSegments: await page.locator('section.preview[data-language="sv"] .segments').textContent(),
    reminderSms: await english.locator("pre.reminder").textContent(),
    reminderSegments: await english.locator(".reminder-segments").textContent(),
  };
  result.widths.preview = await width(page);
  result.violations.preview = await audit(page);
  await page.getByLabel("Reason for the change (shown in the history)").fill("Shorter question");
  await Promise.all([
    page.waitForURL(/saved=1/),
    page.getByRole("button", { name: "Save" }).click(),
  ]);
  result.admin.saved = await page.locator('[role="status"]').first().textContent();
  result.admin.history = await page.locator("ol.history li").first().textContent();
  result.admin.question = await page.getByLabel("Question (English)").inputValue();
  result.violations.saved = await audit(page);
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
