//! The login transaction: the validated `/authorize` parameters travel in the login form as a
//! hidden field, HMAC-signed (key derived from the signing key) with an expiry, and bound to a
//! cookie so that a form cannot be posted from another site (login CSRF).
//!
//! `tx = base64url(json) "." base64url(HMAC-SHA256(key, base64url(json)))`

use crate::params::Params;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rt_domain::clock::Timestamp;
use rt_domain::token::constant_time_eq;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

/// How long a login form stays valid.
pub const TX_LIFETIME_SECS: i64 = 600;
/// The parameters carried from `GET /authorize` to the form's POST.
pub const CARRIED: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "device",
    "prompt",
    "code_challenge",
    "code_challenge_method",
];

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    exp: i64,
    /// Random binding value, also in the cookie.
    bind: String,
    p: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("The login form is invalid or was tampered with. Start again from the application.")]
    Invalid,
    #[error("The login form has expired. Start again from the application.")]
    Expired,
    #[error("The login form was not opened in this browser. Start again from the application.")]
    Unbound,
}

pub struct Tx {
    pub params: Params,
    pub bind: String,
}

/// The cookie carrying a transaction's binding value.
pub fn cookie_name(bind: &str) -> String {
    format!("rt_login_{}", bind.get(..8).unwrap_or(bind))
}

fn sign_key(key: &SecretBox<[u8; 32]>) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, key.expose_secret())
}

/// Seals the carried parameters of `p`; returns the field value and the binding value.
pub fn seal(key: &SecretBox<[u8; 32]>, p: &Params, now: Timestamp) -> (String, String) {
    let bind = URL_SAFE_NO_PAD.encode(rt_domain::random::bytes::<18>());
    let payload = Payload {
        v: 1,
        exp: now.secs() + TX_LIFETIME_SECS,
        bind: bind.clone(),
        p: p.iter().filter(|(k, _)| CARRIED.contains(k)).map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
    };
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let body = URL_SAFE_NO_PAD.encode(json);
    let tag = hmac::sign(&sign_key(key), body.as_bytes());
    (format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())), bind)
}

/// Verifies the signature, the expiry and the cookie binding of a posted transaction.
/// `cookie` looks a cookie up by name.
pub fn open(
    key: &SecretBox<[u8; 32]>,
    tx: &str,
    cookie: impl Fn(&str) -> Option<String>,
    now: Timestamp,
) -> Result<Tx, TxError> {
    let (body, tag) = tx.split_once('.').ok_or(TxError::Invalid)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TxError::Invalid)?;
    hmac::verify(&sign_key(key), body.as_bytes(), &tag).map_err(|_| TxError::Invalid)?;
    let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| TxError::Invalid)?;
    let payload: Payload = serde_json::from_slice(&json).map_err(|_| TxError::Invalid)?;
    if payload.v != 1 {
        return Err(TxError::Invalid);
    }
    if now.secs() > payload.exp {
        return Err(TxError::Expired);
    }
    match cookie(&cookie_name(&payload.bind)) {
        Some(c) if constant_time_eq(c.as_bytes(), payload.bind.as_bytes()) => {}
        _ => return Err(TxError::Unbound),
    }
    let params = Params::from_pairs(payload.p).map_err(|_| TxError::Invalid)?;
    Ok(Tx { params, bind: payload.bind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretBox<[u8; 32]> {
        SecretBox::new(Box::new([b; 32]))
    }

    #[test]
    fn round_trip_and_tampering() {
        let p = Params::from_pairs([("client_id", "c"), ("device", "d"), ("evil", "x")]).expect("params");
        let now = Timestamp::from_secs(1000);
        let (tx, bind) = seal(&key(1), &p, now);
        let ok = |n: &str| (n == cookie_name(&bind)).then(|| bind.clone());
        let opened = open(&key(1), &tx, ok, now).map_err(|e| e.to_string()).expect("opens");
        assert_eq!(opened.params.get("device"), Some("d"));
        assert_eq!(opened.params.get("evil"), None);
        assert_eq!(open(&key(2), &tx, ok, now).err(), Some(TxError::Invalid));
        assert_eq!(open(&key(1), &tx, |_| Some("other".to_owned()), now).err(), Some(TxError::Unbound));
        assert_eq!(open(&key(1), &tx, |_| None, now).err(), Some(TxError::Unbound));
        assert_eq!(open(&key(1), &tx, ok, now.plus_secs(601)).err(), Some(TxError::Expired));
        let (body, tag) = tx.split_once('.').expect("dot");
        let mut forged = URL_SAFE_NO_PAD.decode(body).expect("b64");
        if let Some(b) = forged.iter_mut().find(|b| **b == b'd') {
            *b = b'e';
        }
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(open(&key(1), &forged, ok, now).err(), Some(TxError::Invalid));
        assert_eq!(open(&key(1), "garbage", ok, now).err(), Some(TxError::Invalid));
    }
}
