//! CORS: PutBucketCors, GetBucketCors, DeleteBucketCors, the unauthenticated
//! preflight (`OPTIONS`), and the CORS headers added to actual requests.

use cloudmux_core::bucket_config::find_cors_rule;
use cloudmux_core::records::CorsRule;
use cloudmux_core::Gateway;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde::Deserialize;

use super::{empty, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::xml::{self as x, XmlWriter};

/// `CORSConfiguration` body.
#[derive(Debug, Deserialize)]
struct CorsConfigurationXml {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<CorsRuleXml>,
}

/// One `CORSRule`.
#[derive(Debug, Deserialize)]
struct CorsRuleXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    max_age_seconds: Option<i64>,
}

pub(super) async fn put_bucket_cors(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_small_body_with_digest().await?;
    x::check_root(&body, "CORSConfiguration")?;
    let doc: CorsConfigurationXml = x::parse(&body)?;
    let rules = doc
        .rules
        .into_iter()
        .map(|r| CorsRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers,
            expose_headers: r.expose_headers,
            max_age_seconds: r.max_age_seconds,
        })
        .collect();
    gw.put_bucket_cors(&req.principal, req.bucket(), rules)
        .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get_bucket_cors(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let Some(rules) = gw.bucket_cors(&req.principal, req.bucket()).await? else {
        return Err(S3Error::no_such_cors(req.bucket()));
    };
    let mut w = XmlWriter::new("CORSConfiguration");
    for r in &rules {
        w.open("CORSRule");
        w.opt("ID", r.id.as_deref());
        for (name, values) in [
            ("AllowedHeader", &r.allowed_headers),
            ("AllowedMethod", &r.allowed_methods),
            ("AllowedOrigin", &r.allowed_origins),
            ("ExposeHeader", &r.expose_headers),
        ] {
            for v in values {
                w.elem(name, v);
            }
        }
        if let Some(m) = r.max_age_seconds {
            w.elem("MaxAgeSeconds", &m.to_string());
        }
        w.close("CORSRule");
    }
    xml(w.finish("CORSConfiguration"))
}

pub(super) async fn delete_bucket_cors(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    gw.delete_bucket_cors(&req.principal, req.bucket()).await?;
    empty(StatusCode::NO_CONTENT)
}

/// Sets the CORS response headers of a matched rule.
fn set_headers(h: &mut HeaderMap, rule: &CorsRule, origin: &str, allow_headers: Option<&str>) {
    let mut put = |name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    if rule.any_origin() {
        put("access-control-allow-origin", "*");
    } else {
        put("access-control-allow-origin", origin);
        put("access-control-allow-credentials", "true");
    }
    put(
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if let Some(a) = allow_headers.filter(|a| !a.is_empty()) {
        put("access-control-allow-headers", a);
    }
    if !rule.expose_headers.is_empty() {
        put(
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(m) = rule.max_age_seconds {
        put("access-control-max-age", &m.to_string());
    }
    h.append(
        "vary",
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    );
}

/// Answers a CORS preflight (`OPTIONS`), which needs no authentication.
pub async fn preflight(
    gw: &Gateway,
    bucket: &str,
    headers: &HeaderMap,
) -> S3Result<Response<ResBody>> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let Some(origin) = get("origin") else {
        return Err(S3Error::cors_bad_request(
            "Insufficient information. Origin request header needed.",
        ));
    };
    let Some(method) = get("access-control-request-method") else {
        return Err(S3Error::cors_bad_request(
            "Invalid Access-Control-Request-Method: null",
        ));
    };
    let requested = get("access-control-request-headers").unwrap_or("");
    let wanted: Vec<String> = requested
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let rules = gw.cors_rules(bucket).await;
    let rule =
        find_cors_rule(&rules, origin, method, &wanted).ok_or_else(S3Error::cors_forbidden)?;
    let mut resp = empty(StatusCode::OK)?;
    set_headers(resp.headers_mut(), rule, origin, Some(requested));
    Ok(resp)
}

/// Adds the CORS headers to the response of an actual request whose `Origin`
/// a rule of the bucket allows (errors included, as S3 does).
pub async fn decorate(
    gw: &Gateway,
    bucket: &str,
    origin: &str,
    method: &http::Method,
    resp: &mut Response<ResBody>,
) {
    let rules = gw.cors_rules(bucket).await;
    if let Some(rule) = find_cors_rule(&rules, origin, method.as_str(), &[]) {
        set_headers(resp.headers_mut(), rule, origin, None);
    }
}
