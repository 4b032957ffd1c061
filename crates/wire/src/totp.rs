//! RFC 6238 time-based one-time passwords as Cognito's `SOFTWARE_TOKEN_MFA` uses them
//! (HMAC-SHA1, 30-second steps, 6 digits; the secret is the base32 `SecretCode` that
//! `AssociateSoftwareToken` returned). The standby's bridge verifies codes itself with a
//! replicated secret, so TOTP users keep their authenticator after a failover.

use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;

/// Decodes RFC 4648 base32 (upper or lower case, padding and spaces ignored).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for c in s.chars().filter(|c| !matches!(c, '=' | ' ')) {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The 6-digit code of `key` at time step `step`.
pub fn code_at(key: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    bin % 1_000_000
}

/// The step whose code `code` is, within one step of `now_secs` (Cognito accepts the same
/// window), or `None`. Compared in constant time. The caller spends the step so that a code
/// is usable once.
pub fn verify(secret_b32: &str, code: &str, now_secs: u64) -> Option<u64> {
    let key = base32_decode(secret_b32)?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_secs / STEP_SECS;
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let want = format!("{:06}", code_at(&key, step));
        if bool::from(want.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890" (8-digit values, last 6 here).
        let key = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(code_at(key, t / STEP_SECS), want % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn base32_round_trips_the_rfc_key() {
        assert_eq!(
            base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(),
            b"12345678901234567890"
        );
        assert_eq!(base32_decode("not base32!"), None);
    }

    #[test]
    fn a_code_verifies_within_one_step_and_not_beyond() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let key = base32_decode(secret).unwrap();
        let now = 1_234_567_890;
        let code = |step: u64| format!("{:06}", code_at(&key, step));
        let s = now / STEP_SECS;
        assert_eq!(verify(secret, &code(s), now), Some(s));
        assert_eq!(verify(secret, &code(s - 1), now), Some(s - 1));
        assert_eq!(verify(secret, &code(s + 1), now), Some(s + 1));
        assert_eq!(verify(secret, &code(s - 2), now), None);
        assert_eq!(verify(secret, "12345", now), None);
        assert_eq!(verify(secret, "abcdef", now), None);
    }
}
