//! The server side of Cognito's SRP-6a variant (what amazon-cognito-identity-js, Amplify and the
//! mobile SDKs compute as clients), for the standby sign-in bridge:
//!
//! - RFC 5054 3072-bit group, g = 2, k = H(PAD(N) | PAD(g)), u = H(PAD(A) | PAD(B));
//! - x = H(PAD(salt) | H(poolName | userIdForSrp | ":" | password)), v = g^x;
//! - server: B = k·v + g^b, S = (A · v^u)^b; key = HKDF-SHA256(S, salt = PAD(u),
//!   info = "Caldera Derived Key")[..16];
//! - the client's claim: HMAC-SHA256(key, poolName | userIdForSrp | secretBlock | timestamp).
//!
//! PAD is Cognito's `padHex`: the minimal big-endian bytes, with a leading zero byte when the
//! top bit is set. Arithmetic is constant-time Montgomery (`crypto-bigint`); the server's
//! ephemeral `b` is 256 random bits (RFC 5054 asks for at least 256), which keeps a handshake
//! to two short exponentiations. The session key is computed at `server_start`, so the answer
//! only needs an HMAC. Nothing here logs or formats a secret value.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{NonZero, Odd, Zero, U256, U3072};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Bytes of N (3072 bits).
pub const N_BYTES: usize = 384;

const N_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

const N: U3072 = U3072::from_be_hex(N_HEX);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrpError {
    #[error("SRP_A is not a hex number of at most 3072 bits")]
    BadA,
    #[error("SRP_A must not be 0 mod N")]
    ZeroA,
    #[error("stored verifier is malformed")]
    BadVerifier,
    #[error("degenerate handshake")]
    Degenerate,
}

type Params = MontyParams<{ U3072::LIMBS }>;

/// Montgomery parameters of N, computed once per process.
static PARAMS: LazyLock<Params> = LazyLock::new(|| {
    // N is a public constant: the variable-time setup leaks nothing.
    MontyParams::new_vartime(Odd::new(N).expect("the RFC 5054 prime is odd"))
});

fn params() -> Params {
    *PARAMS
}

/// Windows of the fixed-base table: 4-bit digits of a 256-bit exponent.
const G_WINDOWS: usize = 64;

/// The fixed-base table for g = 2, built once per process (64 × 16 × 384 bytes = 384 KiB):
/// `G_TABLE[i][j]` = g^(j · 16^i) in Montgomery form. g^e is then one product of 64 entries
/// (64 multiplications) instead of 256 squarings and 64 multiplications.
static G_TABLE: LazyLock<Vec<[U3072; 16]>> = LazyLock::new(|| {
    let p = params();
    let mut base = MontyForm::new(&U3072::from_u8(2), p); // g^(16^i)
    let mut table = Vec::with_capacity(G_WINDOWS);
    for _ in 0..G_WINDOWS {
        let mut row = [U3072::ZERO; 16];
        let mut acc = MontyForm::one(p);
        for entry in &mut row {
            *entry = acc.to_montgomery();
            acc *= base;
        }
        table.push(row);
        base = acc; // base^16
    }
    table
});

/// g^e for a secret 256-bit exponent (big-endian) from the fixed-base table. Constant time:
/// every entry of each row is read, and the digit picks one by masked selection, so neither
/// the memory access pattern nor the branch pattern depends on e.
fn g_pow_monty(e: &[u8; 32]) -> MontyForm<{ U3072::LIMBS }> {
    let p = params();
    let mut acc = MontyForm::one(p);
    for (i, row) in G_TABLE.iter().enumerate() {
        let byte = e[31 - i / 2];
        let digit = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 };
        let mut pick = U3072::ZERO;
        for (j, entry) in (0u8..).zip(row.iter()) {
            pick.conditional_assign(entry, j.ct_eq(&digit));
        }
        acc *= MontyForm::from_montgomery(pick, p);
    }
    acc
}

/// Cognito's `padHex` of a big-endian integer.
pub fn pad(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    let mut out = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.is_empty() || trimmed[0] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    out
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn u3072(bytes: &[u8]) -> Option<U3072> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    if trimmed.len() > N_BYTES {
        return None;
    }
    let mut full = [0u8; N_BYTES];
    full[N_BYTES - trimmed.len()..].copy_from_slice(trimmed);
    Some(U3072::from_be_slice(&full))
}

fn k() -> U3072 {
    let k = sha(&[&pad(&N.to_be_bytes()), &pad(&[2])]);
    u3072(&k).expect("32 bytes fit")
}

