//! AWS Signature Version 4: the `Authorization` header form and the
//! presigned query form, as S3 checks them.
//!
//! S3 differs from other services in two ways that matter here: the
//! canonical URI is the path as sent (S3 neither normalises it nor encodes it
//! a second time), and the payload hash line is the `x-amz-content-sha256`
//! value itself (which may be `UNSIGNED-PAYLOAD` or a `STREAMING-*` token).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};

use http::HeaderMap;
use time::OffsetDateTime;

use super::util::{self, X_AMZ_DATE};
use super::{
    unsigned_chunked_or, AuthContext, AuthError, Authenticated, ChunkSigning, ChunkedSpec,
    ContentSha256, Credentials, Payload, SignatureMismatch, SignedRequest,
};

/// The SigV4 algorithm name.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The SigV4A algorithm name (not implemented).
pub(crate) const ALGORITHM_V4A: &str = "AWS4-ECDSA-P256-SHA256";

const MISSING_DATE: &str = "AWS authentication requires a valid Date or x-amz-date header";
const MAX_PRESIGN_EXPIRES: i64 = 604_800;

/// The parts of a credential, `AKID/YYYYMMDD/region/service/aws4_request`.
struct Credential<'a> {
    access_key: &'a str,
    /// Everything after the access key: the credential scope.
    scope: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminal: &'a str,
}

impl<'a> Credential<'a> {
    fn parse(value: &'a str) -> Option<Self> {
        let mut parts = value.rsplitn(5, '/');
        let terminal = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let date = parts.next()?;
        let access_key = parts.next()?;
        let well_formed = !access_key.is_empty()
            && date.len() == 8
            && date.bytes().all(|c| c.is_ascii_digit())
            && !region.is_empty()
            && !service.is_empty();
        well_formed.then(|| Credential {
            access_key,
            scope: &value[access_key.len() + 1..],
            date,
            region,
            service,
            terminal,
        })
    }
}

/// Where the signature came from, for error codes and messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Header,
    Query,
}

impl Form {
    fn malformed(self, detail: &str) -> AuthError {
        match self {
            Form::Header => AuthError::AuthorizationHeaderMalformed(format!(
                "The authorization header is malformed; {detail}"
            )),
            Form::Query => AuthError::AuthorizationQueryParametersError(format!(
                "Error parsing the X-Amz-Credential parameter; {detail}"
            )),
        }
    }

    fn malformed_credential(self) -> AuthError {
        self.malformed(
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        )
    }
}

/// Checks the scope of a credential against the endpoint and the request
/// timestamp.
fn check_scope(
    cred: &Credential<'_>,
    form: Form,
    ctx: &AuthContext,
    timestamp: &str,
) -> Result<(), AuthError> {
    if cred.region != ctx.region {
        return Err(form.malformed(&format!(
            "the region '{}' is wrong; expecting '{}'",
            cred.region, ctx.region
        )));
    }
    if cred.service != "s3" {
        return Err(form.malformed(&format!(
            "incorrect service \"{}\". This endpoint belongs to \"s3\".",
            cred.service
        )));
    }
    if cred.terminal != "aws4_request" {
        return Err(form.malformed(&format!(
            "incorrect terminal \"{}\". This endpoint uses \"aws4_request\".",
            cred.terminal
        )));
    }
    if !timestamp.starts_with(cred.date) {
        return Err(match form {
            Form::Header => AuthError::AuthorizationHeaderMalformed(
                "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date."
                    .into(),
            ),
            Form::Query => AuthError::AuthorizationQueryParametersError(format!(
                "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
                cred.date,
                &timestamp[..8]
            )),
        });
    }
    Ok(())
}

/// The components of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct AuthHeader<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_auth_header(rest: &str) -> Result<AuthHeader<'_>, AuthError> {
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) => Ok(AuthHeader {
            credential,
            signed_headers,
            signature,
        }),
        _ => Err(AuthError::AuthorizationHeaderMalformed(
            "The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature."
                .into(),
        )),
    }
}

/// The request timestamp (`YYYYMMDDTHHMMSSZ`) and its time, from
/// `x-amz-date` or else `Date`.
fn request_time(headers: &HeaderMap) -> Result<(Cow<'_, str>, OffsetDateTime), AuthError> {
    let denied = || AuthError::AccessDenied(MISSING_DATE.into());
    let value = headers
        .get(X_AMZ_DATE)
        .or_else(|| headers.get(http::header::DATE))
        .ok_or_else(denied)?;
    let value = value.to_str().map_err(|_| denied())?.trim();
    if let Some(t) = util::parse_amz_date(value) {
        return Ok((Cow::Borrowed(value), t));
    }
    let t = util::parse_http_date(value).ok_or_else(denied)?;
    Ok((Cow::Owned(util::format_amz_date(t)), t))
}

