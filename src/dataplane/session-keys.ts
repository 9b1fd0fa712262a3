/**
 * The OWA session key file shared by the front ends of an estate (docs/operations.md "OWA session keys"):
 * every front end that holds the same file can open every session cookie, so a layer-4 load balancer needs
 * no affinity (docs/security.md "OWA sessions"). Format: one key per line, 32 random bytes in base64 (or
 * base64url); blank lines and lines starting with `#` are ignored; the first key encrypts new cookies, a
 * second one is still accepted (rotation). The file must be readable by its owner only, as ssh insists for
 * a private key: a key that leaks opens every cookie it sealed, and with it the credentials inside.
 */
import { Buffer } from 'node:buffer';
import { readFileSync, statSync } from 'node:fs';

/** Bytes of one key: AES-256-GCM. */
export const sessionKeyBytes = 32;
/** Keys a file may hold: the current one and the one being retired. */
export const maxSessionKeys = 2;

/** A key file that cannot be used: names the file and what is wrong. */
export class SessionKeyFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'SessionKeyFileError';
  }
}

const base64Shape = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const base64urlShape = /^[A-Za-z0-9_-]+$/;

/** The keys of a key file's text, first the current one; throws `SessionKeyFileError` naming `file`. */
export function parseSessionKeys(text: string, file: string): Uint8Array[] {
  const keys: Uint8Array[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `line ${i + 1}`;
    // Never echo the line: it is (part of) a key.
    const encoding = base64Shape.test(line) ? 'base64' : base64urlShape.test(line) ? 'base64url' : undefined;
    if (encoding === undefined)
      throw new SessionKeyFileError(file, `${where} is not base64 (one key per line, 32 bytes in base64)`);
    const key = Buffer.from(line, encoding);
    if (key.length !== sessionKeyBytes)
      throw new SessionKeyFileError(
        file,
        `${where} is ${key.length} bytes, a key must be exactly ${sessionKeyBytes} (head -c 32 /dev/urandom | base64)`,
      );
    if (keys.some((k) => Buffer.compare(k, key) === 0))
      throw new SessionKeyFileError(file, `${where} repeats a key above it`);
    keys.push(new Uint8Array(key));
  }
  if (keys.length === 0) throw new SessionKeyFileError(file, 'holds no key (one key per line, base64)');
  if (keys.length > maxSessionKeys)
    throw new SessionKeyFileError(
      file,
      `holds ${keys.length} keys, at most ${maxSessionKeys} (the current one first, then the one being retired)`,
    );
  return keys;
}

/**
 * Read a key file: refused when it cannot be read, is not a regular file, is readable or writable by group
 * or others (chmod 600), or its content is not one or two keys.
 */
export function readSessionKeyFile(file: string): Uint8Array[] {
  let mode: number;
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new SessionKeyFileError(file, 'is not a regular file');
    mode = st.mode;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SessionKeyFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SessionKeyFileError(file, `cannot be read (${code ?? String(err)})`);
  }
  if ((mode & 0o077) !== 0)
    throw new SessionKeyFileError(
      file,
      `permissions ${(mode & 0o777).toString(8).padStart(4, '0')} are too open: the keys open every OWA session cookie and the credential in it; it must be accessible by its owner only (chmod 600)`,
    );
  return parseSessionKeys(text, file);
}
