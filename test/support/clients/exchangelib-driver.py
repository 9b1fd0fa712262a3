"""Drive Debian's python3-exchangelib (4.9) against the coexist lab, with the lab as its only DNS.

Run with /usr/bin/python3 (Debian's interpreter, which sees the python3-exchangelib package). Input, all
in environment variables so that nothing secret is on the command line:

  COEXIST_LAB_HOSTS   JSON {"host:port": lab port}: the lab's DNS. Every name the client looks up, and every
                      connection it opens, goes through this map; a name or port not in it does not resolve.
  COEXIST_LAB_LISTEN  the address the lab listens on (127.0.0.1)
  COEXIST_LAB_SOURCE  optional source address to connect from (the lab's internal-client address)
  COEXIST_LAB_JOB     JSON {"email", "password", "endpoint"?: EWS URL (autodiscover off), "resolve": [names],
                      "impersonate"?: the primary address of the mailbox to open with access_type=IMPERSONATION
                      (the ExchangeImpersonation header; needs "endpoint"), "auth"?: "basic" (default) or "ntlm"
                      (python3-requests-ntlm; MD4 needs OpenSSL's legacy provider: OPENSSL_CONF),
                      "login"?: the user name to sign in with when not "email" (e.g. DOMAIN\\user for NTLM),
                      "version"?: "Exchange2007_SP1" (Configuration's version: no version probe)}
  REQUESTS_CA_BUNDLE  the lab CA (certificates are still checked against the real host names)
  TMPDIR              a temporary directory (exchangelib keeps its autodiscover cache there)

Output: one JSON object on stdout (what was discovered, the EWS outcome, and every HTTP exchange with the
request-id and X-Coexist-Path the lab answered with). Exit status 0 when every step worked, 1 otherwise.
"""

import json
import logging
import os
import socket
import sys
import traceback
import xml.etree.ElementTree as ET

HOSTS = {k.lower(): int(v) for k, v in json.loads(os.environ["COEXIST_LAB_HOSTS"]).items()}
LISTEN = os.environ.get("COEXIST_LAB_LISTEN", "127.0.0.1")
SOURCE = os.environ.get("COEXIST_LAB_SOURCE") or None
JOB = json.loads(os.environ["COEXIST_LAB_JOB"])
LAB_NAMES = {k.rsplit(":", 1)[0] for k in HOSTS}

events = []  # DNS answers and HTTP exchanges, in the order they happened

# ---------------------------------------------------------------------------------------------------
# The lab's DNS, installed before exchangelib (and with it requests/urllib3) is imported.

_getaddrinfo = socket.getaddrinfo


def lab_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = socket.getservbyname(str(port), "tcp")
    key = f"{name.lower().rstrip('.')}:{number}"
    if key not in HOSTS:
        raise socket.gaierror(socket.EAI_NONAME, f"lab DNS: no listener for {key}")
    return _getaddrinfo(LISTEN, HOSTS[key], family, type, proto, flags)


socket.getaddrinfo = lab_getaddrinfo

try:
    import exchangelib
    import requests.adapters
    import urllib3.util.connection
    from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials
    from exchangelib.autodiscover import clear_cache
    from exchangelib.autodiscover.discovery.base import BaseAutodiscovery
    from exchangelib.errors import TransportError
except ImportError as e:
    print(
        json.dumps({"ok": False, "error": {"type": "ImportError", "message": f"{e} (install python3-exchangelib)"}})
    )
    sys.exit(1)

# exchangelib logs failed requests with their headers (credentials included) at ERROR; the result carries the
# error instead.
logging.getLogger("exchangelib").addHandler(logging.NullHandler())
logging.getLogger("exchangelib").propagate = False

if SOURCE:
    _create_connection = urllib3.util.connection.create_connection

    def create_connection_from_source(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kw):
        return _create_connection(address, timeout, source_address or (SOURCE, 0), **kw)

    urllib3.util.connection.create_connection = create_connection_from_source


# exchangelib checks each autodiscover host with an A query through dnspython, which reads neither
# /etc/hosts nor getaddrinfo; ask the lab's DNS instead. The lab publishes no SRV records.
def ensure_valid_hostname(self, url):
    from urllib.parse import urlparse

    host = urlparse(url).netloc.lower()
    found = host in LAB_NAMES
    events.append({"kind": "dns", "query": f"{host} A", "found": found})
    if not found:
        raise TransportError(f"{host!r} has no DNS entry")


def get_srv_records(self, hostname):
    events.append({"kind": "dns", "query": f"{hostname} SRV", "found": False})
    return []


BaseAutodiscovery._ensure_valid_hostname = ensure_valid_hostname
BaseAutodiscovery._get_srv_records = get_srv_records

# ---------------------------------------------------------------------------------------------------
# Every HTTP exchange, as the client saw it.

SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
TYPES = "{http://schemas.microsoft.com/exchange/services/2006/types}"


def local(tag):
    return tag.rsplit("}", 1)[-1]