/// Headers that S3 accepts unsigned in a presigned request: the payload
/// hash travels in the query (`X-Amz-Content-Sha256`) there, and a header of
/// the same name only restates it.
const PRESIGNED_UNSIGNED_OK: &[&str] = &["x-amz-content-sha256"];

/// Checks `SignedHeaders`: `host` must be signed, and so must every
/// `x-amz-*` header present (in a presigned request, all but
/// [`PRESIGNED_UNSIGNED_OK`]) and `Content-MD5` when the client sent it.
/// An unsigned one could otherwise change what a signature authorises: an
/// `x-amz-copy-source` added to a presigned PUT turns it into a copy of
/// anything its signer can read.
fn check_signed_headers(
    signed_headers: &str,
    headers: &HeaderMap,
    form: Form,
) -> Result<(), AuthError> {
    if signed_headers.is_empty() || signed_headers.split(';').any(str::is_empty) {
        return Err(form.malformed("the SignedHeaders component is malformed."));
    }
    let is_signed = |name: &str| {
        signed_headers
            .split(';')
            .any(|s| s.eq_ignore_ascii_case(name))
    };
    let mut unsigned: Vec<&str> = Vec::new();
    if !is_signed("host") {
        unsigned.push("host");
    }
    for name in headers.keys() {
        let name = name.as_str();
        let must_sign = (name.starts_with("x-amz-")
            && !(form == Form::Query && PRESIGNED_UNSIGNED_OK.contains(&name)))
            || name == "content-md5";
        if must_sign && !is_signed(name) && !unsigned.contains(&name) {
            unsigned.push(name);
        }
    }
    if unsigned.is_empty() {
        Ok(())
    } else {
        Err(AuthError::HeadersNotSigned(
            unsigned.into_iter().map(str::to_owned).collect(),
        ))
    }
}

/// Everything that the signature of one request covers.
struct Signable<'a> {
    req: &'a SignedRequest<'a>,
    /// Leave `X-Amz-Signature` out of the canonical query (presigned form).
    presigned: bool,
    signed_headers: &'a str,
    payload_hash: &'a str,
    timestamp: &'a str,
    cred: &'a Credential<'a>,
    provided: &'a str,
}

impl Signable<'_> {
    /// Verifies the signature with `key`; returns the verified signature.
    fn verify(&self, key: &[u8; 32]) -> Result<[u8; 32], AuthError> {
        let raw_path = if self.req.raw_path.is_empty() {
            "/"
        } else {
            self.req.raw_path
        };
        let (signature, canonical, string_to_sign) = self.sign(key, raw_path);
        if util::ct_eq(&util::hex32(&signature), self.provided.as_bytes()) {
            return Ok(signature);
        }
        // Some clients sign the path in AWS's canonical encoding while
        // sending it encoded differently; S3 decodes the path either way.
        let normalised = util::aws_encode_path(&util::decode_path(raw_path)).into_owned();
        if normalised != raw_path {
            let (signature, _, _) = self.sign(key, &normalised);
            if util::ct_eq(&util::hex32(&signature), self.provided.as_bytes()) {
                return Ok(signature);
            }
        }
        Err(AuthError::SignatureDoesNotMatch(Box::new(
            SignatureMismatch {
                access_key: self.cred.access_key.to_owned(),
                signature_provided: self.provided.to_owned(),
                string_to_sign,
                canonical_request: Some(String::from_utf8_lossy(&canonical).into_owned()),
            },
        )))
    }

    /// The signature, canonical request and string to sign for `path`.
    fn sign(&self, key: &[u8; 32], path: &str) -> ([u8; 32], Vec<u8>, String) {
        let canonical = self.canonical_request(path);
        let hash = util::hex32(&util::sha256(&canonical));
        let mut string_to_sign = String::with_capacity(160);
        string_to_sign.push_str(ALGORITHM);
        string_to_sign.push('\n');
        string_to_sign.push_str(self.timestamp);
        string_to_sign.push('\n');
        string_to_sign.push_str(self.cred.scope);
        string_to_sign.push('\n');
        string_to_sign.push_str(std::str::from_utf8(&hash).expect("hex is ASCII"));
        let signature = util::hmac_sha256(key, &[string_to_sign.as_bytes()]);
        (signature, canonical, string_to_sign)
    }

    fn canonical_request(&self, path: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(self.req.method.as_str().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(path.as_bytes());
        out.push(b'\n');
        canonical_query(&mut out, self.req.raw_query.unwrap_or(""), self.presigned);
        out.push(b'\n');
        for name in self.signed_headers.split(';') {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            for (i, value) in self.req.headers.get_all(name).iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                util::push_trimmed_value(&mut out, value.as_bytes());
            }
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(self.signed_headers.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }
}

/// Appends the canonical query string: every parameter decoded, re-encoded
/// with AWS URI encoding, sorted by key then value, `key=value` joined by `&`.
fn canonical_query(out: &mut Vec<u8>, raw: &str, presigned: bool) {
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = util::query_pairs(raw)
        .filter(|(key, _)| !(presigned && *key == "X-Amz-Signature"))
        .map(|(key, value)| (canonical_component(key), canonical_component(value)))
        .collect();
    pairs.sort_unstable();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
    }
}

