/** Distinguished names (RFC 4514) as the directory and discovery read them. Pure. */

/** The value of the first RDN of a DN (RFC 4514 escapes undone), e.g. MBX2007-NY of cn=MBX2007-NY,cn=Servers,... */
export function firstRdnValue(dn: string): string | undefined {
  const eq = dn.indexOf('=');
  if (eq <= 0) return undefined;
  const bytes: number[] = [];
  for (let i = eq + 1; i < dn.length; i++) {
    const c = dn[i] as string;
    if (c === ',' || c === '+') break;
    if (c === '\\') {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else if (i + 1 < dn.length) {
        bytes.push(...Buffer.from(dn[i + 1] as string, 'utf8'));
        i += 1;
      }
      continue;
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  const value = Buffer.from(bytes).toString('utf8').trim();
  return value === '' ? undefined : value;
}
