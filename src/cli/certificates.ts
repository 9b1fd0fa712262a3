/**
 * `coexist serve --cert` and `--ca`: the listeners' certificates and the next hops' CA bundle, read and
 * checked at start (and at each reload), so that a wrong file stops the server with the file and what is
 * wrong with it instead of every client failing its TLS handshake later (docs/operations.md "Certificates").
 *
 * `--cert HOSTS=FILE[,SECOND]`, the kind of FILE told by its content:
 * - PEM: the server's certificate first, then its intermediates (served as the chain); SECOND is the key
 *   file, or the key is in FILE itself;
 * - PKCS#12 (`.pfx`, as `Export-ExchangeCertificate` writes it): SECOND is a file holding its password
 *   (never on the command line, where `ps` shows it; one trailing newline ignored). Exchange's exports protect
 *   certificates with RC2-40 and keys with 3DES (older Windows) or AES-256; Node's OpenSSL 3 reads the former
 *   only with its legacy provider, so every PFX is read with node-forge and handed to the listener as PEM.
 */
import type { KeyObject } from 'node:crypto';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import forge from 'node-forge';
import type { CertificateEntry } from '../dataplane/index.ts';
import type { CertificateInUse, CertificateStatus } from '../observability/certificates.ts';
import { certificateStatus, expiryWarningDays, logCertificateExpiry } from '../observability/certificates.ts';
import type { LifecycleObserver } from '../observability/lifecycle-metrics.ts';
import type { Logger } from '../observability/log.ts';
import type { Metrics } from '../observability/metrics.ts';
import { usage } from './common.ts';
import type { InternalPki } from './internal-pki.ts';

/** What the listeners get, and what the expiry gauge and `coexist status` show. */
export interface ListenerCertificates {
  readonly entries: readonly CertificateEntry[];
  readonly inUse: readonly CertificateInUse[];
}

/** The next hops' CA bundle (`--ca`): its certificates (PEM) and what the expiry gauge shows. */
export interface CaBundle {
  readonly pems: readonly string[];
  readonly inUse: readonly CertificateInUse[];
}

const serverAuthOid = '1.3.6.1.5.5.7.3.1';
const anyExtendedKeyUsageOid = '2.5.29.37.0';
const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const pemPrivateKey =
  /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

interface Loaded {
  /** The server's certificate, then its intermediates, in the order they are served. */
  readonly chain: readonly X509Certificate[];
  readonly key: KeyObject;
}

/**
 * The certificates a running `serve` has in use: the listeners' (as loaded at start, then as each reload that
 * was swapped in loaded them) and the others (`--client-cert`, `--internal-ca`, `--ca`, read at start only).
 * Each change sets the expiry gauge and logs what is expired or expiring; `status()` is `GET /status`'s
 * `certificates`.
 */
export class CertificatesInUse {
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #others: readonly CertificateInUse[];
  #all: readonly CertificateInUse[] = [];

  constructor(metrics: Metrics, logger: Logger, others: readonly CertificateInUse[]) {
    this.#metrics = metrics;
    this.#logger = logger;
    this.#others = others;
  }

