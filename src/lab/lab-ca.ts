/**
 * A throwaway certificate authority for the lab: every host name of the estate is served over HTTPS on
 * loopback, with leaf certificates that clients trusting only this CA accept. Keys never leave memory;
 * only the CA certificate is written out.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';

const { pki } = forge;

/** Options of `createLabCa`. */
export interface LabCaOptions {
  /** The CA's subject common name; `coexist lab CA` when absent. */
  readonly commonName?: string;
  /** How long the CA and its leaves are valid; 30 days when absent. */
  readonly validDays?: number;
}

/** A leaf certificate and its private key, both PEM. */
export interface LabCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** What a leaf certificate may be used for (its extended key usages, RFC 5280 §4.2.1.12). */
export interface LeafUsage {
  /** A TLS server (id-kp-serverAuth); default true. */
  readonly serverAuth?: boolean;
  /** A TLS client (id-kp-clientAuth): a server of the estate proving itself on its hops; default false. */
  readonly clientAuth?: boolean;
}

/** The lab's certificate authority. */
export interface LabCa {
  /** The CA certificate (PEM): what lab clients trust. */
  readonly certPem: string;
  /**
   * A certificate for `hosts` (DNS names or IP addresses; the first is also the subject CN): a server
   * certificate by default, a client certificate with `{ clientAuth: true }` (docs/security.md "How servers
   * authenticate each other").
   */
  issue(hosts: readonly string[], usage?: LeafUsage): LabCertificate;
  /** Write the CA certificate to `<dir>/ca.pem` (creating `dir`) and return that path. */
  writeCaFile(dir: string): Promise<string>;
}

const dayMs = 24 * 60 * 60 * 1000;
/** notBefore is set this far back, so a client whose clock is slightly behind still accepts a new certificate. */
const backdateMs = 60 * 60 * 1000;

interface KeyPair {
  readonly keyPem: string;
  readonly publicKey: forge.pki.PublicKey;
  readonly privateKey: forge.pki.rsa.PrivateKey;
}

/**
 * RSA 2048 from Node's native generator (milliseconds; node-forge's JavaScript one takes about a second),
 * handed to forge through PEM.
 */
function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    keyPem: privateKey,
    publicKey: pki.publicKeyFromPem(publicKey),
    // forge types the parse result as any key type; this one is the RSA key generated above.
    privateKey: pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey,
  };
}

/** 16 random bytes as a positive DER INTEGER with no leading zero byte (RFC 5280 §4.1.2.2). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

// Letters, digits and hyphens per label, plus underscores (older AD host names have them) and a leading `*.`.
const hostPattern =
  /^(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*$/;

function altName(host: string): { type: number; value?: string; ip?: string } {
  // GeneralName tags (RFC 5280 §4.2.1.6): 2 = dNSName, 7 = iPAddress.
  if (isIP(host) !== 0) return { type: 7, ip: host };
  if (!hostPattern.test(host)) throw new Error(`lab CA: "${host}" is not a DNS name or an IP address`);
  return { type: 2, value: host };
}

/** Create a CA with a fresh key. */
export function createLabCa(options: LabCaOptions = {}): LabCa {
  const commonName = options.commonName ?? 'coexist lab CA';
  const validDays = options.validDays ?? 30;
  if (!(validDays > 0)) throw new Error(`lab CA: validDays must be positive, not ${validDays}`);
  const now = Date.now();
  const notBefore = new Date(now - backdateMs);
  const notAfter = new Date(now + validDays * dayMs);

  const caKeys = generateKeyPair();
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'coexist lab' },
  ];
  const ca = pki.createCertificate();
  ca.publicKey = caKeys.publicKey;
  ca.serialNumber = serialNumber();
  ca.validity.notBefore = notBefore;
  ca.validity.notAfter = notAfter;
  ca.setSubject(subject);
  ca.setIssuer(subject);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());
  const caKeyId = ca.generateSubjectKeyIdentifier().getBytes();
  const certPem = pki.certificateToPem(ca);

  // One key pair for every leaf of this CA: a lab issues a certificate per host name at start-up, and
  // the keys are as throwaway as the CA. Production certificates never share keys.
  let leafKeys: KeyPair | undefined;

  return {
    certPem,
    issue(hosts, usage = {}) {
      const first = hosts[0];
      if (first === undefined) throw new Error('lab CA: a certificate needs at least one host name');
      const serverAuth = usage.serverAuth ?? true;
      const clientAuth = usage.clientAuth ?? false;
      if (!serverAuth && !clientAuth) throw new Error('lab CA: a certificate needs serverAuth or clientAuth');
      const altNames = hosts.map(altName);
      leafKeys ??= generateKeyPair();
      const leaf = pki.createCertificate();
      leaf.publicKey = leafKeys.publicKey;
      leaf.serialNumber = serialNumber();
      leaf.validity.notBefore = new Date(Date.now() - backdateMs);
      leaf.validity.notAfter = notAfter;
      leaf.setSubject([{ name: 'commonName', value: first }]);
      leaf.setIssuer(ca.subject.attributes);
      leaf.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        {
          name: 'extKeyUsage',
          ...(serverAuth ? { serverAuth: true } : {}),
          ...(clientAuth ? { clientAuth: true } : {}),
        },
        { name: 'subjectAltName', altNames },
        { name: 'subjectKeyIdentifier' },
        // The CA's key id: `keyIdentifier: true` would make forge use the leaf's own key.
        { name: 'authorityKeyIdentifier', keyIdentifier: caKeyId },
      ]);
      leaf.sign(caKeys.privateKey, forge.md.sha256.create());
      return { certPem: pki.certificateToPem(leaf), keyPem: leafKeys.keyPem };
    },
    async writeCaFile(dir) {
      await mkdir(dir, { recursive: true });
      const path = join(dir, 'ca.pem');
      await writeFile(path, certPem);
      return path;
    },
  };
}
