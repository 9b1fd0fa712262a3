/** A seeded or delivered message as RFC 5322 text (UTF-8, CRLF). */
import { randomUUID } from 'node:crypto';
import type { SogoMessage } from './types.ts';

/** An RFC 5322 date in UTC, e.g. `Tue, 01 Dec 2026 22:14:00 +0000`. */
function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

// eslint-disable-next-line no-control-regex
const nonAscii = /[^\x00-\x7f]/;

/**
 * The message as RFC 5322 text: From, To, Subject (RFC 2047 encoded when not ASCII), Date, Message-ID and a
 * text/plain UTF-8 body; line breaks become CRLF. A string is taken as a whole message, only its bare LFs
 * become CRLF.
 */
export function renderSogoMessage(message: SogoMessage | string, now: Date = new Date()): string {
  if (typeof message === 'string') return message.replace(/\r?\n/g, '\r\n');
  for (const field of ['from', 'to', 'subject'] as const) {
    if (/[\r\n]/.test(message[field]))
      throw new Error(`message ${field} must be one line: ${JSON.stringify(message[field])}`);
  }
  const subject = nonAscii.test(message.subject)
    ? `=?UTF-8?B?${Buffer.from(message.subject, 'utf8').toString('base64')}?=`
    : message.subject;
  const body = message.body.replace(/\r?\n/g, '\r\n');
  return [
    `From: ${message.from}`,
    `To: ${message.to}`,
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomUUID()}@coexist.lab>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${nonAscii.test(body) ? '8bit' : '7bit'}`,
    '',
    body.endsWith('\r\n') ? body : `${body}\r\n`,
  ].join('\r\n');
}
