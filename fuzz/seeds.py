#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from the unit and end-to-end
tests' inputs (requests signed in the AWS documentation and by botocore,
aws-chunked bodies, XML documents, POST forms, bucket policies, router lines).

    python3 fuzz/seeds.py

The input formats are documented in crates/cloudmux-s3/src/fuzzing.rs. Seeds
are deterministic; the script replaces the seed directories it writes (not
fuzz/corpus-local/, where runs keep what they grow, nor fuzz/regressions/).
"""

import base64
import calendar
import email.utils
import hashlib
import hmac
import json
import re
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S3 = ROOT / "crates/cloudmux-s3/src"
CORE = ROOT / "crates/cloudmux-core/src"
OUT = ROOT / "fuzz/corpus"

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAY_24_2013 = 1369353600
BUCKET = "fuzz-bucket"
POST_BUCKET = "post-bucket"
# Account::new("fuzz", ..): hex(sha256("cloudmux-account:fuzz")).
FUZZ_ID = hashlib.sha256(b"cloudmux-account:fuzz").hexdigest()

corpora: dict[str, dict[str, bytes]] = {}


def seed(target: str, name: str, data) -> None:
    if isinstance(data, str):
        data = data.encode()
    corpora.setdefault(target, {})[name] = data


def request(method, target, headers, body=b"", now=None, vhost=None):
    """The *request* input format of fuzzing.rs."""
    out = b""
    if now is not None:
        out += f"@{now}{' ' + vhost if vhost else ''}\n".encode()
    out += f"{method} {target}\n".encode()
    for name, value in headers:
        out += f"{name}: {value}\n".encode()
    out += b"\n"
    return out + (body.encode() if isinstance(body, str) else body)


def http_time(value: str) -> int:
    return int(email.utils.parsedate_to_datetime(value).timestamp())


def hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(date: str) -> bytes:
    key = ("AWS4" + SECRET).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac256(key, part)
    return key


def v2_sign(string_to_sign: str) -> str:
    mac = hmac.new(SECRET.encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def v4_auth(signed, signature):
    return (f"AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request, "
            f"SignedHeaders={signed}, Signature={signature}")


# ---- auth: the AWS documentation's SigV4 and SigV2 examples -----------------

GET_OBJECT = [
    ("host", "examplebucket.s3.amazonaws.com"),
    ("range", "bytes=0-9"),
    ("x-amz-content-sha256", EMPTY),
    ("x-amz-date", "20130524T000000Z"),
    ("authorization", v4_auth("host;range;x-amz-content-sha256;x-amz-date",
                              "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")),
]
seed("auth", "v4_doc_get_object", request("GET", "/test.txt", GET_OBJECT, now=MAY_24_2013))
seed("auth", "v4_unsigned_amz_header",
     request("GET", "/test.txt", GET_OBJECT + [("x-amz-meta-sneaky", "1")], now=MAY_24_2013))
seed("auth", "v4_doc_put_object", request("PUT", "/test%24file.text", [
    ("host", "examplebucket.s3.amazonaws.com"),
    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
    ("x-amz-date", "20130524T000000Z"),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    ("x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
    ("authorization", v4_auth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                              "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")),
], body="Welcome to Amazon S3.", now=MAY_24_2013))
for name, query, sig in [
    ("v4_doc_lifecycle", "lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
    ("v4_doc_list_objects", "max-keys=2&prefix=J",
     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
]:
    seed("auth", name, request("GET", "/?" + query, [
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY),
        ("authorization", v4_auth("host;x-amz-content-sha256;x-amz-date", sig)),
    ], now=MAY_24_2013))
PRESIGNED = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
             "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
             "X-Amz-SignedHeaders=host&X-Amz-Signature="
             "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
seed("auth", "v4_doc_presigned", request("GET", "/test.txt?" + PRESIGNED,
                                         [("host", "examplebucket.s3.amazonaws.com")], now=MAY_24_2013))
seed("auth", "v4a_presigned", request("GET", "/test.txt?" + PRESIGNED.replace(
    "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), [("host", "examplebucket.s3.amazonaws.com")],
    now=MAY_24_2013))
seed("auth", "v4_presigned_and_header", request("GET", "/test.txt?" + PRESIGNED, [
    ("host", "examplebucket.s3.amazonaws.com"),
    ("authorization", v4_auth("host", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")),
], now=MAY_24_2013))
seed("auth", "v4a_header", request("GET", "/", [
    ("authorization", "AWS4-ECDSA-P256-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/s3/aws4_request, "
                      "SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=abc"),
], now=MAY_24_2013))
seed("auth", "bearer", request("GET", "/", [("authorization", "Bearer abc")]))
seed("auth", "anonymous_streaming", request("PUT", "/b/k", [
    ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
    ("x-amz-trailer", "X-Amz-Checksum-CRC64NVME"),
    ("x-amz-decoded-content-length", "5"),
], body="5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:AAAAAAAAAAA=\r\n\r\n"))

# The chunked upload example: the seed signature of its headers.
DOC_CHUNKED = [
    ("host", "s3.amazonaws.com"),
    ("x-amz-date", "20130524T000000Z"),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    ("content-encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
    ("content-length", "66824"),
    ("authorization", v4_auth(
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")),
]
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"

# The signed-trailer request of the decoder tests (chunked_tests.rs), signed.
TRAILER_SIGNED = ("content-encoding;host;x-amz-content-sha256;x-amz-date;"
                  "x-amz-decoded-content-length;x-amz-trailer")
TRAILER_HEADERS = [
    ("host", "localhost:9000"),
    ("x-amz-date", "20130524T000000Z"),
    ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
    ("content-encoding", "gzip,aws-chunked"),
    ("x-amz-decoded-content-length", "11"),
    ("x-amz-trailer", "x-amz-checksum-crc32"),
]
canonical = "\n".join([
    "PUT", "/bucket/key", "",
    *[f"{n}:{v}" for n, v in sorted(TRAILER_HEADERS)], "",
    TRAILER_SIGNED, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
])
string_to_sign = "\n".join([
    "AWS4-HMAC-SHA256", "20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
    hashlib.sha256(canonical.encode()).hexdigest(),
])
TRAILER_SEED = hmac256(signing_key("20130524"), string_to_sign).hex()
TRAILER_REQUEST = TRAILER_HEADERS + [("authorization", v4_auth(TRAILER_SIGNED, TRAILER_SEED))]


def signed_body(seed_sig, chunks, trailer=None, sign_trailer=False):
    """A signed aws-chunked body chained from seed_sig (chunked_tests.rs)."""
    key = signing_key("20130524")
    scope = "20130524/us-east-1/s3/aws4_request"
    previous = seed_sig
    body = b""
    for data in list(chunks) + [b""]:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", "20130524T000000Z", scope, previous, EMPTY,
                         hashlib.sha256(data).hexdigest()])
        previous = hmac256(key, sts).hex()
        body += f"{len(data):x};chunk-signature={previous}\r\n".encode()
        if data:
            body += data + b"\r\n"
    if trailer:
        name, value = trailer
        body += f"{name}:{value}\r\n".encode()
        if sign_trailer:
            line = f"{name}:{value}\n".encode()
            sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", "20130524T000000Z", scope, previous,
                             hashlib.sha256(line).hexdigest()])
            body += f"x-amz-trailer-signature:{hmac256(key, sts).hex()}\r\n".encode()
    return body + b"\r\n"


CRC = ("x-amz-checksum-crc32", "DUoRhQ==")
HELLO_SIGNED = signed_body(TRAILER_SEED, [b"hello", b" world"], CRC, True)
seed("auth", "v4_streaming_signed_trailer",
     request("PUT", "/bucket/key", TRAILER_REQUEST, body=HELLO_SIGNED, now=MAY_24_2013))
seed("auth", "v4_doc_chunked_headers", request("PUT", "/examplebucket/chunkObject.txt", DOC_CHUNKED,
                                               body=signed_body(DOC_SEED, [b"a" * 16]),
                                               now=MAY_24_2013))

# SigV2 (the "johnsmith" examples) and a SigV2 presigned URL.
for name, method, path, query, headers, sig, now in [
    ("v2_doc_object_get", "GET", "/photos/puppy.jpg", None,
     [("date", "Tue, 27 Mar 2007 19:36:42 +0000")], "bWq2s1WEIj+Ydj0vQ697zp+IXMU=", http_time("Tue, 27 Mar 2007 19:36:42 +0000")),
    ("v2_doc_object_put", "PUT", "/photos/puppy.jpg", None,
     [("content-type", "image/jpeg"), ("content-length", "94328"),
      ("date", "Tue, 27 Mar 2007 21:15:45 +0000")], "MyyxeRY7whkBe+bq8fHCL/2kKUg=", http_time("Tue, 27 Mar 2007 21:15:45 +0000")),
    ("v2_doc_list", "GET", "/", "prefix=photos&max-keys=50&marker=puppy",
     [("user-agent", "Mozilla/5.0"), ("date", "Tue, 27 Mar 2007 19:42:41 +0000")],
     "htDYFYduRNen8P9ZfE/s9SuKy0U=", http_time("Tue, 27 Mar 2007 19:42:41 +0000")),
    ("v2_doc_fetch_acl", "GET", "/", "acl",
     [("date", "Tue, 27 Mar 2007 19:44:46 +0000")], "c2WLPFtWHVgbEmeEG93a4cG37dM=", http_time("Tue, 27 Mar 2007 19:44:46 +0000")),
    ("v2_mismatch_subresources", "GET", "/photos/puppy.jpg", "versionId=7&foo=bar",
     [("date", "Tue, 27 Mar 2007 19:36:42 +0000"), ("x-amz-meta-b", "2"), ("x-amz-meta-a", " 1 ")],
     "bWq2s1WEIj+Ydj0vQ697zp+IXMU=", http_time("Tue, 27 Mar 2007 19:36:42 +0000")),
]:
    target = path + ("?" + query if query else "")
    seed("auth", name, request(method, target, [("host", "johnsmith.s3.amazonaws.com")] + headers + [
        ("authorization", f"AWS {AKID}:{sig}")], now=now, vhost="johnsmith"))
seed("auth", "v2_doc_delete_amz_date", request("DELETE", "/johnsmith/photos/puppy.jpg", [
    ("host", "s3.amazonaws.com"), ("user-agent", "dotnet"),
    ("date", "Tue, 27 Mar 2007 21:20:27 +0000"), ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"),
    ("authorization", f"AWS {AKID}:lx3byBScXR6KzyMaifNkardMwNk="),
], now=http_time("Tue, 27 Mar 2007 21:20:26 +0000")))
seed("auth", "v2_malformed", request("GET", "/", [("authorization", "AWS nocolon")]))
EXPIRES = 1700000000
v2sig = v2_sign(f"GET\n\n\n{EXPIRES}\n/bkt/x%20y")
quoted = "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in v2sig)
seed("auth", "v2_presigned", request(
    "GET", f"/bkt/x%20y?AWSAccessKeyId={AKID}&Expires={EXPIRES}&Signature={quoted}", [],
    now=EXPIRES - 10))

# The requests botocore signed (botocore_vectors.rs).
vectors = (S3 / "auth/botocore_vectors.rs").read_text()
for block in vectors.split("    Vector {")[1:]:
    field = lambda f: re.search(rf'{f}: "((?:[^"\\]|\\.)*)"', block).group(1)  # noqa: E731
    name, method, path, query = field("name"), field("method"), field("path"), field("query")
    headers = re.findall(r'\("([^"]+)", "((?:[^"\\]|\\.)*)"\)', block.split("headers:")[1].split("],")[0])
    body = bytes.fromhex(field("body_hex"))
    vbucket = re.search(r'virtual_bucket: Some\("([^"]+)"\)', block)
    values = {n.lower(): v for n, v in headers}
    # The clock of the request, as vector_time in sigv4_tests.rs takes it.
    if "X-Amz-Date=" in query:
        d = re.search(r"X-Amz-Date=(\d{8}T\d{6}Z)", query).group(1)
    elif "Expires=" in query:
        d = int(re.search(r"Expires=(\d+)", query).group(1)) - 3600
    elif "x-amz-date" in values:
        d = values["x-amz-date"]
    else:
        d = values["date"]
    if isinstance(d, str) and re.fullmatch(r"\d{8}T\d{6}Z", d):
        now = calendar.timegm(time.strptime(d, "%Y%m%dT%H%M%SZ"))
    elif isinstance(d, str):
        now = int(email.utils.parsedate_to_datetime(d).timestamp())
    else:
        now = d
    target = path + ("?" + query if query else "")
    seed("auth", "botocore_" + name,
         request(method, target, headers, body=body, now=now, vhost=vbucket.group(1) if vbucket else None))


# ---- aws_chunked --------------------------------------------------------------

def chunked(mode: int, piece: int, body: bytes) -> bytes:
    return bytes([ord("0") + mode, piece]) + body


doc_body = b""
for size, sig in [(65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
                  (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
                  (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")]:
    doc_body += f"{size:x};chunk-signature={sig}\r\n".encode() + b"a" * size
    doc_body += b"\r\n" if size else b""
doc_body += b"\r\n"
assert len(doc_body) == 66824
seed("aws_chunked", "doc_example", chunked(0, 0, doc_body))
seed("aws_chunked", "doc_example_pieces", chunked(0, 200, doc_body))
seed("aws_chunked", "signed_trailer", chunked(1, 0, HELLO_SIGNED))
seed("aws_chunked", "signed_trailer_bytewise", chunked(1, 1, HELLO_SIGNED))
seed("aws_chunked", "signed_trailer_pieces", chunked(1, 7, signed_body(
    TRAILER_SEED, [b"hel", b"lo wor", b"ld"], CRC, True)))
seed("aws_chunked", "signed_trailer_unsigned", chunked(1, 0, signed_body(TRAILER_SEED, [b"hello world"], CRC)))
for i, body in enumerate([
    b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
    b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n",
    b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==",
    b"6;chunk-signature=00\r\nhello \r\n5\r\nworld\r\n0\r\nX-Amz-Checksum-CRC32: DUoRhQ== \r\n\r\n",
    b"b\r\nhello world\r\n0\r\n\r\n",
]):
    seed("aws_chunked", f"unsigned_trailer_{i}", chunked(2, 3 if i % 2 else 0, body))
for i, body in enumerate([
    b"3\r\nabc\r\n0\r\n\r\n",
    b"3\nabc\n0\n\n",
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"3\r\nabcX\r\n0\r\n\r\n",
    b"3\r\nabc\r\n0\r\n\r\ngarbage",
    b"1000001\r\n",
    b"11111111111111111\r\n",
    b"3\r\nabc\r\n0\r\nno colon here\r\n\r\n",
]):
    seed("aws_chunked", f"unsigned_{i}", chunked(3, 0, body))


# ---- xml_bodies ---------------------------------------------------------------

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
for name, doc in [
    ("complete", f'<CompleteMultipartUpload{NS}><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part>'
                 "<Part><ETag>b</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32>"
                 "</Part></CompleteMultipartUpload>"),
    ("complete_bad_number", "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber>"
                            "<ETag>x</ETag></Part></CompleteMultipartUpload>"),
    ("complete_empty", "<CompleteMultipartUpload></CompleteMultipartUpload>"),
    ("complete_mismatched", "<CompleteMultipartUpload><Part><ETag>e</ETag></Part></Complete>"),
    ("delete", "<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object>"
               "<Object><Key>c</Key><VersionId>null</VersionId><ETag>\"e\"</ETag></Object></Delete>"),
    ("delete_typo", "<Delete><Object><Key>stay</Key></Objekt></Delete>"),
    ("create_bucket", f"<CreateBucketConfiguration{NS}><LocationConstraint>local"
                      "</LocationConstraint></CreateBucketConfiguration>"),
    ("tagging", '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Tagging{NS}><TagSet><Tag><Key>b</Key><Value>1 &amp; 2</Value></Tag>"
                "<Tag><Key>a</Key><Value></Value></Tag></TagSet></Tagging>"),
    ("tagging_valid", "<Tagging><TagSet><Tag><Key>project</Key><Value>blue</Value></Tag></TagSet></Tagging>"),
    ("tagging_no_value", "<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>"),
    ("acl_email", f"<AccessControlPolicy{NS}><Owner><ID>{FUZZ_ID}</ID></Owner><AccessControlList>"
                  f'<Grant><Grantee {XSI} xsi:type="AmazonCustomerByEmail"><EmailAddress>fuzz@example.com'
                  "</EmailAddress></Grantee><Permission>READ</Permission></Grant></AccessControlList>"
                  "</AccessControlPolicy>"),
    ("acl_full", f"<AccessControlPolicy{NS}><Owner><ID>{FUZZ_ID}</ID><DisplayName>fuzz</DisplayName>"
                 f'</Owner><AccessControlList><Grant><Grantee {XSI} xsi:type="CanonicalUser"><ID>{FUZZ_ID}'
                 "</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant><Grant>"
                 f'<Grantee {XSI} xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers'
                 "</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList>"
                 "</AccessControlPolicy>"),
    ("acl_bad_permission", f"<AccessControlPolicy><Owner><ID>{FUZZ_ID}</ID></Owner><AccessControlList>"
                           f"<Grant><Grantee><ID>{FUZZ_ID}</ID></Grantee><Permission>EVERYTHING</Permission>"
                           "</Grant></AccessControlList></AccessControlPolicy>"),
    ("acl_owner_only", f"<AccessControlPolicy><Owner><ID>{FUZZ_ID}</ID></Owner></AccessControlPolicy>"),
    ("acl_truncated", "<AccessControlPolicy><Owner>"),
    ("cors", "<CORSConfiguration><CORSRule><ID>r1</ID><AllowedOrigin>https://*.example.com</AllowedOrigin>"
             "<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>"
             "<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
             "<MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>"),
    ("cors_empty", "<CORSConfiguration></CORSConfiguration>"),
    ("cors_bad_method", "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                        "<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"),
    ("cors_no_origin", "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"
                       "</CORSConfiguration>"),
    ("public_access_block", f"<PublicAccessBlockConfiguration{NS}><BlockPublicAcls>true</BlockPublicAcls>"
                            "<IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>true"
                            "</BlockPublicPolicy><RestrictPublicBuckets>false</RestrictPublicBuckets>"
                            "</PublicAccessBlockConfiguration>"),
    ("public_access_block_empty", "<PublicAccessBlockConfiguration/>"),
    ("not_xml", "not xml"),
    ("doctype", '<?xml version="1.0"?><!DOCTYPE Tagging [<!ENTITY e "x">]><Tagging><TagSet><Tag>'
                "<Key>&e;</Key><Value>&#x41;</Value></Tag></TagSet></Tagging>"),
]:
    seed("xml_bodies", name, doc)


# ---- post_object --------------------------------------------------------------

BOUNDARY = "----cloudmuxboundary7MA4YWxkTrZu0gW"


def form(fields, file=b"hello", filename="a.txt", boundary=BOUNDARY):
    body = b""
    for k, v in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    if file is not None:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 "Content-Type: text/plain\r\n\r\n").encode() + file + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return boundary.encode() + b"\n" + body


def policy(conditions):
    doc = {"expiration": "2999-01-01T00:00:00.000Z", "conditions": conditions}
    return base64.b64encode(json.dumps(doc).encode()).decode()


POLICY = policy([{"bucket": POST_BUCKET}, ["starts-with", "$key", "up/"], {"acl": "private"},
                 ["content-length-range", 1, 10], ["eq", "$Content-Type", "text/plain"]])
seed("post_object", "anonymous_no_policy", form([("key", "up/${filename}")]))
seed("post_object", "anonymous_policy", form([
    ("key", "up/${filename}"), ("acl", "private"), ("Content-Type", "text/plain"), ("policy", POLICY)]))
seed("post_object", "v2_signed", form([
    ("key", "up/a"), ("acl", "private"), ("content-type", "text/plain"), ("AWSAccessKeyId", AKID),
    ("policy", POLICY), ("signature", v2_sign(POLICY))]))
v4_policy = policy([{"bucket": POST_BUCKET}, ["starts-with", "$key", ""],
                    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                    {"x-amz-credential": f"{AKID}/20300101/us-east-1/s3/aws4_request"},
                    {"x-amz-date": "20300101T000000Z"}, ["starts-with", "$x-amz-meta-tag", ""],
                    ["starts-with", "$tagging", ""], {"success_action_status": "201"}])
seed("post_object", "v4_signed", form([
    ("key", "k"), ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
    ("x-amz-credential", f"{AKID}/20300101/us-east-1/s3/aws4_request"),
    ("x-amz-date", "20300101T000000Z"), ("x-amz-meta-tag", "v"),
    ("tagging", "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"),
    ("success_action_status", "201"), ("policy", v4_policy),
    ("x-amz-signature", hmac256(signing_key("20300101"), v4_policy).hex())]))
seed("post_object", "expired_policy", form([("key", "k"), ("policy", base64.b64encode(
    b'{"expiration":"2000-01-01T00:00:00Z","conditions":[]}').decode())]))
seed("post_object", "empty_condition", form([("key", "k"), ("policy", base64.b64encode(
    b'{"expiration":"2999-01-01T00:00:00Z","conditions":[{}]}').decode())]))
seed("post_object", "bad_base64", form([("key", "k"), ("policy", "%%%")]))
seed("post_object", "no_file", form([("key", "k")], file=None))
seed("post_object", "redirect", form([("key", "k"), ("success_action_redirect", "https://example.com/done?x=1")]))
seed("post_object", "incomplete_signature", form([("key", "k"), ("x-amz-credential", "x")]))


# ---- bucket_policy ------------------------------------------------------------

core_policy = (CORE / "policy.rs").read_text()
for i, doc in enumerate(re.findall(r'r#"(\{.*?)"#', core_policy, re.S)):
    doc = re.sub(r'arn:aws:s3:::b(?=[/"])', f"arn:aws:s3:::{BUCKET}", doc)
    seed("bucket_policy", f"core_{i:02}", doc.replace("bob", "fuzz"))
for name, doc in [
    ("home_dirs", {"Version": "2012-10-17", "Statement": [{
        "Sid": "home", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::fuzz:root"},
        "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{BUCKET}",
        "Condition": {"StringLike": {"s3:prefix": ["home/fuzz/*", "home/fuzz"]},
                      "StringEquals": {"s3:delimiter": "/"}}}]}),
    ("not_ip", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "NotPrincipal": {"AWS": "fuzz"}, "NotAction": "s3:Get*",
        "NotResource": f"arn:aws:s3:::{BUCKET}/pub/*",
        "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
                      "Bool": {"aws:SecureTransport": "false"}}}]}),
    ("referer", {"Version": "2008-10-17", "Id": "p", "Statement": {
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
        "Condition": {"StringLikeIfExists": {"aws:Referer": ["https://www.example.com/*"]},
                      "NumericGreaterThanEquals": {"s3:max-keys": "1"}}}}),
    ("service", {"Statement": {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                               "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/logs/*"}}),
    ("date_condition", {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                      "Resource": f"arn:aws:s3:::{BUCKET}/*", "Condition": {
                                          "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}}),
]:
    seed("bucket_policy", name, json.dumps(doc))


# ---- router: the AWS API reference's request lines (router.rs tests) ----------

router_rs = (S3 / "router.rs").read_text()
for i, (line, copy) in enumerate(re.findall(r'c\(\s*"([^"]+)",\s*(true|false)\s*\)', router_rs)):
    method, target = line.split(" ", 1)
    headers = [("x-amz-copy-source", "/src-bucket/src-key")] if copy == "true" else []
    seed("router", f"aws_{i:02}", request(method, target, headers))
for name, method, target, headers in [
    ("live", "GET", "/_/health/live", []),
    ("ready", "HEAD", "/_/health/ready", []),
    ("locations", "GET", "/_/health/locations", []),
    ("metrics", "GET", "/metrics", [("authorization", "Bearer nope")]),
    ("metrics_bucket", "GET", "/metrics?list-type=2", []),
    ("export", "GET", "/_/meta/export", []),
    ("vhost_object", "GET", "/photos/puppy.jpg?acl", [("host", "fuzz-bucket.s3.example.com")]),
    ("vhost_list", "GET", "/?list-type=2&prefix=a%2Fb&delimiter=%2F", [("host", "fuzz-bucket.s3.example.com:9000")]),
    ("preflight", "OPTIONS", "/fuzz-bucket/k", [("origin", "https://a.example.com"),
                                                 ("access-control-request-method", "PUT")]),
    ("bad_encoding", "GET", "/fuzz-bucket/%ff%fe", []),
    ("presigned", "GET", "/fuzz-bucket/k?" + PRESIGNED, []),
    ("range", "GET", "/fuzz-bucket/k?versionId=null&partNumber=1", [("range", "bytes=0-9")]),
]:
    seed("router", name, request(method, target, headers))


# ---- write --------------------------------------------------------------------

for target, seeds in sorted(corpora.items()):
    d = OUT / target
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for name, data in sorted(seeds.items()):
        (d / name).write_bytes(data)
    print(f"{target}: {len(seeds)} seeds")