  /** These listener certificates are in use now. */
  use(listeners: readonly CertificateInUse[]): void {
    this.#all = [...listeners, ...this.#others];
    this.#metrics.setCertificates(this.#all);
    logCertificateExpiry(this.#logger, this.#all);
  }

  /** `observer`, and after each reload swapped in, the listener certificates it loaded (`lastLoaded()`) in use. */
  following(observer: LifecycleObserver, lastLoaded: () => readonly CertificateInUse[]): LifecycleObserver {
    return {
      ...observer,
      reload: (result, generation) => {
        observer.reload(result, generation);
        if (result === 'ok') this.use(lastLoaded());
      },
      draining: () => observer.draining(),
    };
  }

  /** Each certificate's expiry state now, soonest first. */
  status(now: Date = new Date()): CertificateStatus[] {
    return certificateStatus(this.#all, now);
  }
}

/**
 * Read and check every `--cert HOSTS=FILE[,SECOND]`; the first problem is a usage error naming its file.
 * `passwordFile` (`--cert-password-file`) is the password of every PFX given without a password file of its own.
 */
export async function loadListenerCertificates(
  specs: readonly string[],
  passwordFile?: string,
  now: Date = new Date(),
): Promise<ListenerCertificates> {
  const entries: CertificateEntry[] = [];
  const inUse: CertificateInUse[] = [];
  for (const spec of specs) {
    const m = /^([^=]+)=([^,]+)(?:,(.+))?$/.exec(spec);
    const hosts = (m?.[1] ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== '');
    if (!m || hosts.length === 0)
      throw usage(`--cert ${spec}: expected hosts=cert.pem,key.pem or hosts=site.pfx,password.txt`);
    const file = m[2] as string;
    const second = m[3];
    const bytes = await readBytes(file);
    const loaded = bytes.includes('-----BEGIN')
      ? await fromPem(file, bytes.toString('utf8'), second)
      : await fromPkcs12(file, bytes, second ?? passwordFile);
    check(file, loaded, hosts, now);
    const [leaf, ...intermediates] = loaded.chain as [X509Certificate, ...X509Certificate[]];
    entries.push({
      hosts,
      certPem: loaded.chain.map((c) => c.toString()).join(''),
      keyPem: loaded.key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });
    inUse.push(certificateInUse('listener', leaf, hosts, file));
    for (const c of intermediates) inUse.push(certificateInUse('chain', c, hosts, file));
  }
  return { entries, inUse };
}

/**
 * Read `--ca`: PEM certificates the next hops' certificates may chain to, besides Node's bundle (a private
 * CA, or a 2007 CAS's self-signed certificate). An expired one is kept (it verifies nothing) and reported by
 * `logCertificateExpiry`.
 */
export async function loadCaBundle(file: string): Promise<CaBundle> {
  const text = (await readBytes(file, '--ca')).toString('utf8');
  const blocks = text.match(pemCertificate) ?? [];
  if (blocks.length === 0) throw usage(`--ca ${file}: no PEM certificate in it`);
  const certs = blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw usage(`--ca ${file}: certificate ${i + 1} is not a valid X.509 certificate`);
    }
  });
  return {
    pems: certs.map((c) => c.toString()),
    inUse: certs.map((c) => certificateInUse('ca', c, [], file)),
  };
}

/** `--internal-ca` and `--client-cert` (internal-pki.ts) as the expiry gauge and `coexist status` show them. */
export function internalPkiInUse(
  pki: InternalPki | undefined,
  files: { readonly internalCa?: string | undefined; readonly clientCert?: string | undefined },
): CertificateInUse[] {
  if (pki === undefined) return [];
  const inUse = pki.ca.map((pem) =>
    certificateInUse('internal-ca', new X509Certificate(pem), [], files.internalCa ?? ''),
  );
  const client = pki.clientCertificate?.certPem.match(pemCertificate)?.[0];
  if (client !== undefined) {
    const cert = new X509Certificate(client);
    const names = (cert.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4));
    inUse.push(certificateInUse('client', cert, names, files.clientCert?.split(',')[0] ?? ''));
  }
  return inUse;
}

/** A certificate as the expiry gauge and `coexist status` show it. */
export function certificateInUse(
  use: CertificateInUse['use'],
  cert: X509Certificate,
  hosts: readonly string[],
  file: string,
): CertificateInUse {
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1];
  return {
    use,
    subject: cn ?? cert.subject.replace(/\n/g, ', '),
    hosts,
    file,
    notAfter: new Date(cert.validTo),
  };
}

async function readBytes(file: string, option = '--cert'): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw usage(`${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function fromPem(file: string, text: string, keyFile: string | undefined): Promise<Loaded> {
  const blocks = text.match(pemCertificate) ?? [];
  if (blocks.length === 0) throw usage(`--cert ${file}: no PEM certificate in it`);
  const chain = blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw usage(`--cert ${file}: certificate ${i + 1} is not a valid X.509 certificate`);
    }
  });
  const keyText = keyFile === undefined ? text : (await readBytes(keyFile)).toString('utf8');
  const keyPem = pemPrivateKey.exec(keyText)?.[0];
  const where = keyFile ?? file;
  if (keyPem === undefined)
    throw usage(
      keyFile === undefined
        ? `--cert ${file}: no private key in it: give hosts=cert.pem,key.pem`
        : `--cert ${keyFile}: no PEM private key in it`,
    );
  if (keyPem.includes('ENCRYPTED'))
    throw usage(
      `--cert ${where}: the private key is encrypted; give it unencrypted, or give a PFX and its password file`,
    );
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw usage(`--cert ${where}: not a PEM private key (an unencrypted PKCS#8, PKCS#1 or SEC1 key)`);
  }
  const own = chain.findIndex((c) => c.checkPrivateKey(key));
  if (own > 0)
    throw usage(
      `--cert ${file}: the private key belongs to certificate ${own + 1}, not the first; put the server's certificate first, then its intermediates`,
    );
  if (own < 0) throw usage(`--cert ${where}: the private key does not belong to the certificate in ${file}`);
  chain.slice(1).forEach((issuer, i) => {
    const subject = chain[i] as X509Certificate;
    if (!(subject.checkIssued(issuer) && subject.verify(issuer.publicKey)))
      throw usage(
        `--cert ${file}: certificate ${i + 2} did not issue certificate ${i + 1}; put the chain in order, the server's certificate first, then each issuer`,
      );
  });
  return { chain, key };
}

