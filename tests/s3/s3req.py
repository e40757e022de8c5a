#!/usr/bin/python3
"""Tiny S3 client for the tests: one SigV4-signed request, standard library only.

Usage:
  s3req.py [options] METHOD PATH
    METHOD   GET PUT HEAD DELETE POST, or LIST (ListObjectsV2: PATH is the bucket)
    PATH     /bucket or /bucket/key (path-style; the key is URI-encoded here)
  options:
    -H 'Name: value'    extra request header (repeatable; x-amz-* ones are signed)
    -q name=value       query parameter (repeatable), e.g. -q prefix=a/ -q delimiter=/
    -d DATA             request body (a string)
    -f FILE             request body from FILE ('-' for stdin)
    -i                  print the response headers too
    -o FILE             write the response body to FILE instead of stdout
    --unsigned-payload  send x-amz-content-sha256: UNSIGNED-PAYLOAD

Prints "HTTP <status>" on the first line, then (with -i) the response headers,
a blank line, and the body.  Exit status: 0 for 2xx, 1 for any other HTTP
status, 2 when no answer could be had.

Credentials and endpoint come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_ENDPOINT_URL (http://host:port) and AWS_REGION (us-east-1), as written to
DIR/env by rgw.sh start.  As a module: request(method, path, ...) returns
(status, headers, body).
"""

import datetime
import hashlib
import hmac
import http.client
import os
import sys
import urllib.parse


def _quote(s, safe):
    return urllib.parse.quote(s, safe=safe)


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def request(method, path, query=None, headers=None, body=b"", endpoint=None,
            access_key=None, secret_key=None, region=None, unsigned_payload=False,
            timeout=30):
    """Send one signed request; return (status, headers dict lower-cased, body bytes)."""
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:7480")
    access_key = access_key or os.environ["AWS_ACCESS_KEY_ID"]
    secret_key = secret_key if secret_key is not None else os.environ["AWS_SECRET_ACCESS_KEY"]
    region = region or os.environ.get("AWS_REGION", "us-east-1")
    query = list(query or [])
    headers = dict(headers or {})
    if isinstance(body, str):
        body = body.encode()

    url = urllib.parse.urlsplit(endpoint)
    host = url.netloc
    canon_path = _quote(path if path.startswith("/") else "/" + path, "/-_.~")
    canon_query = "&".join(
        "%s=%s" % (_quote(k, "-_.~"), _quote(v, "-_.~")) for k, v in sorted(query))

    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    payload_hash = "UNSIGNED-PAYLOAD" if unsigned_payload else hashlib.sha256(body).hexdigest()

    headers["Host"] = host
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    signed = {k.lower().strip(): " ".join(str(v).split())
              for k, v in headers.items()
              if k.lower() == "host" or k.lower().startswith("x-amz-")}
    signed_names = ";".join(sorted(signed))
    canon_headers = "".join("%s:%s\n" % (k, signed[k]) for k in sorted(signed))
    canon_request = "\n".join(
        [method, canon_path, canon_query, canon_headers, signed_names, payload_hash])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canon_request.encode()).hexdigest()])
    k = _sign(("AWS4" + secret_key).encode(), date)
    k = _sign(k, region)
    k = _sign(k, "s3")
    k = _sign(k, "aws4_request")
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (access_key, scope, signed_names, signature))
    if body or method in ("PUT", "POST"):
        headers["Content-Length"] = str(len(body))

    target = canon_path + ("?" + canon_query if canon_query else "")
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def main(argv):
    args = list(argv)
    headers, query, body = {}, [], b""
    show_headers, outfile, unsigned = False, None, False
    pos = []
    while args:
        a = args.pop(0)
        if a == "-H":
            name, _, value = args.pop(0).partition(":")
            headers[name.strip()] = value.strip()
        elif a == "-q":
            name, _, value = args.pop(0).partition("=")
            query.append((name, value))
        elif a == "-d":
            body = args.pop(0).encode()
        elif a == "-f":
            f = args.pop(0)
            body = sys.stdin.buffer.read() if f == "-" else open(f, "rb").read()
        elif a == "-i":
            show_headers = True
        elif a == "-o":
            outfile = args.pop(0)
        elif a == "--unsigned-payload":
            unsigned = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            pos.append(a)
    if len(pos) != 2:
        sys.stderr.write(__doc__)
        return 2
    method, path = pos[0].upper(), pos[1]
    if method == "LIST":
        method = "GET"
        path = "/" + path.strip("/")
        query.insert(0, ("list-type", "2"))
    try:
        status, rheaders, data = request(method, path, query, headers, body,
                                         unsigned_payload=unsigned)
    except (OSError, http.client.HTTPException) as e:
        sys.stderr.write("s3req: %s %s: %s\n" % (method, path, e))
        return 2
    out = sys.stdout.buffer
    out.write(b"HTTP %d\n" % status)
    if show_headers:
        for k, v in rheaders.items():
            out.write(("%s: %s\n" % (k, v)).encode())
        out.write(b"\n")
    if outfile:
        with open(outfile, "wb") as f:
            f.write(data)
    else:
        out.write(data)
        if data and not data.endswith(b"\n"):
            out.write(b"\n")
    out.flush()
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