fn canonical_component(raw: &str) -> Cow<'_, str> {
    match util::decode_bytes(raw) {
        Cow::Borrowed(bytes) => util::aws_encode(bytes),
        Cow::Owned(bytes) => Cow::Owned(util::aws_encode(&bytes).into_owned()),
    }
}

/// Cached SigV4 signing keys, by date, region and secret.
static SIGNING_KEYS: LazyLock<RwLock<HashMap<String, [u8; 32]>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));
const SIGNING_KEY_CACHE_MAX: usize = 1024;

/// The SigV4 signing key for a secret, date and region (service `s3`),
/// derived once and then cached.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    let mut cache_key = String::with_capacity(date.len() + region.len() + secret.len() + 2);
    cache_key.push_str(date);
    cache_key.push('\n');
    cache_key.push_str(region);
    cache_key.push('\n');
    cache_key.push_str(secret);
    if let Some(key) = SIGNING_KEYS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&cache_key)
    {
        return *key;
    }
    let mut secret_key = Vec::with_capacity(secret.len() + 4);
    secret_key.extend_from_slice(b"AWS4");
    secret_key.extend_from_slice(secret.as_bytes());
    let k_date = util::hmac_sha256(&secret_key, &[date.as_bytes()]);
    let k_region = util::hmac_sha256(&k_date, &[region.as_bytes()]);
    let k_service = util::hmac_sha256(&k_region, &[b"s3"]);
    let key = util::hmac_sha256(&k_service, &[b"aws4_request"]);
    let mut cache = SIGNING_KEYS.write().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= SIGNING_KEY_CACHE_MAX {
        cache.clear();
    }
    cache.insert(cache_key, key);
    key
}

/// Turns a verified `x-amz-content-sha256` value into the body's protection.
fn payload_for(
    kind: ContentSha256,
    headers: &HeaderMap,
    signing: impl FnOnce() -> ChunkSigning,
) -> Result<Payload, AuthError> {
    let signed = |signed_trailer: bool| -> Result<Payload, AuthError> {
        Ok(Payload::Chunked(ChunkedSpec {
            signing: Some(Box::new(signing())),
            trailer: util::trailer_name(headers)?,
            signed_trailer,
            decoded_length: util::decoded_length(headers)?,
        }))
    };
    match kind {
        ContentSha256::Digest(digest) => Ok(Payload::Sha256(digest)),
        ContentSha256::Unsigned => unsigned_chunked_or(headers, Payload::Unsigned),
        ContentSha256::StreamingUnsignedTrailer => Ok(Payload::Chunked(ChunkedSpec::unsigned(
            util::trailer_name(headers)?.as_deref(),
            util::decoded_length(headers)?,
        ))),
        ContentSha256::StreamingSigned => signed(false),
        ContentSha256::StreamingSignedTrailer => signed(true),
    }
}

/// The secret of `access_key`, or `InvalidAccessKeyId`.
fn lookup(creds: &dyn Credentials, access_key: &str) -> Result<String, AuthError> {
    creds
        .secret_for(access_key)
        .ok_or_else(|| AuthError::InvalidAccessKeyId {
            access_key: access_key.to_owned(),
        })
}