/// The part of a pool id after the region and "_" (`eu-west-1_AbC` → `AbC`).
pub fn pool_name(pool_id: &str) -> &str {
    pool_id.split_once('_').map_or(pool_id, |(_, n)| n)
}

/// A fresh 16-byte salt (top bit clear, so its PAD is the bytes themselves).
pub fn new_salt() -> [u8; 16] {
    let mut s: [u8; 16] = rand::random();
    s[0] = (s[0] & 0x7f) | 0x01;
    s
}

/// The password verifier v = g^x (384 big-endian bytes) for `user_id` in `pool_name`.
pub fn verifier(pool_name: &str, user_id: &str, password: &str, salt: &[u8]) -> [u8; N_BYTES] {
    let inner = sha(&[
        pool_name.as_bytes(),
        user_id.as_bytes(),
        b":",
        password.as_bytes(),
    ]);
    let x = sha(&[&pad(salt), &inner]);
    g_pow(&x)
}

/// g^e mod N for a 256-bit exponent (big-endian).
pub fn g_pow(e: &[u8; 32]) -> [u8; N_BYTES] {
    g_pow_monty(e).retrieve().to_be_bytes()
}

/// What `server_start` gives: SRP_B for the client and the session key for checking its claim.
pub struct ServerStart {
    pub srp_b_hex: String,
    pub key: [u8; 16],
}

impl std::fmt::Debug for ServerStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStart").finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 2 * N_BYTES + 2 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let padded = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok())
        .collect()
}

/// Lowercase hex of a big-endian integer without leading zeros (how Cognito prints SRP_B).
pub fn int_hex(bytes: &[u8]) -> String {
    let h = hex(bytes);
    let t = h.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// Parses a hex integer (SALT, SRP_A, SRP_B) into big-endian bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    unhex(s)
}

/// The server's answer to SRP_A with the stored `verifier`: SRP_B and the session key.
/// `b` is 32 random bytes (the caller passes fresh randomness; tests pass fixed values).
pub fn server_start_with(
    verifier: &[u8],
    srp_a_hex: &str,
    b: &[u8; 32],
) -> Result<ServerStart, SrpError> {
    let a = unhex(srp_a_hex)
        .and_then(|a| u3072(&a))
        .ok_or(SrpError::BadA)?;
    let n = NonZero::new(N).expect("N is not zero");
    let a = a.rem(&n);
    if bool::from(a.is_zero()) {
        return Err(SrpError::ZeroA);
    }
    let v = u3072(verifier).ok_or(SrpError::BadVerifier)?.rem(&n);
    if bool::from(v.is_zero()) {
        return Err(SrpError::BadVerifier);
    }
    let p = params();
    let b_exp = U256::from_be_slice(b);
    let v_m = MontyForm::new(&v, p);
    let b_pub = (MontyForm::new(&k(), p) * v_m + g_pow_monty(b)).retrieve();
    if bool::from(b_pub.is_zero()) {
        return Err(SrpError::Degenerate);
    }
    let a_bytes = a.to_be_bytes();
    let b_bytes = b_pub.to_be_bytes();
    let u = sha(&[&pad(&a_bytes), &pad(&b_bytes)]);
    if u.iter().all(|&x| x == 0) {
        return Err(SrpError::Degenerate);
    }
    let s = (MontyForm::new(&a, p) * v_m.pow(&U256::from_be_slice(&u)))
        .pow(&b_exp)
        .retrieve();
    let prk = hmac(&pad(&u), &[&pad(&s.to_be_bytes())]);
    let okm = hmac(&prk, &[b"Caldera Derived Key", &[1]]);
    let mut key = [0u8; 16];
    key.copy_from_slice(&okm[..16]);
    Ok(ServerStart {
        srp_b_hex: int_hex(&b_bytes),
        key,
    })
}

/// `server_start_with` and fresh randomness.
pub fn server_start(verifier: &[u8], srp_a_hex: &str) -> Result<ServerStart, SrpError> {
    let b: [u8; 32] = rand::random();
    server_start_with(verifier, srp_a_hex, &b)
}

/// Checks the client's PASSWORD_CLAIM_SIGNATURE in constant time.
pub fn check_claim(
    key: &[u8; 16],
    pool_name: &str,
    user_id: &str,
    secret_block_b64: &str,
    timestamp: &str,
    signature_b64: &str,
) -> bool {
    let Ok(block) = STANDARD.decode(secret_block_b64) else {
        return false;
    };
    let Ok(sig) = STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    let expected = hmac(
        key,
        &[
            pool_name.as_bytes(),
            user_id.as_bytes(),
            &block,
            timestamp.as_bytes(),
        ],
    );
    sig.len() == expected.len() && bool::from(expected.ct_eq(&sig[..]))
}