async function fromPkcs12(file: string, bytes: Buffer, passwordFile: string | undefined): Promise<Loaded> {
  const password = passwordFile === undefined ? '' : await readPassword(passwordFile);
  const p12 = parsePkcs12(file, bytes, password, passwordFile);
  const bags = p12.safeContents.flatMap((s) => s.safeBags);
  const keys: KeyObject[] = [];
  const certs: X509Certificate[] = [];
  for (const bag of bags) {
    if (bag.type === forge.pki.oids['certBag']) {
      const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
      if (asn1) certs.push(new X509Certificate(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary')));
    } else if (bag.type === forge.pki.oids['keyBag'] || bag.type === forge.pki.oids['pkcs8ShroudedKeyBag']) {
      // An RSA key forge parsed, else (EC) the PrivateKeyInfo it left as ASN.1: either way PKCS#8 DER.
      const info = bag.key
        ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key))
        : (bag.asn1 as forge.asn1.Asn1 | undefined);
      if (info)
        keys.push(
          createPrivateKey({
            key: Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary'),
            format: 'der',
            type: 'pkcs8',
          }),
        );
    }
  }
  if (keys.length === 0)
    throw usage(`--cert ${file}: no private key in it: export the certificate with its private key`);
  if (certs.length === 0) throw usage(`--cert ${file}: no certificate in it`);
  for (const key of keys) {
    const leaf = certs.find((c) => c.checkPrivateKey(key));
    if (leaf) return { chain: chainOf(leaf, certs), key };
  }
  throw usage(`--cert ${file}: the private key in it belongs to none of its certificates`);
}

/**
 * Forge's reading of `bytes` with `password`. PKCS#12's own key derivation (the MAC, 3DES and RC2 bags)
 * takes the password as UTF-16, which forge does from the string; PBES2 (AES) takes its UTF-8 bytes, which
 * forge needs as a binary string. So a non-ASCII password whose MAC verified but whose AES bags did not
 * decrypt is tried again on those bags with its UTF-8 bytes (without the MAC, verified already).
 */
function parsePkcs12(
  file: string,
  bytes: Buffer,
  password: string,
  passwordFile: string | undefined,
): forge.pkcs12.Pkcs12Pfx {
  const read = (withMac: boolean, pass: string): forge.pkcs12.Pkcs12Pfx => {
    const der = forge.asn1.fromDer(forge.util.createBuffer(bytes.toString('binary')));
    if (!withMac && Array.isArray(der.value)) der.value = der.value.slice(0, 2);
    return forge.pkcs12.pkcs12FromAsn1(der, false, pass);
  };
  // Forge's messages never hold the password; only their kind is told.
  const kind = (e: unknown): 'mac' | 'decrypt' | 'other' => {
    const message = e instanceof Error ? e.message : '';
    if (/MAC could not be verified/i.test(message)) return 'mac';
    return /decrypt|wrong password/i.test(message) ? 'decrypt' : 'other';
  };
  const wrong = (): Error =>
    usage(
      passwordFile === undefined
        ? `--cert ${file}: the PKCS#12 file is protected by a password: give hosts=${file},password.txt (or --cert-password-file)`
        : `--cert ${file}: wrong password in ${passwordFile} (the PKCS#12 file does not open with it)`,
    );
  const damaged = (): Error =>
    usage(`--cert ${file}: neither PEM nor a readable PKCS#12 (PFX) file: damaged, or another format`);
  try {
    return read(true, password);
  } catch (e) {
    const first = kind(e);
    if (first === 'mac') throw wrong();
    // A wrong AES key usually fails the padding check ('decrypt'), but about 1 time in 256 the garbage has
    // valid padding and fails later as ASN.1 ('other'): both mean "try the UTF-8 bytes".
    if (Buffer.byteLength(password) !== password.length) {
      try {
        return read(false, forge.util.encodeUtf8(password));
      } catch (again) {
        throw kind(again) === 'other' ? damaged() : wrong();
      }
    }
    throw first === 'decrypt' ? wrong() : damaged();
  }
}