/// Checks a request signed in the `Authorization` header; `rest` is the
/// header value after `AWS4-HMAC-SHA256`.
pub(crate) fn authenticate_header(
    req: &SignedRequest<'_>,
    rest: &str,
    creds: &dyn Credentials,
    ctx: &AuthContext,
) -> Result<Authenticated, AuthError> {
    let header = parse_auth_header(rest)?;
    let cred =
        Credential::parse(header.credential).ok_or_else(|| Form::Header.malformed_credential())?;
    // The order of the checks follows S3's: the key first, then the clock,
    // then the details of the scope and headers, then the signature.
    let secret = lookup(creds, cred.access_key)?;
    let (timestamp, when) = request_time(req.headers)?;
    if (ctx.now - when).abs() > util::MAX_SKEW {
        return Err(AuthError::RequestTimeTooSkewed {
            request_time: timestamp.into_owned(),
            server_time: util::format_rfc3339(ctx.now),
        });
    }
    check_scope(&cred, Form::Header, ctx, &timestamp)?;
    let payload_hash = util::content_sha256(req.headers)?.ok_or_else(|| {
        AuthError::InvalidRequest(
            "Missing required header for this request: x-amz-content-sha256".into(),
        )
    })?;
    let kind = ContentSha256::parse(payload_hash)?;
    check_signed_headers(header.signed_headers, req.headers, Form::Header)?;
    let key = signing_key(&secret, cred.date, cred.region);
    let signable = Signable {
        req,
        presigned: false,
        signed_headers: header.signed_headers,
        payload_hash,
        timestamp: &timestamp,
        cred: &cred,
        provided: header.signature,
    };
    let signature = signable.verify(&key)?;
    let payload = payload_for(kind, req.headers, || ChunkSigning {
        key,
        seed: util::hex32(&signature),
        scope: cred.scope.to_owned(),
        timestamp: timestamp.clone().into_owned(),
    })?;
    Ok(Authenticated::Signed {
        access_key: cred.access_key.to_owned(),
        payload,
    })
}

/// Checks a presigned (query string) SigV4 request.
pub(crate) fn authenticate_presigned(
    req: &SignedRequest<'_>,
    creds: &dyn Credentials,
    ctx: &AuthContext,
) -> Result<Authenticated, AuthError> {
    let raw = req.raw_query.unwrap_or("");
    let param = |name: &str| util::query_param(raw, name);
    let algorithm = param("X-Amz-Algorithm");
    if let Some(algorithm) = &algorithm {
        if algorithm == ALGORITHM_V4A {
            return Err(AuthError::NotImplemented(
                "The AWS4-ECDSA-P256-SHA256 (SigV4A) signing algorithm is not implemented".into(),
            ));
        }
        if algorithm != ALGORITHM {
            return Err(AuthError::AuthorizationQueryParametersError(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".into(),
            ));
        }
    }
    let (
        Some(_),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        algorithm,
        param("X-Amz-Credential"),
        param("X-Amz-Date"),
        param("X-Amz-Expires"),
        param("X-Amz-SignedHeaders"),
        param("X-Amz-Signature"),
    )
    else {
        return Err(AuthError::AuthorizationQueryParametersError(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
                .into(),
        ));
    };
    let when = util::parse_amz_date(&date).ok_or_else(|| {
        AuthError::AuthorizationQueryParametersError(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".into(),
        )
    })?;
    let expires: i64 = expires.trim().parse().map_err(|_| {
        AuthError::AuthorizationQueryParametersError("X-Amz-Expires should be a number".into())
    })?;
    if expires < 0 {
        return Err(AuthError::AuthorizationQueryParametersError(
            "X-Amz-Expires must be non-negative".into(),
        ));
    }
    if expires > MAX_PRESIGN_EXPIRES {
        return Err(AuthError::AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800".into(),
        ));
    }
    let cred = Credential::parse(&credential).ok_or_else(|| Form::Query.malformed_credential())?;
    let secret = lookup(creds, cred.access_key)?;
    if when - ctx.now > util::MAX_SKEW {
        return Err(AuthError::AccessDenied("Request is not valid yet".into()));
    }
    if expires == 0 || ctx.now > when + time::Duration::seconds(expires) {
        return Err(AuthError::AccessDenied("Request has expired".into()));
    }
    check_scope(&cred, Form::Query, ctx, &date)?;
    check_signed_headers(&signed_headers, req.headers, Form::Query)?;
    let payload_hash = param("X-Amz-Content-Sha256");
    let payload_hash = payload_hash.as_deref().unwrap_or("UNSIGNED-PAYLOAD");
    let kind = ContentSha256::parse(payload_hash)?;
    let key = signing_key(&secret, cred.date, cred.region);
    let signable = Signable {
        req,
        presigned: true,
        signed_headers: &signed_headers,
        payload_hash,
        timestamp: &date,
        cred: &cred,
        provided: &signature,
    };
    let verified = signable.verify(&key)?;
    let payload = payload_for(kind, req.headers, || ChunkSigning {
        key,
        seed: util::hex32(&verified),
        scope: cred.scope.to_owned(),
        timestamp: date.clone().into_owned(),
    })?;
    Ok(Authenticated::Signed {
        access_key: cred.access_key.to_owned(),
        payload,
    })
}
