/**
 * `coexist check --auth ntlm|negotiate` (docs/auth.md): one credentialed exchange as a Windows client does it, on a
 * connection of its own: the request with the NEGOTIATE, the server's 401 with its CHALLENGE, the same request with
 * the AUTHENTICATE (src/check/ntlm.ts). `negotiate` sends the same NTLM messages under the Negotiate scheme, as a
 * client without a Kerberos ticket for the server does (Negotiate falling back to NTLM); Kerberos itself needs a
 * ticket from the domain's KDC, which this check does not ask for.
 */
import { performance } from 'node:perf_hooks';
import type { HttpAnswer, HttpFailure, HttpInit, Net } from './net.ts';
import { authenticateMessage, challengeToken, negotiateMessage, parseChallenge } from './ntlm.ts';

/** How the check's credentialed requests authenticate. */
export type CheckAuth = 'basic' | 'ntlm' | 'negotiate';

/**
 * The exchange with the handshake. The answer is the last one: the first leg's 401 when the server offered no
 * challenge for the scheme (it does not offer the method), else the AUTHENTICATE's answer. Its time is the whole
 * handshake's.
 */
export async function windowsHttp(
  net: Net,
  url: string,
  init: HttpInit,
  auth: Exclude<CheckAuth, 'basic'>,
  login: string,
  password: string,
): Promise<HttpAnswer | HttpFailure> {
  const scheme = auth === 'ntlm' ? 'NTLM' : 'Negotiate';
  const started = performance.now();
  const connection = net.connection(url);
  const leg = (token: Buffer): Promise<HttpAnswer | HttpFailure> =>
    net.http(
      url,
      { ...init, headers: { ...init.headers, authorization: `${scheme} ${token.toString('base64')}` } },
      connection,
    );
  try {
    const first = await leg(negotiateMessage());
    if (first.kind === 'error' || first.status !== 401) return first;
    const token = challengeToken(first.headers['www-authenticate'], scheme);
    const challenge = token === undefined ? undefined : parseChallenge(token);
    if (challenge === undefined) return first;
    const last = await leg(authenticateMessage(challenge, login, password));
    return { ...last, ms: Math.round(performance.now() - started) };
  } finally {
    await connection.close().catch(() => undefined);
  }
}
