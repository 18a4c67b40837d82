//! Session references: the short keyed hash that stands in for a session ID wherever a human or a
//! log can see it. A session ID is a bearer credential; a reference lets an on-call engineer who
//! holds the key (and the table) find the session, and lets no one else use it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// Minimum key length in bytes; shorter keys make references guessable across deployments.
pub const MIN_KEY_BYTES: usize = 16;

/// Number of hex characters in a reference (48 bits): short enough to read out, long enough that
/// two sessions of one incident do not collide.
pub const REF_HEX_LEN: usize = 12;

/// The secret key of the reference hash (`SESSION_REF_KEY`). Its `Debug` is redacted.
#[derive(Clone)]
pub struct SessionRefKey(Vec<u8>);

/// A key that is too short to be safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at least {MIN_KEY_BYTES} bytes long, got {0}")]
pub struct KeyTooShort(pub usize);

impl SessionRefKey {
    /// Builds a key from its raw bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyTooShort> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyTooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The reference of a raw session ID.
    pub fn reference(&self, session_id: &str) -> SessionRef {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(session_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = hex::encode(digest);
        hex.truncate(REF_HEX_LEN);
        SessionRef(hex)
    }

    /// The full keyed digest (64 hex digits) of a session ID: the key under which worker state
    /// about a session is stored, so the state table never holds a raw session ID.
    pub fn state_key(&self, id: &crate::session::SessionId) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.expose().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The reference of a [`crate::session::SessionId`].
    pub fn of(&self, id: &crate::session::SessionId) -> SessionRef {
        self.reference(id.expose())
    }
}

impl fmt::Debug for SessionRefKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionRefKey(<redacted>)")
    }
}

/// A short keyed hash of a session ID, safe for logs, alerts and reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct SessionRef(String);

impl SessionRef {
    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_is_short_stable_keyed_and_hides_the_id() {
        let k1 = SessionRefKey::new(*b"0123456789abcdef").unwrap();
        let k2 = SessionRefKey::new(*b"fedcba9876543210").unwrap();
        let r = k1.reference("sess-very-secret");
        assert_eq!(r.as_str().len(), REF_HEX_LEN);
        assert!(r.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(r, k1.reference("sess-very-secret"));
        assert_ne!(r, k2.reference("sess-very-secret"));
        assert_ne!(r, k1.reference("sess-very-secret2"));
        assert!(!format!("{k1:?}").contains("0123"));
    }

    #[test]
    fn short_key_is_rejected() {
        assert_eq!(SessionRefKey::new(*b"short").unwrap_err(), KeyTooShort(5));
    }
}
