//! Accounts and the principal a request acts as.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// One account: its name, keys and canonical user id. Its `Debug` output
/// leaves the secret key out.
#[derive(Clone)]
pub struct Account {
    /// Account name; also the DisplayName shown in Owner elements.
    pub name: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Canonical user id (64 hex characters), stable for a given name.
    pub canonical_id: String,
    /// Optional e-mail-like address for grants by e-mail.
    pub email: Option<String>,
    /// Whether the account may use the admin surface (`/metrics` and the
    /// routes under `/_/` other than health).
    pub admin: bool,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("canonical_id", &self.canonical_id)
            .field("email", &self.email)
            .field("admin", &self.admin)
            .finish()
    }
}

impl Account {
    /// Builds an account, deriving its canonical id from its name.
    pub fn new(name: &str, access_key: &str, secret_key: &str) -> Self {
        let digest = Sha256::digest(format!("cloudmux-account:{name}").as_bytes());
        Self {
            name: name.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            canonical_id: hex::encode(digest),
            email: None,
            admin: false,
        }
    }
}

/// Who a request acts as.
#[derive(Debug, Clone)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A signed request of this account.
    Account(Arc<Account>),
    /// cloudmux itself, doing background work (replication, lifecycle,
    /// garbage collection) under this name. It is not an account: it has no
    /// canonical id, no bucket policy names it, and authorization lets it
    /// act on every bucket, logging the decision.
    System(&'static str),
}

impl Principal {
    /// The canonical id, if authenticated.
    pub fn canonical_id(&self) -> Option<&str> {
        match self {
            Principal::Anonymous | Principal::System(_) => None,
            Principal::Account(a) => Some(&a.canonical_id),
        }
    }
    /// The account, if authenticated.
    pub fn account(&self) -> Option<&Arc<Account>> {
        match self {
            Principal::Anonymous | Principal::System(_) => None,
            Principal::Account(a) => Some(a),
        }
    }
}

/// The configured accounts, indexed by access key and canonical id.
#[derive(Debug, Default)]
pub struct Accounts {
    by_access_key: HashMap<String, Arc<Account>>,
    by_id: HashMap<String, Arc<Account>>,
}

impl Accounts {
    /// Indexes a list of accounts.
    pub fn new(list: Vec<Account>) -> Self {
        let mut me = Self::default();
        for a in list {
            let a = Arc::new(a);
            me.by_access_key.insert(a.access_key.clone(), a.clone());
            me.by_id.insert(a.canonical_id.clone(), a);
        }
        me
    }
    /// Looks up by access key id.
    pub fn by_access_key(&self, key: &str) -> Option<&Arc<Account>> {
        self.by_access_key.get(key)
    }
    /// Looks up by canonical id.
    pub fn by_canonical_id(&self, id: &str) -> Option<&Arc<Account>> {
        self.by_id.get(id)
    }
    /// Looks up by account name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Account>> {
        self.by_id.values().find(|a| a.name == name)
    }
    /// Looks up by e-mail address.
    pub fn by_email(&self, email: &str) -> Option<&Arc<Account>> {
        self.by_id.values().find(|a| {
            a.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    }
    /// Display name for a canonical id (the id itself when unknown).
    pub fn display_name(&self, id: &str) -> String {
        self.by_id
            .get(id)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_secret_out() {
        let mut a = Account::new("alice", "AKIDALICE", "very-secret-value-123");
        a.admin = true;
        let text = format!("{a:?} {:?}", Accounts::new(vec![a.clone()]));
        assert!(!text.contains("very-secret-value-123"), "{text}");
        assert!(
            text.contains("AKIDALICE") && text.contains("admin: true"),
            "{text}"
        );
    }
}
