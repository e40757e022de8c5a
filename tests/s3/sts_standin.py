#!/usr/bin/python3
"""A stand-in for AWS STS on loopback, for the credential tests (the S3
test server has no STS).  Standard library only.

Usage:
  sts_standin.py --port-file FILE --source AK:SK --issue AK:SK
                 [--role ARN] [--session NAME] [--external-id ID]
                 [--duration N] [--ttl SECONDS] [--log FILE]

Listens on 127.0.0.1 (a free port, written to --port-file once it
listens).  Answers POST AssumeRole (form body, Version 2011-06-15) only
when the request is SigV4-signed for service "sts" by the --source key
pair (signature recomputed here from the request as it arrived: method,
path, the signed headers, the SHA-256 of the body), x-amz-date is within
15 minutes of now, host and content-type are signed, and RoleArn,
RoleSessionName, ExternalId and DurationSeconds are the ones given
(a missing option means "any"; --external-id/--duration also require the
parameter to be sent).  The answer is AWS's AssumeRoleResponse XML whose
Credentials are the --issue pair (the S3 test server's own keys), a new
SessionToken per answer, and an Expiration --ttl seconds from now
(default: the DurationSeconds asked, else 3600; a short ttl makes the
client refresh soon).  Anything else gets the ErrorResponse XML AWS sends
(SignatureDoesNotMatch, InvalidClientTokenId, ValidationError,
AccessDenied, RequestExpired).  Each answer appends one line to --log:
"ok <n>" or the error code.
"""

import argparse
import datetime
import hashlib
import hmac
import http.server
import os
import re
import sys
import threading
import urllib.parse

NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signature(secret, amz_date, region, service, canonical_request):
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical_request.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    k = _hmac(k, region)
    k = _hmac(k, service)
    k = _hmac(k, "aws4_request")
    return hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
    r" ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$")


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.served = 0

    def log(self, line):
        if self.args.log:
            with self.lock, open(self.args.log, "a") as f:
                f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *args):  # quiet: no secrets on stderr either
        pass

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "standin-%d" % self.state.served)
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, status, code, message):
        self.state.log(code)
        self.answer(status, (
            '<ErrorResponse xmlns="%s"><Error><Type>Sender</Type>'
            "<Code>%s</Code><Message>%s</Message></Error>"
            "<RequestId>standin-error</RequestId></ErrorResponse>")
            % (NS, code, message))

    def do_GET(self):
        self.refuse(400, "InvalidAction", "only POST AssumeRole here")

    def do_POST(self):
        a = self.state.args
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        m = AUTH_RE.match(self.headers.get("Authorization", ""))
        amz_date = self.headers.get("X-Amz-Date", "")
        if not m or not amz_date:
            return self.refuse(400, "MissingAuthenticationToken",
                               "Request is missing Authentication Token")
        key, day, region, service, signed, sig = m.groups()
        if service != "sts" or day != amz_date[:8]:
            return self.refuse(400, "IncompleteSignature",
                               "Credential scope is not for sts")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return self.refuse(400, "IncompleteSignature", "bad X-Amz-Date")
        skew = abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
        if skew > 900:
            return self.refuse(403, "RequestExpired", "Request has expired")
        src_key, _, src_secret = a.source.partition(":")
        if key != src_key:
            return self.refuse(403, "InvalidClientTokenId",
                               "The security token included in the request is invalid")
        names = signed.split(";")
        if "host" not in names or "content-type" not in names:
            return self.refuse(403, "SignatureDoesNotMatch",
                               "host and content-type must be signed")
        canon_headers = ""
        for n in names:
            v = self.headers.get(n)
            if v is None:
                return self.refuse(403, "SignatureDoesNotMatch",
                                   "signed header %s not sent" % n)
            canon_headers += "%s:%s\n" % (n, " ".join(v.split()))
        path = urllib.parse.urlsplit(self.path).path or "/"
        creq = "\n".join([self.command, path, "", canon_headers, signed,
                          hashlib.sha256(body).hexdigest()])
        if not hmac.compare_digest(
                signature(src_secret, amz_date, region, "sts", creq), sig):
            return self.refuse(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not "
                               "match the signature you provided")
        if not self.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"):
            return self.refuse(400, "ValidationError", "not a form")
        form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        if form.get("Action") != "AssumeRole" or form.get("Version") != "2011-06-15":
            return self.refuse(400, "InvalidAction", "only AssumeRole 2011-06-15")
        if not form.get("RoleArn") or (a.role and form["RoleArn"] != a.role):
            return self.refuse(403, "AccessDenied", "not allowed to assume this role")
        if not form.get("RoleSessionName") or (
                a.session and form["RoleSessionName"] != a.session):
            return self.refuse(400, "ValidationError", "bad RoleSessionName")
        if a.external_id is not None and form.get("ExternalId") != a.external_id:
            return self.refuse(403, "AccessDenied", "ExternalId does not match")
        asked = int(form.get("DurationSeconds", "3600"))
        if a.duration is not None and (
                "DurationSeconds" not in form or asked != a.duration):
            return self.refuse(400, "ValidationError", "bad DurationSeconds")
        ttl = a.ttl if a.ttl is not None else asked
        with self.state.lock:
            self.state.served += 1
            n = self.state.served
        issue_key, _, issue_secret = a.issue.partition(":")
        expires = (datetime.datetime.now(datetime.timezone.utc) +
                   datetime.timedelta(seconds=ttl)).strftime("%Y-%m-%dT%H:%M:%SZ")
        token = "FwoGZXIvYXdzEStandIn%06dSessionToken%s" % (n, os.urandom(8).hex())
        self.state.log("ok %d" % n)
        self.answer(200, (
            '<AssumeRoleResponse xmlns="%s"><AssumeRoleResult>'
            "<AssumedRoleUser><AssumedRoleId>AROASTANDIN:%s</AssumedRoleId>"
            "<Arn>%s/%s</Arn></AssumedRoleUser>"
            "<Credentials><AccessKeyId>%s</AccessKeyId>"
            "<SecretAccessKey>%s</SecretAccessKey>"
            "<SessionToken>%s</SessionToken>"
            "<Expiration>%s</Expiration></Credentials>"
            "</AssumeRoleResult><ResponseMetadata><RequestId>standin-%d"
            "</RequestId></ResponseMetadata></AssumeRoleResponse>")
            % (NS, form["RoleSessionName"], form["RoleArn"].replace(":role/", ":assumed-role/"),
               form["RoleSessionName"], issue_key, issue_secret, token, expires, n))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--issue", required=True)
    p.add_argument("--role")
    p.add_argument("--session")
    p.add_argument("--external-id")
    p.add_argument("--duration", type=int)
    p.add_argument("--ttl", type=int)
    p.add_argument("--log")
    args = p.parse_args(argv)
    Handler.state = State(args)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
