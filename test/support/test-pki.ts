/**
 * Certificates for the certificate tests: a root CA, an intermediate CA under it and server certificates
 * under either, with any validity (expired, expiring soon); and PKCS#12 files made the way Exchange exports
 * them (`Export-ExchangeCertificate -BinaryEncoded -Password`):
 *
 * - `legacy`: what Windows has written for years (and Exchange 2013-2019 on Windows Server 2012-2019): the
 *   certificates in an encryptedData under pbeWithSHAAnd40BitRC2-CBC, the key in a pkcs8ShroudedKeyBag
 *   under pbeWithSHAAnd3-KeyTripleDES-CBC, 2000 iterations, a SHA-1 MAC. OpenSSL 3 reads RC2-40 only with its
 *   legacy provider, which Node does not load.
 * - `aes256`: Windows Server 2019 and later's "AES256-SHA256": PBES2 (PBKDF2 with HMAC-SHA256, AES-256-CBC)
 *   for both, a SHA-256 MAC.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

const { asn1, pki } = forge;
/** PKCS#12's key derivation (appendix B), which @types/node-forge does not declare. */
const pbe = (
  pki as unknown as {
    pbe: {
      generatePkcs12Key(
        password: string,
        salt: forge.util.ByteStringBuffer,
        id: number,
        iterations: number,
        n: number,
        md?: forge.md.MessageDigest,
      ): forge.util.ByteStringBuffer;
    };
  }
).pbe;
const dayMs = 24 * 60 * 60 * 1000;

export interface Issued {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface IssueOptions {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Extended key usages of a leaf; default serverAuth. */
  readonly serverAuth?: boolean;
  readonly clientAuth?: boolean;
}

function keys(): { key: forge.pki.rsa.PrivateKey; pub: forge.pki.PublicKey; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    key: pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey,
    pub: pki.publicKeyFromPem(publicKey),
    keyPem: privateKey,
  };
}

function serial(): string {
  const b = randomBytes(12);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x01;
  return b.toString('hex');
}

function make(
  subjectCn: string,
  issuer: Issued | undefined,
  o: IssueOptions & { readonly ca: boolean; readonly hosts?: readonly string[] },
): Issued {
  const k = keys();
  const cert = pki.createCertificate();
  cert.publicKey = k.pub;
  cert.serialNumber = serial();
  cert.validity.notBefore = o.notBefore ?? new Date(Date.now() - dayMs);
  cert.validity.notAfter = o.notAfter ?? new Date(Date.now() + 365 * dayMs);
  cert.setSubject([{ name: 'commonName', value: subjectCn }]);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : [{ name: 'commonName', value: subjectCn }]);
  const extensions: object[] = o.ca
    ? [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ]
    : [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        {
          name: 'extKeyUsage',
          ...((o.serverAuth ?? true) ? { serverAuth: true } : {}),
          ...(o.clientAuth ? { clientAuth: true } : {}),
        },
        { name: 'subjectAltName', altNames: (o.hosts ?? []).map((value) => ({ type: 2, value })) },
      ];
  cert.setExtensions([...extensions, { name: 'subjectKeyIdentifier' }]);
  cert.sign(issuer ? issuer.key : k.key, forge.md.sha256.create());
  return { cert, key: k.key, certPem: pki.certificateToPem(cert), keyPem: k.keyPem };
}

/** A self-signed root CA. */
export const rootCa = (cn: string, o: IssueOptions = {}): Issued => make(cn, undefined, { ...o, ca: true });
/** A CA certificate issued by `parent`. */
export const intermediateCa = (parent: Issued, cn: string, o: IssueOptions = {}): Issued =>
  make(cn, parent, { ...o, ca: true });
/** A server certificate for `hosts` (the first is the CN), issued by `parent`. */
export const serverCertificate = (parent: Issued, hosts: readonly string[], o: IssueOptions = {}): Issued =>
  make(hosts[0] ?? 'server', parent, { ...o, ca: false, hosts });

export type PfxStyle = 'legacy' | 'aes256';

/** `n` bytes as a binary string (forge's form). */
export type RandomBytes = (n: number) => string;

/** Bytes that depend only on `seed`: SHA-256 of the seed and a counter, block after block. */
export function seededBytes(seed: string): RandomBytes {
  let counter = 0;
  return (n) => {
    let out = '';
    while (out.length < n) out += forge.md.sha256.create().update(`${seed}:${counter++}`).digest().getBytes();
    return out.slice(0, n);
  };
}

const seq = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (name: string): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(pki.oids[name] as string).getBytes());
const octets = (bytes: string): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
const int = (n: number): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(n).getBytes());
const explicit0 = (item: forge.asn1.Asn1): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [item]);
const der = (item: forge.asn1.Asn1): string => asn1.toDer(item).getBytes();

const iterations = 2000;

