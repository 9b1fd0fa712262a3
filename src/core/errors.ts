/**
 * The error catalogue: every failure coexist reports has a stable code, an HTTP status where one applies,
 * and a one-line summary. docs/errors.md lists the same codes with how to fix them (a test keeps the two
 * in step). Retired codes are never reused.
 */

interface CatalogueEntry {
  /** HTTP status when the failure ends a request; 0 for failures that never reach HTTP (config, CLI). */
  readonly status: number;
  readonly summary: string;
}

export const catalogue = {
  // Configuration (the estate file)
  CX_CONFIG_READ: { status: 0, summary: 'The estate file cannot be read.' },
  CX_CONFIG_SYNTAX: { status: 0, summary: 'The estate file is not valid YAML.' },
  CX_CONFIG_SCHEMA: { status: 0, summary: 'A value in the estate file has the wrong type, shape or format.' },
  CX_CONFIG_DUPLICATE: { status: 0, summary: 'A name, host or address is defined twice in the estate file.' },
  CX_CONFIG_REFERENCE: {
    status: 0,
    summary: 'The estate file refers to a site, server or database it does not define.',
  },
  CX_CONFIG_INCONSISTENT: { status: 0, summary: 'Parts of the estate file contradict each other.' },
  // Command line
  CX_CLI_USAGE: {
    status: 0,
    summary: 'A command-line option is missing or has a value coexist does not know.',
  },
  CX_CLI_UNKNOWN_USER: { status: 0, summary: 'The user is not in the estate.' },
  CX_CLI_UNKNOWN_NAMESPACE: {
    status: 0,
    summary: 'The host name is neither a namespace nor a server of the estate.',
  },
  // Discovery (what `coexist discover` reads)
  CX_DISCOVER_INPUT: {
    status: 0,
    summary:
      'An export given to coexist discover cannot be read or is not a well-formed export it reads; or Active Directory holds no Exchange organisation.',
  },
  // Identity (who is the request for; src/core/protocols)
  CX_IDENTITY_BASIC_MALFORMED: {
    status: 400,
    summary: 'The Authorization header says Basic but its credentials are not base64 of user:password.',
  },
  CX_IDENTITY_WINDOWS_AUTH_MALFORMED: {
    status: 400,
    summary: 'The Authorization header says NTLM or Negotiate but its token cannot be read.',
  },
  CX_IDENTITY_QUERY_MALFORMED: {
    status: 400,
    summary: 'The query string the protocol routes on is malformed (ActiveSync command line, RPC target).',
  },
  CX_IDENTITY_DEVICE_ID: {
    status: 400,
    summary: 'The ActiveSync DeviceId is not 1 to 32 letters or digits.',
  },
  CX_IDENTITY_RPC_PORT: {
    status: 400,
    summary: 'The Outlook Anywhere target port is not 6001, 6002 or 6004.',
  },
  CX_IDENTITY_MAILBOX_ID: { status: 400, summary: 'The MailboxId is not <mailbox GUID>@<domain>.' },
  CX_IDENTITY_ADDRESS: { status: 400, summary: 'The address the request names is not an SMTP address.' },
  CX_IDENTITY_PATH_MALFORMED: {
    status: 400,
    summary: 'The path does not have the shape the protocol needs (OAB GUID, Autodiscover JSON address).',
  },
  CX_IDENTITY_BODY_TOO_LARGE: {
    status: 413,
    summary: 'The request body to read the identity from is too large.',
  },
  CX_IDENTITY_BODY_MALFORMED: {
    status: 400,
    summary: 'The request body is not the XML or form the protocol expects, or lacks the address.',
  },
  CX_IDENTITY_XML_DTD: {
    status: 400,
    summary: 'The XML body has a DOCTYPE, ENTITY or other markup declaration, which coexist refuses.',
  },
  // Routing outcomes (refuse decisions)
  CX_ROUTE_UNKNOWN_MAILBOX: { status: 404, summary: 'The directory has no mailbox for the user.' },
  CX_ROUTE_NOT_OFFERED: { status: 404, summary: 'The protocol is not offered for the mailbox version.' },
  CX_ROUTE_NO_CAS_IN_SITE: {
    status: 503,
    summary: "No Client Access server of the mailbox's version in its site.",
  },
  CX_ROUTE_NO_URL: { status: 503, summary: 'The next hop has no URL for the protocol in the estate.' },
  CX_ROUTE_NO_REDIRECT_TARGET: {
    status: 503,
    summary: 'A redirect is required but the estate names no target.',
  },
  CX_ROUTE_VERSION_MISMATCH: { status: 421, summary: 'The server cannot serve a mailbox of that version.' },
  CX_ROUTE_NOT_HERE: {
    status: 421,
    summary: 'The request reached a mailbox server that does not hold the mailbox.',
  },
  CX_ROUTE_LOOP: {
    status: 508,
    summary: 'Unfolding the flow revisited a server: the estate routes in a circle.',
  },
  // Upstream (the next hop failed; src/dataplane/upstream-errors.ts maps errors to these)
  CX_UPSTREAM_CONNECT_REFUSED: { status: 502, summary: 'The next hop refused the connection.' },
  CX_UPSTREAM_CONNECT_TIMEOUT: { status: 502, summary: 'The connection to the next hop timed out.' },
  CX_UPSTREAM_HOST_UNREACHABLE: { status: 502, summary: 'There is no network route to the next hop.' },
  CX_UPSTREAM_DNS: { status: 502, summary: "The next hop's host name does not resolve." },
  CX_UPSTREAM_TLS: {
    status: 502,
    summary: 'The TLS handshake with the next hop failed (certificate not trusted, name mismatch, expired).',
  },
  CX_UPSTREAM_LOCAL_EXHAUSTED: {
    status: 503,
    summary: 'coexist ran out of file descriptors or local ports to connect to the next hop.',
  },
  CX_UPSTREAM_POOL_CLOSED: {
    status: 503,
    summary: 'The connection pool to the next hop was closed (shutdown or reload) before the request ended.',
  },
  CX_UPSTREAM_HEADERS_TIMEOUT: {
    status: 504,
    summary: 'The next hop took the request but did not answer within the headers timeout.',
  },
  CX_UPSTREAM_BODY_TIMEOUT: {
    status: 504,
    summary: "The next hop's response body stalled longer than the body timeout.",
  },
  CX_UPSTREAM_TIMEOUT: {
    status: 504,
    summary:
      'The connection to the next hop timed out after the request was sent, or the request ran past its deadline.',
  },
  CX_UPSTREAM_CONNECTION_RESET: {
    status: 502,
    summary: 'The next hop closed or reset the connection before its response was complete.',
  },
  CX_UPSTREAM_PROTOCOL: {
    status: 502,
    summary: 'The next hop answered with a response that is not valid HTTP or exceeds a limit.',
  },
  CX_UPSTREAM_REQUEST_BODY: {
    status: 400,
    summary: 'The request body did not match its Content-Length while it was sent to the next hop.',
  },
  CX_UPSTREAM_REQUEST_REJECTED: {
    status: 500,
    summary: 'The HTTP client refused to send the request (an invalid or unsupported header): a coexist bug.',
  },
  CX_UPSTREAM_CLIENT_ABORTED: {
    status: 499,
    summary: 'The client went away before the answer was complete; nothing is sent (logged as 499).',
  },
  // The front door's own answers (src/dataplane)
  CX_HTTP_NOT_FOUND: { status: 404, summary: 'The path belongs to no protocol coexist serves.' },
  CX_HTTP_MALFORMED: { status: 400, summary: 'The request is not well-formed HTTP/1.1.' },
  CX_HTTP_HEADERS_TOO_LARGE: {
    status: 431,
    summary: 'The request head is larger, or has more header fields, than this server accepts.',
  },
  CX_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    summary: 'The request head did not arrive in time, or the request body stalled.',
  },
  CX_HTTP_CONNECTION_LIMIT: {
    status: 0,
    summary: 'A connection was closed at accept: the server, or its source, holds as many as allowed.',
  },
  CX_HTTP_TLS_TIMEOUT: { status: 0, summary: 'The TLS handshake did not finish in time.' },
  CX_HTTP_MISDIRECTED: {
    status: 421,
    summary: 'The Host (or the TLS server name) names a host this server does not answer for.',
  },
  CX_HTTP_CROSS_SITE: {
    status: 403,
    summary: 'A state-changing OWA or ECP request came from another site (Origin, Sec-Fetch-Site).',
  },
  CX_AUTH_REQUIRED: { status: 401, summary: 'The request carries no credentials coexist accepts.' },
  CX_AUTH_FAILED: { status: 401, summary: 'The user name or password is wrong.' },
  CX_AUTH_WINDOWS_REROUTED: {
    status: 401,
    summary:
      'An NTLM or Negotiate handshake began at one next hop and its AUTHENTICATE routes to another: the client must send X-AnchorMailbox.',
  },
  CX_AUTH_KERBEROS_NOT_FORWARDABLE: {
    status: 401,
    summary:
      "A Kerberos ticket for the front ends' service principal routes to a next hop that is not coexist: it cannot be replayed there, so NTLM is offered instead.",
  },
  CX_AUTH_ACCESS_DENIED: {
    status: 403,
    summary: 'The caller may not open the mailbox the request names.',
  },
  CX_DIRECTORY_UNAVAILABLE: { status: 503, summary: 'The directory could not be asked.' },
  CX_ROUTE_NO_STORE: { status: 501, summary: 'This server has no mailbox store to answer from.' },
  CX_HTTP_INTERNAL: { status: 500, summary: 'coexist failed while handling the request.' },
  CX_UPSTREAM_ERROR: {
    status: 502,
    summary: 'The request to the next hop failed for a reason coexist does not know.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;

export const statusOf = (code: ErrorCode): number => catalogue[code].status;

/**
 * The exit code of a command that ends with this error (docs/errors.md "Exit codes"): 2 for bad input (the
 * command line, the estate file, discover's exports), 1 for everything else.
 */
export const exitCodeOf = (code: ErrorCode): 1 | 2 => (/^CX_(CLI|CONFIG|DISCOVER)_/.test(code) ? 2 : 1);

/** The one error class of coexist: a catalogue code, structured details, and an optional cause. */
export class CoexistError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CoexistError';
    this.code = code;
    this.details = details;
  }
}
