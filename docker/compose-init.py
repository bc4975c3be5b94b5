"""Set-up steps of docker/compose.yaml, with the Python standard library only.

    python compose-init.py emulators   # target bucket/container in each emulator
    python compose-init.py buckets     # one cloudmux bucket on each location

Everything is on 127.0.0.1 (the compose services share one network
namespace). Each step is idempotent: "already exists" answers count as done.
"""

import base64
import datetime
import hashlib
import hmac
import os
import sys
import time
import urllib.error
import urllib.request

AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CLOUDMUX = os.environ.get("CLOUDMUX_ENDPOINT", "http://127.0.0.1:8000")
ACCESS_KEY = "AKIACLOUDMUXADMIN001"
REGION = "us-east-1"
# Bucket name -> location (see config/compose.toml).
BUCKETS = {"on-local": None, "on-aws": "aws-east", "on-azure": "azure-main", "on-gcs": "gcs-main"}


def send(method, url, body=b"", headers=None, ok=(200, 201, 204, 409)):
    """Sends one request, retrying for a minute while the server starts."""
    deadline = time.time() + 60
    while True:
        req = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            if time.time() > deadline:
                raise SystemExit(f"{method} {url}: {e}")
            time.sleep(1)
            continue
        if status in ok:
            print(f"{method} {url}: {status}")
            return status
        if time.time() > deadline:
            raise SystemExit(f"{method} {url}: HTTP {status}")
        time.sleep(1)


def azure_container(name):
    """Creates an Azurite container, signed with the account's Shared Key."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    version = "2021-08-06"
    string_to_sign = "\n".join(
        ["PUT", "", "", "", "", "", "", "", "", "", "", ""]
        + [f"x-ms-date:{now}", f"x-ms-version:{version}"]
        + [f"/{AZURE_ACCOUNT}/{AZURE_ACCOUNT}/{name}\nrestype:container"]
    )
    mac = hmac.new(base64.b64decode(AZURE_KEY), string_to_sign.encode(), hashlib.sha256)
    signature = base64.b64encode(mac.digest()).decode()
    send(
        "PUT",
        f"http://127.0.0.1:10000/{AZURE_ACCOUNT}/{name}?restype=container",
        headers={
            "x-ms-date": now,
            "x-ms-version": version,
            "Authorization": f"SharedKey {AZURE_ACCOUNT}:{signature}",
        },
    )


def emulators():
    send("PUT", "http://127.0.0.1:5000/target-bucket")
    send(
        "POST",
        "http://127.0.0.1:4443/storage/v1/b?project=cloudmux",
        body=b'{"name": "cloudmux"}',
        headers={"Content-Type": "application/json"},
    )
    azure_container("cloudmux")


def sigv4_put(path, body, secret):
    """A SigV4-signed PUT to cloudmux (path-style, no query)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    host = CLOUDMUX.split("//", 1)[1]
    canonical = "\n".join(
        ["PUT", path, "", f"host:{host}", f"x-amz-content-sha256:{payload}", f"x-amz-date:{amz_date}", "",
         "host;x-amz-content-sha256;x-amz-date", payload]
    )
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    send(
        "PUT",
        CLOUDMUX + path,
        body=body,
        headers={
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
            f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
        },
    )


def buckets():
    secret = os.environ["CLOUDMUX_ADMIN_SECRET"]
    send("GET", CLOUDMUX + "/_/health/ready", ok=(200,))
    for bucket, location in BUCKETS.items():
        body = b""
        if location:
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{location}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        sigv4_put("/" + bucket, body, secret)


if __name__ == "__main__":
    steps = {"emulators": emulators, "buckets": buckets}
    if len(sys.argv) != 2 or sys.argv[1] not in steps:
        raise SystemExit(f"usage: {sys.argv[0]} {'|'.join(steps)}")
    steps[sys.argv[1]]()
