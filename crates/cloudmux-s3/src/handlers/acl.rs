//! ACL handlers: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl.

use cloudmux_core::acl::{Acl, AclRequest, Grant, Grantee, Permission};
use cloudmux_core::Gateway;
use http::{Response, StatusCode};

use super::{empty, owner_elem, xml};
use crate::body::ResBody;
use crate::context::Req;
use crate::error::{S3Error, S3Result};
use crate::headers;
use crate::xml::XmlWriter;

const XSI: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";

fn acl_doc(gw: &Gateway, acl: &Acl) -> String {
    let mut w = XmlWriter::new("AccessControlPolicy");
    owner_elem(&mut w, gw, "Owner", &acl.owner);
    w.open("AccessControlList");
    for g in &acl.grants {
        w.open("Grant");
        match &g.grantee {
            Grantee::Canonical(id) => {
                w.open_attrs("Grantee", &format!("{XSI} xsi:type=\"CanonicalUser\""))
                    .elem("ID", id)
                    .elem("DisplayName", &gw.accounts().display_name(id))
                    .close("Grantee");
            }
            group => {
                w.open_attrs("Grantee", &format!("{XSI} xsi:type=\"Group\""))
                    .elem("URI", group.group_uri().unwrap_or_default())
                    .close("Grantee");
            }
        }
        w.elem("Permission", g.permission.as_str()).close("Grant");
    }
    w.close("AccessControlList");
    w.finish("AccessControlPolicy")
}

/// The grant headers and the permission each gives.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

/// Resolves a grantee given as canonical id, e-mail address or group URI.
fn grantee(gw: &Gateway, kind: &str, value: &str) -> S3Result<Grantee> {
    match kind {
        "id" => gw
            .accounts()
            .by_canonical_id(value)
            .map(|a| Grantee::Canonical(a.canonical_id.clone()))
            .ok_or_else(|| {
                S3Error::invalid_argument("Invalid id")
                    .with("ArgumentName", "CanonicalUser/ID")
                    .with("ArgumentValue", value)
            }),
        "emailaddress" => gw
            .accounts()
            .by_email(value)
            .map(|a| Grantee::Canonical(a.canonical_id.clone()))
            .ok_or_else(S3Error::unresolvable_email),
        "uri" => Grantee::from_group_uri(value).ok_or_else(|| {
            S3Error::invalid_argument("Invalid group uri")
                .with("ArgumentName", "Group/URI")
                .with("ArgumentValue", value)
        }),
        _ => Err(S3Error::invalid_argument(format!(
            "Argument format not recognized: {kind}"
        ))),
    }
}

/// Parses the `x-amz-grant-*` headers (`id="…", emailAddress="…", uri="…"`).
fn header_grants(gw: &Gateway, req: &Req) -> S3Result<Option<Vec<Grant>>> {
    let mut grants = Vec::new();
    let mut any = false;
    for (name, permission) in GRANT_HEADERS {
        let Some(v) = req.headers.get(name) else {
            continue;
        };
        any = true;
        let v = v
            .to_str()
            .map_err(|_| S3Error::invalid_argument("Invalid grant header"))?;
        for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kind, value) = item.split_once('=').ok_or_else(|| {
                S3Error::invalid_argument(format!("Argument format not recognized: {item}"))
            })?;
            let value = value.trim().trim_matches('"');
            grants.push(Grant {
                grantee: grantee(gw, &kind.trim().to_ascii_lowercase(), value)?,
                permission,
            });
        }
    }
    Ok(any.then_some(grants))
}

/// The ACL a write asks for through `x-amz-acl` or the `x-amz-grant-*`
/// headers (PutObject, CopyObject, CreateMultipartUpload, CreateBucket).
pub(crate) fn requested_acl(gw: &Gateway, req: &Req) -> S3Result<Option<AclRequest>> {
    let canned = headers::canned_acl(req)?;
    let grants = header_grants(gw, req)?;
    match (canned, grants) {
        (Some(_), Some(_)) => Err(S3Error::invalid_request(
            "Specifying both Canned ACLs and Header Grants is not allowed",
        )),
        (Some(c), None) => Ok(Some(AclRequest::Canned(c))),
        (None, Some(g)) => Ok(Some(AclRequest::Grants(g))),
        (None, None) => Ok(None),
    }
}

