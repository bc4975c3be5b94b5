//! Object Lock: PutObjectLockConfiguration, GetObjectLockConfiguration,
//! PutObjectRetention, GetObjectRetention, PutObjectLegalHold and
//! GetObjectLegalHold, with their documents. The rules are the core's
//! (`cloudmux_core::lock`); the write headers are parsed in `headers`.

use cloudmux_core::records::{DefaultRetention, LockMode, ObjectLockConfig, Retention};
use cloudmux_core::Gateway;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::object::bypass_governance;
use super::{empty, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers::{self, iso_date};
use crate::xml::{self as x, XmlWriter};

/// `ObjectLockConfiguration`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ObjectLockConfigurationXml {
    object_lock_enabled: Option<String>,
    rule: Option<RuleXml>,
}

/// `Rule`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleXml {
    default_retention: Option<DefaultRetentionXml>,
}

/// `DefaultRetention`: numbers are read as text, so that a bad one is
/// MalformedXML and a zero or negative one reaches the core's rule.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DefaultRetentionXml {
    mode: Option<String>,
    days: Option<String>,
    years: Option<String>,
}

/// `Retention`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetentionXml {
    mode: Option<String>,
    retain_until_date: Option<String>,
}

/// `LegalHold`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegalHoldXml {
    status: Option<String>,
}

/// A retention mode element: `GOVERNANCE` or `COMPLIANCE`, else
/// MalformedXML.
fn mode(v: &str) -> S3Result<LockMode> {
    LockMode::parse(v.trim()).ok_or_else(S3Error::malformed_xml)
}