def describe_body(body):
    """What a request body asks: the SOAP operation and RequestServerVersion, or the POX request."""
    if not body:
        return {}
    try:
        root = ET.fromstring(body if isinstance(body, bytes) else body.encode())
    except ET.ParseError:
        return {"body": "not XML"}
    if root.tag == SOAP + "Envelope":
        out = {}
        header = root.find(SOAP + "Header")
        if header is not None:
            version = header.find(TYPES + "RequestServerVersion")
            if version is not None:
                out["requestServerVersion"] = version.get("Version")
            action = header.find("{http://www.w3.org/2005/08/addressing}Action")
            if action is not None:
                out["action"] = action.text
        soap_body = root.find(SOAP + "Body")
        if soap_body is not None and len(soap_body):
            op = soap_body[0]
            out["operation"] = local(op.tag)
            shape = op.find(f".//{TYPES}BaseShape")
            if shape is not None:
                fields = [e.get("FieldURI") for e in op.iter() if local(e.tag) == "FieldURI"]
                out["shape"] = "+".join([shape.text] + fields)
            ids = [e.get("Id") for e in op.iter() if local(e.tag) == "DistinguishedFolderId"]
            if ids:
                out["folders"] = ids
        if header is not None:
            sid = header.find(f"{TYPES}ExchangeImpersonation/{TYPES}ConnectingSID")
            if sid is not None and len(sid):
                out["impersonation"] = f"{local(sid[0].tag)}={sid[0].text}"
        return out
    if local(root.tag) == "Autodiscover":
        ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""
        return {
            "autodiscover": ns,
            "acceptableResponseSchema": root.findtext(f".//{{{ns}}}AcceptableResponseSchema"),
            "emailAddress": root.findtext(f".//{{{ns}}}EMailAddress"),
        }
    return {"body": local(root.tag)}


_send = requests.adapters.HTTPAdapter.send


def recording_send(self, request, *args, **kwargs):
    event = {
        "kind": "http",
        "method": request.method,
        "url": request.url,
        "authorization": (request.headers.get("Authorization") or "").split(" ")[0] or None,
        "soapAction": request.headers.get("SOAPAction"),
        **describe_body(request.body),
    }
    events.append(event)
    try:
        response = _send(self, request, *args, **kwargs)
    except Exception as e:
        event["error"] = f"{type(e).__name__}: {e}"
        raise
    event["status"] = response.status_code
    anchor = request.headers.get("X-AnchorMailbox")
    if anchor is not None:
        event["anchor"] = anchor
    for name, key in (
        ("request-id", "requestId"),
        ("X-Coexist-Path", "path"),
        ("X-BEServer", "beServer"),
        ("X-SOAP-Enabled", "soapEnabled"),
    ):
        value = response.headers.get(name)
        if value is not None:
            event[key] = value
    return response


requests.adapters.HTTPAdapter.send = recording_send

# ---------------------------------------------------------------------------------------------------
# The job


def run():
    result = {"client": f"exchangelib {exchangelib.__version__}", "ok": False}
    clear_cache()
    credentials = Credentials(username=JOB.get("login") or JOB["email"], password=JOB["password"])
    auth_type = NTLM if JOB.get("auth") == "ntlm" else BASIC
    try:
        if JOB.get("endpoint"):
            version = None
            if JOB.get("version") == "Exchange2007_SP1":
                from exchangelib.version import EXCHANGE_2007_SP1, Version

                version = Version(build=EXCHANGE_2007_SP1, api_version="Exchange2007_SP1")
            config = Configuration(
                service_endpoint=JOB["endpoint"], credentials=credentials, auth_type=auth_type, version=version
            )
            account = Account(
                primary_smtp_address=JOB.get("impersonate") or JOB["email"],
                config=config,
                autodiscover=False,
                access_type=IMPERSONATION if JOB.get("impersonate") else DELEGATE,
            )
        else:
            config = Configuration(credentials=credentials, auth_type=auth_type)
            account = Account(
                primary_smtp_address=JOB["email"], config=config, autodiscover=True, access_type=DELEGATE
            )
            ad = account.ad_response
            result["autodiscover"] = {
                "ewsUrl": ad.protocol.ews_url,
                "protocolType": ad.protocol.type,
                "smtpAddress": ad.autodiscover_smtp_address,
                "protocols": [
                    {
                        "type": p.type,
                        "ewsUrl": p.ews_url,
                        "serverVersion": None if p.server_version is None else str(p.server_version),
                    }
                    for p in ad.account.protocols
                ],
            }
        result["endpoint"] = account.protocol.service_endpoint
        version = account.version
        result["version"] = {"build": str(version.build), "api": version.api_version}
        result["discoveryEnd"] = len(events)
        names = account.protocol.resolve_names(JOB.get("resolve", []))
        result["resolveNames"] = [{"name": m.name, "emailAddress": m.email_address} for m in names]
        inbox = account.inbox
        result["inbox"] = {"name": inbox.name, "totalCount": inbox.total_count, "unreadCount": inbox.unread_count}
        result["ok"] = True
    except Exception as e:
        result["error"] = {
            "type": type(e).__name__,
            "message": str(e)[:2000],
            "where": traceback.format_exc(limit=-3)[-2000:],
        }
    result["events"] = events
    return result


if __name__ == "__main__":
    out = run()
    print(json.dumps(out, default=str))
    sys.exit(0 if out["ok"] else 1)
