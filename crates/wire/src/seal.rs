//! AES-256-GCM sealing under a rotating keyring. The sealed form names its key id, so a key
//! can rotate while sealed values are in flight: `v1.<key id>.<base64url(nonce || ciphertext)>`.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::{
    engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD, Engine as _,
};
use serde::Deserialize;

use crate::hash::derive_key;

fn mac(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("keyring is invalid: {0}")]
    BadKeyring(String),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with unknown key id {0}")]
    UnknownKey(String),
    #[error("sealed value failed authentication")]
    Tampered,
}

/// Keys by id plus the id used to seal. The secret's JSON: `{"current":"k1","keys":{"k1":"<base64 32 bytes>"}}`.
#[derive(Clone)]
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, [u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyringJson {
    current: String,
    keys: BTreeMap<String, String>,
}

impl Keyring {
    pub fn from_json(text: &str) -> Result<Self, SealError> {
        let raw: KeyringJson = serde_json::from_str(text).map_err(|e| {
            SealError::BadKeyring(format!("not the expected JSON ({:?})", e.classify()))
        })?;
        let mut keys = BTreeMap::new();
        for (id, b64) in raw.keys {
            if id.is_empty() || id.contains('.') {
                return Err(SealError::BadKeyring(format!(
                    "key id {id:?} must be non-empty without '.'"
                )));
            }
            let bytes = STANDARD
                .decode(b64.trim())
                .map_err(|_| SealError::BadKeyring(format!("key {id} is not base64")))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| SealError::BadKeyring(format!("key {id} is not 32 bytes")))?;
            keys.insert(id, key);
        }
        if !keys.contains_key(&raw.current) {
            return Err(SealError::BadKeyring(format!(
                "current key {} is not in keys",
                raw.current
            )));
        }
        Ok(Self {
            current: raw.current,
            keys,
        })
    }

    pub fn single(id: &str, key: [u8; 32]) -> Self {
        Self {
            current: id.to_owned(),
            keys: BTreeMap::from([(id.to_owned(), key)]),
        }
    }

    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// A keyring of subkeys bound to one purpose, so one master key can serve several uses.
    pub fn derive(&self, purpose: &str) -> Self {
        Self {
            current: self.current.clone(),
            keys: self
                .keys
                .iter()
                .map(|(id, k)| (id.clone(), derive_key(k, purpose)))
                .collect(),
        }
    }

    /// A keyed, one-way hash of `value` under the current key's subkey for `purpose`:
    /// `<key id>:<base64url HMAC-SHA256>`. Stable while the current key stays the same.
    pub fn keyed_hash(&self, purpose: &str, value: &str) -> String {
        let sub = derive_key(&self.keys[&self.current], purpose);
        format!(
            "{}:{}",
            self.current,
            URL_SAFE_NO_PAD.encode(derive_key(&sub, value))
        )
    }

    /// HMAC-SHA256 of `msg` under the current key's subkey for `purpose`: `(key id, tag)`.
    pub fn sign(&self, purpose: &str, msg: &[u8]) -> (String, [u8; 32]) {
        let sub = derive_key(&self.keys[&self.current], purpose);
        (self.current.clone(), mac(&sub, msg))
    }

    /// Checks a `sign` tag made under key `kid` (any key still in the ring), in constant time.
    pub fn verify(&self, kid: &str, purpose: &str, msg: &[u8], tag: &[u8]) -> bool {
        let Some(key) = self.keys.get(kid) else {
            return false;
        };
        let expected = mac(&derive_key(key, purpose), msg);
        tag.len() == expected.len() && bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], tag))
    }

    /// Seals `plaintext`, authenticating `aad` (context the value must be opened with).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let key = &self.keys[&self.current];
        let nonce: [u8; 12] = rand::random();
        let cipher = Aes256Gcm::new(key.into());
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of in-memory data cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!("v1.{}.{}", self.current, URL_SAFE_NO_PAD.encode(blob))
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        Aes256Gcm::new(key.into())
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| SealError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(json: &str) -> Keyring {
        Keyring::from_json(json).unwrap()
    }
    const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="; // 32 x 0x01
    const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="; // 32 x 0x02

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let r = ring(&format!(r#"{{"current":"k1","keys":{{"k1":"{K1}"}}}}"#));
        let s = r.seal(b"Hunter2!pass", b"evt-1");
        assert!(s.starts_with("v1.k1."));
        assert!(!s.contains("Hunter2"));
        assert_eq!(r.open(&s, b"evt-1").unwrap(), b"Hunter2!pass");
        assert_ne!(s, r.seal(b"Hunter2!pass", b"evt-1"), "nonces must differ");
    }

    #[test]
    fn wrong_context_or_tampering_is_refused() {
        let r = ring(&format!(r#"{{"current":"k1","keys":{{"k1":"{K1}"}}}}"#));
        let s = r.seal(b"pw", b"evt-1");
        assert_eq!(r.open(&s, b"evt-2"), Err(SealError::Tampered));
        let mut t = s.clone();
        t.pop();
        t.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(r.open(&t, b"evt-1").is_err());
        assert_eq!(r.open("nope", b""), Err(SealError::Malformed));
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = ring(&format!(r#"{{"current":"k1","keys":{{"k1":"{K1}"}}}}"#));
        let sealed_old = old.seal(b"pw", b"a");
        let new = ring(&format!(
            r#"{{"current":"k2","keys":{{"k1":"{K1}","k2":"{K2}"}}}}"#
        ));
        assert_eq!(new.open(&sealed_old, b"a").unwrap(), b"pw");
        assert!(new.seal(b"pw", b"a").starts_with("v1.k2."));
        let retired = ring(&format!(r#"{{"current":"k2","keys":{{"k2":"{K2}"}}}}"#));
        assert_eq!(
            retired.open(&sealed_old, b"a"),
            Err(SealError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn derived_keys_do_not_open_each_other() {
        let r = ring(&format!(r#"{{"current":"k1","keys":{{"k1":"{K1}"}}}}"#));
        let s = r.derive("refresh-token").seal(b"x", b"");
        assert!(r.open(&s, b"").is_err());
        assert_eq!(r.derive("refresh-token").open(&s, b"").unwrap(), b"x");
    }

    #[test]
    fn bad_keyrings_are_refused_with_a_reason() {
        assert!(matches!(
            Keyring::from_json("{}"),
            Err(SealError::BadKeyring(_))
        ));
        assert!(matches!(
            Keyring::from_json(r#"{"current":"k1","keys":{"k1":"AAAA"}}"#),
            Err(SealError::BadKeyring(_))
        ));
        assert!(matches!(
            Keyring::from_json(&format!(r#"{{"current":"k9","keys":{{"k1":"{K1}"}}}}"#)),
            Err(SealError::BadKeyring(_))
        ));
        let dbg = format!(
            "{:?}",
            ring(&format!(r#"{{"current":"k1","keys":{{"k1":"{K1}"}}}}"#))
        );
        assert!(!dbg.contains(K1));
    }
}
