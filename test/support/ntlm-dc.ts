/**
 * The lab's NTLM verifier on a real domain controller (docs/lab.md §5.5): a throwaway Samba AD DC loaded with the
 * demo estate (examples/o365info.yaml), NTLM on, and verifiers of Samba's `ntlm_auth` on its winbind.
 */
import { readFile } from 'node:fs/promises';
import { parseEstate } from '../../src/config/index.ts';
import { demoPassword } from '../../src/lab/lab.ts';
import { NtlmVerifier } from '../../src/lab/samba/ntlm-verifier.ts';
import { startSambaAd, type SambaAd } from '../../src/lab/samba/samba.ts';
import { demoEstateFile } from './logged-lab.ts';

/** A Samba AD DC with the demo estate's users (password `demoPassword`) and NTLM on. */
export async function startNtlmDc(): Promise<SambaAd> {
  const { index } = parseEstate(await readFile(demoEstateFile, 'utf8'), demoEstateFile);
  return startSambaAd({ estate: index.estate, password: demoPassword, ntlm: true, maxRuntimeSeconds: 900 });
}

/** A verifier on `dc`'s winbind running at most `maxHelpers` `ntlm_auth` helpers. */
export const ntlmVerifierOn = (dc: SambaAd, maxHelpers?: number): NtlmVerifier =>
  new NtlmVerifier({
    confFile: dc.confFile,
    winbindSocketDir: dc.winbindSocketDir,
    ...(maxHelpers === undefined ? {} : { maxHelpers }),
  });
