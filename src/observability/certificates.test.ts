/** The expiry state of certificates in use, against an explicit clock (docs/operations.md "Certificates"). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CertificateInUse } from './certificates.ts';
import { certificateStatus, expiryWarningDays, logCertificateExpiry } from './certificates.ts';
import { createLogger } from './log.ts';

const dayMs = 24 * 60 * 60 * 1000;
const now = new Date('2026-06-01T00:00:00Z');
const cert = (subject: string, leftMs: number): CertificateInUse => ({
  use: 'listener',
  subject,
  hosts: [`${subject}.contoso.com`],
  file: `/etc/coexist/${subject}.pfx`,
  notAfter: new Date(now.getTime() + leftMs),
});

describe('certificateStatus', () => {
  test('ok beyond 30 days, expiring within them (the 30th day included), expired at notAfter; soonest first', () => {
    const list = [
      cert('later', expiryWarningDays * dayMs + 1),
      cert('edge', expiryWarningDays * dayMs),
      cert('gone', 0),
      cert('long-gone', -3 * dayMs - 1),
    ];
    assert.deepEqual(
      certificateStatus(list, now).map((c) => [c.subject, c.state, c.daysLeft]),
      [
        ['long-gone', 'expired', -4],
        ['gone', 'expired', 0],
        ['edge', 'expiring', 30],
        ['later', 'ok', 30],
      ],
    );
    assert.equal(certificateStatus(list, now)[3]?.notAfter, '2026-07-01T00:00:00.001Z');
  });
});

describe('logCertificateExpiry', () => {
  test('one error line per expired certificate, one warn line per expiring one, none for the rest', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    });
    logCertificateExpiry(
      logger,
      [cert('fine', 90 * dayMs), cert('soon', 3 * dayMs), cert('gone', -dayMs)],
      now,
    );
    assert.deepEqual(
      lines.map((l) => [l['level'], l['msg'], l['subject'], l['daysLeft'], l['file']]),
      [
        [50, 'certificate: expired', 'gone', -1, '/etc/coexist/gone.pfx'],
        [40, 'certificate: expires within 30 days', 'soon', 3, '/etc/coexist/soon.pfx'],
      ],
    );
  });
});
