/**
 * Who a connection or a sign-in comes from, for the per-source counters (the edge's connection caps,
 * docs/security.md "Limits and timeouts at the edge", and the smart lockout, "Extranet smart lockout"):
 * an IPv4 address as it is (an IPv4-mapped IPv6 address unmapped), an IPv6 address by its /64, since one
 * host is commonly given a whole /64 and would otherwise get a new counter per address.
 */
import { isIP } from 'node:net';

export function sourceKey(address: string | undefined): string {
  if (address === undefined) return '';
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  if (isIP(lower) !== 6) return lower;
  const [head = '', tail] = lower.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