/// Seconds since the epoch of a claim TIMESTAMP ("Thu Nov 26 19:29:11 UTC 2026", the day not
/// padded). `None` when it is not in that form.
pub fn parse_timestamp(ts: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = ts.split_whitespace().collect();
    let [_wd, mon, day, hms, "UTC", year] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == mon)? as i64 + 1;
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (Some(Some(h)), Some(Some(mi)), Some(Some(s)), None) =
        (t.next(), t.next(), t.next(), t.next())
    else {
        return None;
    };
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&s) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed independently with the Python client (tests/harness/srp.py) and
    // Python's own big integers; see tests/harness/srp_vectors.py.
    include!("srp_vectors.rs");

    #[test]
    fn fixed_base_table_agrees_with_plain_exponentiation() {
        let g = MontyForm::new(&U3072::from_u8(2), params());
        let mut cases: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32], [0x0f; 32], [0xf0; 32]];
        let mut one = [0u8; 32];
        one[31] = 1;
        cases.push(one);
        cases.extend((0..8).map(|_| rand::random::<[u8; 32]>()));
        for e in cases {
            let plain = g.pow(&U256::from_be_slice(&e)).retrieve().to_be_bytes();
            assert_eq!(g_pow(&e), plain, "g^{e:02x?}");
        }
    }

    #[test]
    fn pad_follows_cognito_pad_hex() {
        assert_eq!(pad(&[0, 0, 0x12]), vec![0x12]);
        assert_eq!(pad(&[0x80, 1]), vec![0, 0x80, 1]);
        assert_eq!(pad(&[0, 0]), vec![0]);
    }

    #[test]
    fn verifier_matches_python() {
        let salt = parse_hex(V_SALT).unwrap();
        let v = verifier(V_POOL_NAME, V_USER, V_PASSWORD, &salt);
        assert_eq!(int_hex(&v), V_VERIFIER);
    }

    #[test]
    fn server_matches_python_client() {
        let salt = parse_hex(V_SALT).unwrap();
        let v = verifier(V_POOL_NAME, V_USER, V_PASSWORD, &salt);
        let b: [u8; 32] = parse_hex(V_B).unwrap().try_into().unwrap();
        let st = server_start_with(&v, V_SRP_A, &b).unwrap();
        assert_eq!(st.srp_b_hex, V_SRP_B);
        assert!(check_claim(
            &st.key,
            V_POOL_NAME,
            V_USER,
            V_SECRET_BLOCK,
            V_TIMESTAMP,
            V_SIGNATURE
        ));
        // Any other input fails.
        assert!(!check_claim(
            &st.key,
            V_POOL_NAME,
            V_USER,
            V_SECRET_BLOCK,
            "Thu Nov 26 19:29:12 UTC 2026",
            V_SIGNATURE
        ));
        assert!(!check_claim(
            &st.key,
            "other",
            V_USER,
            V_SECRET_BLOCK,
            V_TIMESTAMP,
            V_SIGNATURE
        ));
        let wrong = verifier(V_POOL_NAME, V_USER, "wrong-password", &salt);
        let st2 = server_start_with(&wrong, V_SRP_A, &b).unwrap();
        assert!(!check_claim(
            &st2.key,
            V_POOL_NAME,
            V_USER,
            V_SECRET_BLOCK,
            V_TIMESTAMP,
            V_SIGNATURE
        ));
    }

    #[test]
    fn bad_a_is_refused() {
        let v = verifier("p", "u", "pw", &new_salt());
        assert_eq!(server_start(&v, "zz").unwrap_err(), SrpError::BadA);
        assert_eq!(server_start(&v, "0").unwrap_err(), SrpError::ZeroA);
        assert_eq!(server_start(&v, N_HEX).unwrap_err(), SrpError::ZeroA);
        assert_eq!(
            server_start(&v, &"f".repeat(2000)).unwrap_err(),
            SrpError::BadA
        );
        assert!(server_start(&v, "").is_err());
        assert!(!check_claim(&[0; 16], "p", "u", "%%%", "t", "sig"));
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(
            parse_timestamp("Thu Nov 26 19:29:11 UTC 2026"),
            Some(1_795_721_351)
        );
        assert_eq!(parse_timestamp("Thu Jan 1 00:00:00 UTC 1970"), Some(0));
        assert_eq!(parse_timestamp("Thu Nov 26 19:29:11 GMT 2026"), None);
        assert_eq!(parse_timestamp("garbage"), None);
        assert_eq!(parse_timestamp("Thu Nov 26 25:29:11 UTC 2026"), None);
    }
}