/// A period element: an integer, else MalformedXML; zero or below becomes 0
/// and beyond `u32` the largest value, both refused by the core.
fn period(v: &str) -> S3Result<u32> {
    let n: i64 = v.trim().parse().map_err(|_| S3Error::malformed_xml())?;
    Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

/// Parses an `ObjectLockConfiguration` document: `ObjectLockEnabled` must
/// be `Enabled`; a `Rule` must hold a `DefaultRetention` with a mode.
pub(crate) fn parse_configuration(body: &[u8]) -> S3Result<ObjectLockConfig> {
    x::check_root(body, "ObjectLockConfiguration")?;
    let doc: ObjectLockConfigurationXml = x::parse(body)?;
    if doc.object_lock_enabled.as_deref().map(str::trim) != Some("Enabled") {
        return Err(S3Error::malformed_xml());
    }
    let default_retention = match doc.rule {
        None => None,
        Some(rule) => {
            let d = rule.default_retention.ok_or_else(S3Error::malformed_xml)?;
            Some(DefaultRetention {
                mode: mode(d.mode.as_deref().ok_or_else(S3Error::malformed_xml)?)?,
                days: d.days.as_deref().map(period).transpose()?,
                years: d.years.as_deref().map(period).transpose()?,
            })
        }
    };
    Ok(ObjectLockConfig { default_retention })
}

/// Parses a `Retention` document: a mode with a date, or neither (which
/// removes the retention).
pub(crate) fn parse_retention(body: &[u8]) -> S3Result<Option<Retention>> {
    x::check_root(body, "Retention")?;
    let doc: RetentionXml = x::parse(body)?;
    match (doc.mode, doc.retain_until_date) {
        (None, None) => Ok(None),
        (Some(m), Some(d)) => Ok(Some(Retention {
            mode: mode(&m)?,
            until_ms: headers::parse_iso_date(&d).ok_or_else(S3Error::malformed_xml)?,
        })),
        _ => Err(S3Error::malformed_xml()),
    }
}

/// Parses a `LegalHold` document: `ON` or `OFF`.
pub(crate) fn parse_legal_hold(body: &[u8]) -> S3Result<bool> {
    x::check_root(body, "LegalHold")?;
    let doc: LegalHoldXml = x::parse(body)?;
    match doc.status.as_deref().map(str::trim) {
        Some("ON") => Ok(true),
        Some("OFF") => Ok(false),
        _ => Err(S3Error::malformed_xml()),
    }
}

/// Writes an `ObjectLockConfiguration` document.
fn configuration_doc(c: &ObjectLockConfig) -> String {
    let mut w = XmlWriter::new("ObjectLockConfiguration");
    w.elem("ObjectLockEnabled", "Enabled");
    if let Some(d) = &c.default_retention {
        w.open("Rule").open("DefaultRetention");
        w.elem("Mode", d.mode.as_str());
        w.opt("Days", d.days.map(|n| n.to_string()).as_deref());
        w.opt("Years", d.years.map(|n| n.to_string()).as_deref());
        w.close("DefaultRetention").close("Rule");
    }
    w.finish("ObjectLockConfiguration")
}

pub(super) async fn put_configuration(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let body = req.read_lock_document().await?;
    let config = parse_configuration(&body)?;
    gw.put_object_lock_configuration(&req.principal, req.bucket(), config)
        .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get_configuration(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let config = gw
        .object_lock_configuration(&req.principal, req.bucket())
        .await?;
    xml(configuration_doc(&config))
}

pub(super) async fn put_retention(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let version_id = headers::version_id(&req)?;
    let body = req.read_lock_document().await?;
    let retention = parse_retention(&body)?;
    gw.put_object_retention(
        &req.principal,
        req.bucket(),
        req.key(),
        version_id.as_deref(),
        retention,
        bypass_governance(&req),
    )
    .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get_retention(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let version_id = headers::version_id(&req)?;
    let r = gw
        .object_retention(
            &req.principal,
            req.bucket(),
            req.key(),
            version_id.as_deref(),
        )
        .await?;
    let mut w = XmlWriter::new("Retention");
    w.elem("Mode", r.mode.as_str())
        .elem("RetainUntilDate", &iso_date(r.until_ms));
    xml(w.finish("Retention"))
}

pub(super) async fn put_legal_hold(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let version_id = headers::version_id(&req)?;
    let body = req.read_lock_document().await?;
    let on = parse_legal_hold(&body)?;
    gw.put_object_legal_hold(
        &req.principal,
        req.bucket(),
        req.key(),
        version_id.as_deref(),
        on,
    )
    .await?;
    empty(StatusCode::OK)
}

pub(super) async fn get_legal_hold(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let version_id = headers::version_id(&req)?;
    let on = gw
        .object_legal_hold(
            &req.principal,
            req.bucket(),
            req.key(),
            version_id.as_deref(),
        )
        .await?;
    let mut w = XmlWriter::new("LegalHold");
    w.elem("Status", if on { "ON" } else { "OFF" });
    xml(w.finish("LegalHold"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations() {
        let c = parse_configuration(br#"<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule></ObjectLockConfiguration>"#).unwrap();
        let d = c.default_retention.clone().unwrap();
        assert_eq!(
            (d.mode, d.days, d.years),
            (LockMode::Governance, Some(3), None)
        );
        assert!(configuration_doc(&c).contains(
            "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule>"
        ));
        let bare = parse_configuration(
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>",
        )
        .unwrap();
        assert_eq!(bare, ObjectLockConfig::default());
        let negative = parse_configuration(b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>-1</Years></DefaultRetention></Rule></ObjectLockConfiguration>").unwrap();
        assert_eq!(negative.default_retention.unwrap().years, Some(0));
        for bad in [
            &b"<ObjectLockConfiguration/>"[..],
            b"<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>",
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule/></ObjectLockConfiguration>",
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>governance</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>x</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
            b"<Retention><Mode>GOVERNANCE</Mode></Retention>",
        ] {
            let e = parse_configuration(bad).unwrap_err();
            assert_eq!(e.code, "MalformedXML", "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn retentions_and_legal_holds() {
        let r = parse_retention(b"<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>").unwrap().unwrap();
        assert_eq!(
            (r.mode, r.until_ms),
            (LockMode::Compliance, 1_893_456_000_000)
        );
        assert_eq!(parse_retention(b"<Retention></Retention>").unwrap(), None);
        assert_eq!(parse_retention(b"<Retention/>").unwrap(), None);
        for bad in [
            &b"<Retention><Mode>COMPLIANCE</Mode></Retention>"[..],
            b"<Retention><Mode>X</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>",
            b"<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>soon</RetainUntilDate></Retention>",
        ] {
            assert_eq!(parse_retention(bad).unwrap_err().code, "MalformedXML");
        }
        assert!(parse_legal_hold(b"<LegalHold><Status>ON</Status></LegalHold>").unwrap());
        assert!(!parse_legal_hold(b"<LegalHold><Status>OFF</Status></LegalHold>").unwrap());
        assert!(parse_legal_hold(b"<LegalHold><Status>on</Status></LegalHold>").is_err());
        assert!(parse_legal_hold(b"<LegalHold/>").is_err());
    }
}
