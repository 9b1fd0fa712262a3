/**
 * OWA in a real browser (docs/security.md "OWA in the browser"): Debian's Chromium signs every demo user in
 * at https://mail.o365info.com/owa/ with the keyboard only, follows the estate's redirects to the legacy or
 * regional namespace, signs in there a second time when the estate says so (that page says why), and ends
 * on the user's own mailbox page; no Content-Security-Policy violation and no console error on the way. A
 * wrong password shows the logon page with its message; after logoff, Back does not show the mailbox, and
 * no host of the estate still holds a session. One lab and one browser for the file, a context per user;
 * every wait is on a URL or an element, never on time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { traceFlow } from '../../src/core/routing/flow.ts';
import { owaSessionGroup } from '../../src/dataplane/owa-targets.ts';
import type { Lab } from '../../src/lab/index.ts';
import { demoPassword } from '../../src/lab/index.ts';
import { loggedLab } from '../support/logged-lab.ts';
import type { LabBrowser } from './chromium.ts';
import { launchForLab } from './chromium.ts';

const start = 'https://mail.o365info.com/owa/';
const logonPath = '/owa/auth/logon.aspx';

/** What went wrong in a page, as the page itself reported it. */
interface Trouble {
  readonly violations: string[];
  readonly consoleErrors: string[];
}

/** Where the estate says a user's OWA ends, for a browser outside: the host, the mailbox server, the hosts signed in at. */
interface Expected {
  readonly user: string;
  readonly host: string;
  readonly mailboxServer: string;
  readonly signIns: readonly string[];
}

/** The estate's own flow for `user` (core/routing/flow.ts): each redirect is one more host to sign in at. */
function expectedFor(lab: Lab, user: string): Expected {
  const flow = traceFlow(lab.index, { user, protocol: 'owa', client: 'external' });
  assert.equal(flow.outcome.kind, 'answered', `${user}: the estate answers OWA`);
  const redirects = flow.steps.filter((s) => s.kind === 'redirect' && s.url !== undefined);
  const signIns = [new URL(start).host, ...redirects.map((s) => new URL(s.url as string).host)];
  return {
    user,
    host: signIns.at(-1) as string,
    mailboxServer: flow.outcome.kind === 'answered' ? flow.outcome.by : '',
    signIns,
  };
}

