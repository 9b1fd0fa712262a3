/**
 * The certificates a server has in use (its listeners' certificates and their chains, its client
 * certificate, the CAs it trusts for its next hops) and how near each is to expiry: what the expiry gauge,
 * the start-up warnings and `coexist status` show (docs/operations.md "Certificates").
 */
import type { Logger } from './log.ts';

/** What a certificate is used for here. */
export type CertificateUse =
  /** Served by a listener (`--cert`), chosen by SNI. */
  | 'listener'
  /** An intermediate CA certificate served after a listener's certificate. */
  | 'chain'
  /** This server's client certificate on its hops (`--client-cert`). */
  | 'client'
  /** A CA trusted for the next hops' certificates (`--ca`). */
  | 'ca'
  /** The estate's internal CA (`--internal-ca`). */
  | 'internal-ca';

/** One certificate in use. */
export interface CertificateInUse {
  readonly use: CertificateUse;
  /** The subject's common name, else the whole subject on one line. */
  readonly subject: string;
  /** The host names it is served for (listener, chain), or names (client); empty for a CA. */
  readonly hosts: readonly string[];
  /** The file it was read from. */
  readonly file: string;
  readonly notAfter: Date;
}

/** A certificate expiring within this many days is warned about at start and marked in `coexist status`. */
export const expiryWarningDays = 30;

const dayMs = 24 * 60 * 60 * 1000;

/** A certificate as `GET /status` reports it. */
export interface CertificateStatus {
  readonly use: CertificateUse;
  readonly subject: string;
  readonly hosts: readonly string[];
  readonly file: string;
  /** ISO 8601. */
  readonly notAfter: string;
  /** Whole days left (negative once expired). */
  readonly daysLeft: number;
  /** `expiring`: within `expiryWarningDays`. */
  readonly state: 'ok' | 'expiring' | 'expired';
}

/** Each certificate's expiry state at `now`, soonest to expire first. */
export function certificateStatus(
  certificates: readonly CertificateInUse[],
  now: Date = new Date(),
): CertificateStatus[] {
  return [...certificates]
    .sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime())
    .map((c) => {
      const leftMs = c.notAfter.getTime() - now.getTime();
      return {
        use: c.use,
        subject: c.subject,
        hosts: [...c.hosts],
        file: c.file,
        notAfter: c.notAfter.toISOString(),
        daysLeft: Math.floor(leftMs / dayMs),
        state: leftMs <= 0 ? 'expired' : leftMs <= expiryWarningDays * dayMs ? 'expiring' : 'ok',
      };
    });
}

/**
 * One log line per certificate that needs attention: `error` for an expired one (a CA of a bundle: the
 * others still serve), `warn` for one expiring within `expiryWarningDays`.
 */
export function logCertificateExpiry(
  logger: Logger,
  certificates: readonly CertificateInUse[],
  now: Date = new Date(),
): void {
  for (const c of certificateStatus(certificates, now)) {
    if (c.state === 'ok') continue;
    const fields = {
      use: c.use,
      subject: c.subject,
      hosts: c.hosts,
      file: c.file,
      notAfter: c.notAfter,
      daysLeft: c.daysLeft,
    };
    if (c.state === 'expired') logger.error(fields, 'certificate: expired');
    else logger.warn(fields, `certificate: expires within ${expiryWarningDays} days`);
  }
}
