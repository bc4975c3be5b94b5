//! OAuth 2.0 access tokens for Google Cloud Storage from a service-account
//! key file: a JWT signed with the account's RSA key (RS256, `ring`) is
//! exchanged at the file's `token_uri`, and the token is cached until a
//! minute before it expires. Without a key file requests are anonymous
//! (emulators, public buckets).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use tokio::sync::Mutex;

use crate::cloud::http::Http;
use crate::{DataError, Result};

/// The OAuth scope cloudmux asks for.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// The fields of a service-account key file cloudmux reads.
#[derive(serde::Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

/// The token endpoint's answer.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A service account that can mint access tokens.
pub(crate) struct ServiceAccount {
    email: String,
    key: RsaKeyPair,
    token_uri: String,
    cached: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads a service-account key file (JSON with a PKCS#8 PEM key).
    pub fn from_file(path: &std::path::Path) -> std::result::Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("credentials_file: {}: {e}", path.display()))?;
        let kf: KeyFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "credentials_file: {}: not a service-account key: {e}",
                path.display()
            )
        })?;
        let b64: String = kf
            .private_key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "credentials_file: private_key is not PEM".to_owned())?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("credentials_file: private_key rejected: {e}"))?;
        Ok(Self {
            email: kf.client_email,
            key,
            token_uri: kf.token_uri,
            cached: Mutex::new(None),
        })
    }

    /// A valid access token, fetched when the cached one is about to expire.
    pub async fn token(&self, http: &Http) -> Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some((t, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let assertion = self.jwt()?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let resp = http
            .send("token exchange", true, true, || {
                Ok(http
                    .client
                    .post(&self.token_uri)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone()))
            })
            .await?;
        if resp.status().is_client_error() {
            // The token endpoint refused the service account's key (a 400
            // invalid_grant as much as a 401 or 403): the location's
            // credentials are wrong, which no retry mends.
            let status = resp.status().as_u16();
            let text = crate::cloud::http::error_text(resp).await;
            return Err(DataError::Misconfigured {
                location: http.location.clone(),
                message: format!("token exchange: HTTP {status} {text}"),
            });
        }
        if !resp.status().is_success() {
            return Err(http.refused("token exchange", resp).await);
        }
        let answer: TokenAnswer = resp
            .json()
            .await
            .map_err(|e| http.unavailable(format!("token exchange: {}", e.without_url())))?;
        let life = Duration::from_secs(answer.expires_in.unwrap_or(3600).saturating_sub(60));
        *cached = Some((answer.access_token.clone(), Instant::now() + life));
        Ok(answer.access_token)
    }

    /// The signed JWT assertion for the token exchange.
    fn jwt(&self) -> Result<String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let claims = b64.encode(claims.to_string());
        let msg = format!("{header}.{claims}");
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                msg.as_bytes(),
                &mut sig,
            )
            .map_err(|_| DataError::Io(std::io::Error::other("JWT signing failed")))?;
        Ok(format!("{msg}.{}", b64.encode(sig)))
    }
}
