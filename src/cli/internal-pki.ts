/**
 * `coexist serve --internal-ca` and `--client-cert`: the files that let servers of an estate authenticate each
 * other (docs/security.md "How servers authenticate each other"), read and checked at start, so that a wrong
 * file stops the server with the file and what is wrong with it, instead of every hop later being served as
 * a client's.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from '../core/estate/estate.ts';
import { clientAuthOid, serverNamed } from '../dataplane/index.ts';
import { usage } from './common.ts';

/** What the server node gets: the CA its peers' certificates are verified against, its own certificate. */
export interface InternalPki {
  /** The internal CA's certificates (PEM), one per entry. */
  readonly ca: readonly string[];
  /** This server's client certificate (with any intermediates after it) and key. */
  readonly clientCertificate?: { readonly certPem: string; readonly keyPem: string };
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Read `--internal-ca` and `--client-cert` (`cert.pem,key.pem`) for `server`; usage errors name the file. */
export async function loadInternalPki(
  o: { readonly caFile?: string | undefined; readonly clientCert?: string | undefined },
  server: Server,
  now: Date = new Date(),
): Promise<InternalPki | undefined> {
  if (o.caFile === undefined) {
    if (o.clientCert !== undefined)
      throw usage('--client-cert needs --internal-ca: the CA the other servers verify it against');
    return undefined;
  }
  const ca = await readCertificates('--internal-ca', o.caFile);
  ca.forEach(({ cert }, i) => {
    const which = `${o.caFile}: certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')})`;
    if (!cert.ca) throw usage(`--internal-ca ${which} is not a CA certificate (basicConstraints CA:FALSE)`);
    checkValidity(`--internal-ca ${which}`, cert, now);
  });
  if (o.clientCert === undefined) return { ca: ca.map((c) => c.pem) };

  const m = /^([^,]+),(.+)$/.exec(o.clientCert);
  if (!m) throw usage(`--client-cert ${o.clientCert}: expected cert.pem,key.pem`);
  const [, certFile, keyFile] = m as unknown as [string, string, string];
  const chain = await readCertificates('--client-cert', certFile);
  const leaf = (chain[0] as { cert: X509Certificate }).cert;
  const where = `--client-cert ${certFile}`;
  checkValidity(where, leaf, now);
  if (!(leaf.keyUsage ?? []).includes(clientAuthOid))
    throw usage(
      `${where}: the certificate has no clientAuth extended key usage (${clientAuthOid}); issue it from a template with Client Authentication`,
    );
  const fqdn = server.fqdn.toLowerCase();
  if (serverNamed(leaf.subjectAltName, new Map([[fqdn, server.name]])) !== server.name)
    throw usage(
      `${where}: the certificate does not name this server's FQDN ${server.fqdn} as a DNS subject alternative name (it names: ${leaf.subjectAltName ?? 'none'})`,
    );
  if (
    !issuedBy(
      leaf,
      chain.slice(1).map((c) => c.cert),
      ca.map((c) => c.cert),
    )
  )
    throw usage(`${where}: the certificate is not issued by the --internal-ca ${o.caFile}`);

  let keyPem: string;
  try {
    keyPem = await readFile(keyFile, 'utf8');
  } catch (e) {
    throw usage(`--client-cert ${keyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw usage(`--client-cert ${keyFile}: not a PEM private key (an unencrypted PKCS#8 or PKCS#1 key)`);
  }
  if (!leaf.checkPrivateKey(key))
    throw usage(`--client-cert ${keyFile}: the key does not belong to the certificate ${certFile}`);
  return {
    ca: ca.map((c) => c.pem),
    clientCertificate: { certPem: chain.map((c) => c.pem).join('\n'), keyPem },
  };
}

/** Every PEM certificate of `file`, parsed; usage errors for a missing file or one with none. */
async function readCertificates(
  option: string,
  file: string,
): Promise<{ readonly pem: string; readonly cert: X509Certificate }[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw usage(`${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const blocks = text.match(pemBlock) ?? [];
  if (blocks.length === 0) throw usage(`${option} ${file}: no PEM certificate in it`);
  return blocks.map((pem, i) => {
    try {
      return { pem, cert: new X509Certificate(pem) };
    } catch {
      throw usage(`${option} ${file}: certificate ${i + 1} is not a valid X.509 certificate`);
    }
  });
}

function checkValidity(where: string, cert: X509Certificate, now: Date): void {
  if (new Date(cert.validTo) < now) throw usage(`${where}: the certificate expired on ${cert.validTo}`);
  if (new Date(cert.validFrom) > now)
    throw usage(`${where}: the certificate is valid only from ${cert.validFrom}`);
}

/** `leaf` chains to one of `roots`, through at most four of `intermediates`, each signature checked. */
function issuedBy(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
): boolean {
  let current = leaf;
  for (let depth = 0; depth < 5; depth++) {
    if (roots.some((r) => current.checkIssued(r) && current.verify(r.publicKey))) return true;
    const next = intermediates.find((c) => c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (next === undefined) return false;
    current = next;
  }
  return false;
}