/// Where the parser is inside an `AccessControlPolicy`.
#[derive(Default)]
struct PolicyParse {
    owner: Option<String>,
    grants: Vec<Grant>,
    kind: Option<String>,
    value: Option<String>,
    permission: Option<String>,
}

/// Parses an `AccessControlPolicy` document.
fn parse_policy(gw: &Gateway, body: &[u8]) -> S3Result<Acl> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut p = PolicyParse::default();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() && name != "AccessControlPolicy" {
                    return Err(S3Error::malformed_acl());
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                if path.last().map(String::as_str) == Some("Grant") {
                    let (Some(kind), Some(value), Some(perm)) =
                        (p.kind.take(), p.value.take(), p.permission.take())
                    else {
                        return Err(S3Error::malformed_acl());
                    };
                    let permission = Permission::parse(&perm).ok_or_else(S3Error::malformed_acl)?;
                    p.grants.push(Grant {
                        grantee: grantee(gw, &kind, &value)?,
                        permission,
                    });
                }
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t
                    .xml_content()
                    .map_err(|_| S3Error::malformed_acl())?
                    .into_owned();
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                match names.as_slice() {
                    ["AccessControlPolicy", "Owner", "ID"] => p.owner = Some(text),
                    [.., "Grant", "Grantee", field] => {
                        let kind = match *field {
                            "ID" => "id",
                            "EmailAddress" => "emailaddress",
                            "URI" => "uri",
                            _ => continue,
                        };
                        p.kind = Some(kind.to_owned());
                        p.value = Some(text);
                    }
                    [.., "Grant", "Permission"] => p.permission = Some(text),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Err(_) => return Err(S3Error::malformed_acl()),
            Ok(_) => {}
        }
        buf.clear();
    }
    if !path.is_empty() {
        return Err(S3Error::malformed_acl());
    }
    let owner = p.owner.ok_or_else(S3Error::malformed_acl)?;
    Ok(Acl {
        owner,
        grants: p.grants,
    })
}

/// The ACL a Put*Acl request sets: a canned ACL, grant headers, or an
/// `AccessControlPolicy` body (exactly one of them).
async fn requested_put_acl(gw: &Gateway, req: &mut Req) -> S3Result<AclRequest> {
    headers::refuse_unsupported_write_headers(req)?;
    let from_headers = requested_acl(gw, req)?;
    let body = req.read_small_body().await?;
    match (from_headers, body.iter().all(u8::is_ascii_whitespace)) {
        (Some(a), true) => Ok(a),
        (Some(_), false) => Err(S3Error::unexpected_content()),
        (None, true) => Err(S3Error::missing_security_header("x-amz-acl")),
        (None, false) => Ok(AclRequest::Policy(parse_policy(gw, &body)?)),
    }
}

pub(super) async fn get_bucket_acl(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let acl = gw.bucket_acl(&req.principal, req.bucket()).await?;
    xml(acl_doc(gw, &acl))
}

pub(super) async fn put_bucket_acl(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let acl = requested_put_acl(gw, &mut req).await?;
    gw.put_bucket_acl(&req.principal, req.bucket(), acl).await?;
    empty(StatusCode::OK)
}

pub(super) async fn get_object_acl(gw: &Gateway, req: Req) -> S3Result<Response<ResBody>> {
    let version = crate::headers::version_id(&req)?;
    let acl = gw
        .object_acl(&req.principal, req.bucket(), req.key(), version.as_deref())
        .await?;
    xml(acl_doc(gw, &acl))
}

pub(super) async fn put_object_acl(gw: &Gateway, mut req: Req) -> S3Result<Response<ResBody>> {
    let acl = requested_put_acl(gw, &mut req).await?;
    let version = crate::headers::version_id(&req)?;
    gw.put_object_acl(
        &req.principal,
        req.bucket(),
        req.key(),
        version.as_deref(),
        acl,
    )
    .await?;
    empty(StatusCode::OK)
}
