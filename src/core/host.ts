/**
 * The one host parser: the host of a URL (estate URLs, Autodiscover answers, LDAP URLs) and the host of an
 * HTTP Host header, in one form that compares: lower-cased, an IPv6 literal without its brackets, no port.
 * Pure (the `URL` global only), so the engine, the loader, the data plane and the clients share it.
 */

/**
 * The host of an absolute URL, as WHATWG URL parsing reads it (IDNA, percent-decoding, IPv4 forms), lower-cased,
 * an IPv6 literal without brackets; '' when the text is not an absolute URL with a host.
 */
export function hostOfUrl(url: string): string {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return '';
  }
  return unbracket(hostname).toLowerCase();
}

/**
 * The host of a Host header without its port: `Mail.o365info.com:8443` -> `mail.o365info.com`,
 * `[::1]:443` -> `::1`. A bare IPv6 literal (more than one colon, no brackets), as the engine's inputs
 * already carry, is kept whole.
 */
export function hostOfHeader(host: string): string {
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return (close < 0 ? host.slice(1) : host.slice(1, close)).toLowerCase();
  }
  const colon = host.indexOf(':');
  if (colon < 0 || host.indexOf(':', colon + 1) >= 0) return host.toLowerCase();
  return host.slice(0, colon).toLowerCase();
}

const unbracket = (host: string): string =>
  host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
