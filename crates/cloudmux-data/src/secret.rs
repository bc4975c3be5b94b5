//! The one way a secret reaches cloudmux from its configuration: inline
//! (`NAME`), from a file (`NAME_file`, trimmed) or from an environment
//! variable (`NAME_env`), at most one of the three. Accounts, the metrics
//! token and every cloud location's credentials resolve through
//! [`SecretSource`], so the rules and the error messages are the same
//! everywhere. Errors name the config field, never the secret.

use std::path::Path;

/// A secret's three possible config fields.
#[derive(Clone, Copy)]
pub struct SecretSource<'a> {
    /// The field's name as the user wrote it, with its table for context
    /// (`accounts[0] (alice).secret_key`); the last `.`-separated part is
    /// the field name the `_file` and `_env` variants extend.
    pub field: &'a str,
    /// The inline value (`NAME`).
    pub inline: Option<&'a str>,
    /// A file holding the value (`NAME_file`).
    pub file: Option<&'a Path>,
    /// An environment variable holding the value (`NAME_env`).
    pub env: Option<&'a str>,
}

impl std::fmt::Debug for SecretSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSource")
            .field("field", &self.field)
            .field("inline", &self.inline.map(|_| "<redacted>"))
            .field("file", &self.file)
            .field("env", &self.env)
            .finish()
    }
}

impl SecretSource<'_> {
    /// The secret, or `None` when none of the three fields is given. More
    /// than one field, an unreadable file, an unset variable or an empty
    /// secret is an error.
    pub fn resolve(&self) -> Result<Option<String>, String> {
        let field = self.field;
        let secret = match (self.inline, self.file, self.env) {
            (None, None, None) => return Ok(None),
            (Some(s), None, None) => s.to_owned(),
            (None, Some(f), None) => std::fs::read_to_string(f)
                .map_err(|e| format!("{field}_file: {}: {e}", f.display()))?
                .trim()
                .to_owned(),
            (None, None, Some(v)) => std::env::var(v)
                .map_err(|_| format!("{field}_env: environment variable {v} is not set"))?,
            _ => return Err(self.one_of()),
        };
        if secret.is_empty() {
            return Err(format!("{field}: must not be empty"));
        }
        Ok(Some(secret))
    }

    /// The secret, which must be given.
    pub fn require(&self) -> Result<String, String> {
        self.resolve()?.ok_or_else(|| self.one_of())
    }

    fn one_of(&self) -> String {
        let name = self.field.rsplit('.').next().unwrap_or(self.field);
        format!(
            "{}: give exactly one of {name}, {name}_file, {name}_env",
            self.field
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src<'a>(inline: Option<&'a str>, env: Option<&'a str>) -> SecretSource<'a> {
        SecretSource {
            field: "t.k",
            inline,
            file: None,
            env,
        }
    }

    #[test]
    fn at_most_one_source_and_never_empty() {
        assert_eq!(src(None, None).resolve(), Ok(None));
        assert_eq!(src(Some("s"), None).resolve(), Ok(Some("s".into())));
        let e = src(Some("s"), Some("V")).resolve().unwrap_err();
        assert_eq!(e, "t.k: give exactly one of k, k_file, k_env");
        let e = src(None, Some("CMX_NOPE_UNSET")).resolve().unwrap_err();
        assert!(e.starts_with("t.k_env"), "{e}");
        assert_eq!(
            src(Some(""), None).resolve().unwrap_err(),
            "t.k: must not be empty"
        );
        assert!(src(None, None).require().is_err());
    }

    #[test]
    fn a_file_is_trimmed_and_debug_hides_the_inline_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  hunter2\n").unwrap();
        let s = SecretSource {
            field: "k",
            inline: None,
            file: Some(&path),
            env: None,
        };
        assert_eq!(s.require().unwrap(), "hunter2");
        let shown = format!("{:?}", src(Some("hunter2"), None));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