/** A page whose CSP violations (the `securitypolicyviolation` event) and console errors are collected. */
async function watchedPage(context: BrowserContext): Promise<{ page: Page; trouble: Trouble }> {
  const trouble: Trouble = { violations: [], consoleErrors: [] };
  await context.exposeBinding('coexistReportViolation', (_source, text: unknown) => {
    trouble.violations.push(String(text));
  });
  // Injected by the browser itself (no page script runs: the pages' CSP allows none), on every document.
  // (Source text: the test is compiled without the DOM's types.)
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) =>
      window.coexistReportViolation(e.violatedDirective + ' blocked ' + e.blockedURI + ' on ' + document.URL));`,
  });
  // A deadline only bounds a failure; every wait is for a URL or an element.
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') trouble.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => trouble.consoleErrors.push(e.message));
  return { page, trouble };
}

/** Sign in with the keyboard only: the user name field has the focus, Tab to the password, Enter. */
async function signInWithKeyboard(page: Page, login: string, password: string): Promise<void> {
  await page.waitForSelector('form input#username');
  const focused = await page.evaluate<string | undefined>('document.activeElement?.id');
  assert.equal(focused, 'username', 'the logon page puts the focus in the user name field');
  await page.keyboard.type(login);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
}

const onLogonPage = (host: string) => (url: URL) => url.host === host && url.pathname === logonPath;
const onMailbox = (host: string) => (url: URL) => url.host === host && !url.pathname.startsWith('/owa/auth/');

describe('OWA in Chromium, through the front door and the legacy namespaces', () => {
  let lab: Lab;
  let chrome: LabBrowser;

  before(async () => {
    ({ lab } = await loggedLab());
    chrome = await launchForLab(lab);
  });
  after(async () => {
    await chrome?.close();
    await lab?.close();
  });

  /** Sign `user` in from the front door to their mailbox page, as the estate routes them; the page stays open. */
  async function signInAll(page: Page, e: Expected): Promise<void> {
    await page.goto(start);
    await page.waitForURL(onLogonPage(e.signIns[0] as string));
    for (const [i, host] of e.signIns.entries()) {
      if (i > 0) {
        await page.waitForURL(onLogonPage(host));
        // The second logon page says why it asks again: the mailbox is on another server, at this address.
        const why = await page.locator('#logon-reason').innerText();
        assert.match(why, /mailbox is on an older/i, `${e.user} at ${host}: ${why}`);
        assert.ok(why.includes(host), `${e.user}: the message names ${host}: ${why}`);
      } else {
        assert.equal(await page.locator('#logon-reason').count(), 0, 'the first logon page gives no reason');
      }
      await signInWithKeyboard(page, e.user, demoPassword);
    }
    await page.waitForURL(onMailbox(e.host));
    await page.waitForSelector('#user');
  }

  for (const user of ['alice', 'bob', 'carol', 'diego'].map((u) => `${u}@o365info.com`)) {
    test(`${user} signs in at the front door with the keyboard and reaches their own mailbox`, async () => {
      const e = expectedFor(lab, user);
      const context = await chrome.browser.newContext();
      try {
        const { page, trouble } = await watchedPage(context);
        await signInAll(page, e);
        assert.match(await page.locator('#user').innerText(), new RegExp(`<${user}>`));
        assert.match(
          await page.locator('#server').innerText(),
          new RegExp(`Mailbox server ${e.mailboxServer},`),
        );
        assert.equal(new URL(page.url()).host, e.host);
        if (user !== 'alice@o365info.com')
          assert.notEqual(e.host, new URL(start).host, 'a 2007 user moves on');
        assert.deepEqual(trouble.violations, [], 'no Content-Security-Policy violation');
        assert.deepEqual(trouble.consoleErrors, [], 'no console error');
      } finally {
        await context.close();
      }
    });
  }

  test('a wrong password shows the logon page again, with its message', async () => {
    const context = await chrome.browser.newContext();
    try {
      const { page, trouble } = await watchedPage(context);
      await page.goto(start);
      await signInWithKeyboard(page, 'bob@o365info.com', 'not-the-password');
      await page.waitForURL(
        (url) => onLogonPage('mail.o365info.com')(url) && url.searchParams.get('reason') === '2',
      );
      assert.match(await page.locator('#logon-reason[role="alert"]').innerText(), /isn't correct/);
      assert.equal(await context.cookies().then((c) => c.length), 0, 'no session');
      assert.deepEqual(trouble.violations, []);
      assert.deepEqual(trouble.consoleErrors, []);
    } finally {
      await context.close();
    }
  });

  test('logoff on the legacy namespace ends the session on every host, and Back does not show the mailbox', async () => {
    const e = expectedFor(lab, 'bob@o365info.com');
    assert.ok(e.signIns.length > 1, 'bob signs in at two hosts');
    const context = await chrome.browser.newContext();
    try {
      const { page, trouble } = await watchedPage(context);
      await signInAll(page, e);
      const again = await page.reload();
      assert.equal(again?.headers()['cache-control'], 'no-store', 'the mailbox page is not stored');
      const sessions = await context.cookies();
      assert.equal(sessions.length, e.signIns.length, 'a session cookie per host signed in at');

      const navigated: string[] = [];
      page.on('request', (r) => {
        if (r.isNavigationRequest()) navigated.push(new URL(r.url()).host);
      });
      await page.locator('#signout').press('Enter');
      await page.waitForURL((url) => onLogonPage(e.host)(url) && url.searchParams.get('reason') !== null);
      assert.match(await page.locator('#logon-reason').innerText(), /signed out/i);
      assert.deepEqual(await context.cookies(), [], 'every host cleared its cookie');
      // The chain went through every OWA host of the estate a browser outside reaches, and nowhere else.
      assert.deepEqual([...new Set(navigated)].sort(), owaSessionGroup(lab.index, e.host, 'external'));
      for (const host of e.signIns) assert.ok(navigated.includes(host), `the chain passed ${host}`);

      // Back: the mailbox page is asked for again (nothing was stored), and without a session it is the logon page.
      await page.goBack(); // resolves once what Back shows has loaded, redirects included
      assert.equal(await page.locator('#user').count(), 0, 'the mailbox is not shown');
      assert.ok(onLogonPage(e.host)(new URL(page.url())), page.url());
      await page.waitForSelector('form input#username');

      // The old session cookies put back: each host bob signed in at answers /owa/ with its logon page, so
      // the sessions ended on the servers, not only in this browser.
      await context.addCookies(sessions);
      for (const host of e.signIns) {
        await page.goto(`https://${host}/owa/`); // resolves once the redirects are followed and the page loaded
        assert.ok(onLogonPage(host)(new URL(page.url())), `${host}: ${page.url()}`);
        await page.waitForSelector('form input#username');
      }
      assert.deepEqual(trouble.violations, []);
      assert.deepEqual(trouble.consoleErrors, []);
    } finally {
      await context.close();
    }
  });
});