/** The password in `file`: its content without one trailing newline (and without a UTF-8 byte order mark). */
async function readPassword(file: string): Promise<string> {
  return (await readBytes(file))
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .replace(/\r?\n$/, '');
}

/** `leaf`, then each issuer found among `certs`, up to (not including) a self-signed root. */
function chainOf(leaf: X509Certificate, certs: readonly X509Certificate[]): X509Certificate[] {
  const chain = [leaf];
  let current = leaf;
  while (chain.length < 10) {
    const issuer = certs.find(
      (c) => !chain.includes(c) && current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (issuer === undefined || issuer.checkIssued(issuer)) break;
    chain.push(issuer);
    current = issuer;
  }
  return chain;
}

/** The checks a client would make: valid now, for a TLS server, naming every host it is served for. */
function check(file: string, loaded: Loaded, hosts: readonly string[], now: Date): void {
  loaded.chain.forEach((c, i) => {
    const which = i === 0 ? 'the certificate' : `intermediate ${i} (${c.subject.replace(/\n/g, ', ')})`;
    if (new Date(c.validTo) <= now) throw usage(`--cert ${file}: ${which} expired on ${c.validTo}`);
    if (new Date(c.validFrom) > now)
      throw usage(`--cert ${file}: ${which} is valid only from ${c.validFrom}`);
  });
  const leaf = loaded.chain[0] as X509Certificate;
  const eku = leaf.keyUsage;
  if (eku !== undefined && !eku.includes(serverAuthOid) && !eku.includes(anyExtendedKeyUsageOid))
    throw usage(
      `--cert ${file}: the certificate has no serverAuth extended key usage (${serverAuthOid}): it is not a TLS server's`,
    );
  for (const host of hosts) {
    // A wildcard entry (*.contoso.com) is served for any name under it: the certificate must cover them all.
    const covered =
      isIP(host) !== 0
        ? leaf.checkIP(host) !== undefined
        : leaf.checkHost(host.startsWith('*.') ? `coexist-any-name${host.slice(1)}` : host, {
            wildcards: true,
            partialWildcards: false,
          }) !== undefined;
    if (!covered)
      throw usage(
        `--cert ${file}: the certificate does not cover ${host} (it names: ${leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ', ')}); clients would refuse it for that name`,
      );
  }
}

/**
 * `GET /status`'s `certificates` as `coexist status` prints them, soonest to expire first, marked `!` when
 * expiring within `expiryWarningDays` and `!!` once expired; nothing when the document has none.
 */
export function certificatesText(doc: unknown): string {
  const list = (doc as { certificates?: unknown } | null)?.certificates;
  if (!Array.isArray(list) || list.length === 0) return '';
  const rows = (list as CertificateStatus[]).map((c) => [
    c.state === 'expired' ? '!!' : c.state === 'expiring' ? '!' : '',
    c.use,
    c.subject,
    c.hosts.join(',') || '-',
    c.notAfter,
    String(c.daysLeft),
    c.file,
  ]);
  const header = ['', 'USE', 'SUBJECT', 'HOSTS', 'EXPIRES', 'DAYS', 'FILE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const expiring = rows.filter((r) => r[0] === '!').length;
  const expired = rows.filter((r) => r[0] === '!!').length;
  const summary = [
    ...(expired > 0 ? [`${expired} expired (!!)`] : []),
    ...(expiring > 0 ? [`${expiring} expiring within ${expiryWarningDays} days (!)`] : []),
  ];
  return `\nCertificates${summary.length > 0 ? `: ${summary.join(', ')}` : ''}\n${[header, ...rows].map(line).join('\n')}\n`;
}