/** A PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) AlgorithmIdentifier and the ciphertext of `data`. */
function pbes2(
  data: string,
  password: string,
  random: RandomBytes,
): { alg: forge.asn1.Asn1; encrypted: string } {
  const salt = random(16);
  const iv = random(16);
  // PBKDF2 takes the password's UTF-8 bytes (Windows and OpenSSL alike); forge takes bytes as a binary string.
  const key = forge.pkcs5.pbkdf2(
    forge.util.encodeUtf8(password),
    salt,
    iterations,
    32,
    forge.md.sha256.create(),
  );
  const cipher = forge.cipher.createCipher('AES-CBC', key);
  cipher.start({ iv });
  cipher.update(forge.util.createBuffer(data));
  cipher.finish();
  const alg = seq([
    oid('pkcs5PBES2'),
    seq([
      seq([
        oid('pkcs5PBKDF2'),
        seq([octets(salt), int(iterations), seq([oid('hmacWithSHA256'), asn1.create(0, 5, false, '')])]),
      ]),
      seq([oid('aes256-CBC'), octets(iv)]),
    ]),
  ]);
  return { alg, encrypted: cipher.output.getBytes() };
}

/** pbeWithSHAAnd40BitRC2-CBC (PKCS#12 appendix B key derivation) of `data`. */
function rc2_40(data: string, password: string): { alg: forge.asn1.Asn1; encrypted: string } {
  const salt = forge.random.getBytesSync(8);
  const saltBuf = (): forge.util.ByteStringBuffer => forge.util.createBuffer(salt);
  const key = pbe.generatePkcs12Key(password, saltBuf(), 1, iterations, 5);
  const iv = pbe.generatePkcs12Key(password, saltBuf(), 2, iterations, 8);
  const cipher = forge.rc2.createEncryptionCipher(key, 40);
  cipher.start(iv);
  cipher.update(forge.util.createBuffer(data));
  cipher.finish();
  const alg = seq([
    asn1.create(
      asn1.Class.UNIVERSAL,
      asn1.Type.OID,
      false,
      asn1.oidToDer('1.2.840.113549.1.12.1.6').getBytes(),
    ),
    seq([octets(salt), int(iterations)]),
  ]);
  return { alg, encrypted: cipher.output.getBytes() };
}

/**
 * A PFX holding `key` and `chain` (the server's certificate first) protected by `password`, as Exchange
 * exports one in `style`. `key` may be another certificate's (a PFX whose key does not match).
 */
export function exchangePfx(
  key: forge.pki.rsa.PrivateKey,
  chain: readonly forge.pki.Certificate[],
  password: string,
  style: PfxStyle,
  /** Where salts and IVs come from; default forge's generator (`seededBytes` makes a file reproducible). */
  random: RandomBytes = (n) => forge.random.getBytesSync(n),
): Buffer {
  const localKeyId = forge.md.sha1
    .create()
    .update(der(pki.certificateToAsn1(chain[0] as forge.pki.Certificate)))
    .digest()
    .getBytes();
  const attrs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
    seq([oid('localKeyId'), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [octets(localKeyId)])]),
  ]);
  const certBags = chain.map((c, i) =>
    seq([
      oid('certBag'),
      explicit0(seq([oid('x509Certificate'), explicit0(octets(der(pki.certificateToAsn1(c))))])),
      ...(i === 0 ? [attrs] : []),
    ]),
  );
  const certSafe = der(seq(certBags));
  const certEnc = style === 'legacy' ? rc2_40(certSafe, password) : pbes2(certSafe, password, random);
  const certCi = seq([
    oid('encryptedData'),
    explicit0(
      seq([
        int(0),
        seq([
          oid('data'),
          certEnc.alg,
          asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, certEnc.encrypted),
        ]),
      ]),
    ),
  ]);
  const keyInfo = pki.wrapRsaPrivateKey(pki.privateKeyToAsn1(key));
  const shrouded =
    style === 'legacy'
      ? pki.encryptPrivateKeyInfo(keyInfo, password, { algorithm: '3des', count: iterations })
      : (() => {
          const e = pbes2(der(keyInfo), password, random);
          return seq([e.alg, octets(e.encrypted)]);
        })();
  const keySafe = der(seq([seq([oid('pkcs8ShroudedKeyBag'), explicit0(shrouded), attrs])]));
  const keyCi = seq([oid('data'), explicit0(octets(keySafe))]);
  const authSafe = der(seq([certCi, keyCi]));

  const macSalt = random(style === 'legacy' ? 8 : 16);
  const md = style === 'legacy' ? forge.md.sha1.create() : forge.md.sha256.create();
  const macKey = pbe.generatePkcs12Key(
    password,
    forge.util.createBuffer(macSalt),
    3,
    iterations,
    md.digestLength,
    style === 'legacy' ? forge.md.sha1.create() : forge.md.sha256.create(),
  );
  const hmac = forge.hmac.create();
  hmac.start(md, macKey);
  hmac.update(authSafe);
  const macData = seq([
    seq([
      seq([oid(style === 'legacy' ? 'sha1' : 'sha256'), asn1.create(0, 5, false, '')]),
      octets(hmac.digest().getBytes()),
    ]),
    octets(macSalt),
    int(iterations),
  ]);
  const pfx = seq([int(3), seq([oid('data'), explicit0(octets(authSafe))]), macData]);
  return Buffer.from(der(pfx), 'binary');
}
