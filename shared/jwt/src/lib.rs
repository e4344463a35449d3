//! RS256 JWTs with `jsonwebtoken`: signing (key parsed once per process), verification of our
//! own access tokens, the JWKS document, and keys derived from the signing key.
//!
//! `jsonwebtoken::encode` asks its crypto provider for a signer on every call, and the stock
//! aws-lc provider re-parses the RSA key each time (0.56 ms against 0.22 ms for the signature,
//! TOOLCHAIN.md). We install a provider that hands out a signer around the `RsaKeyPair` parsed
//! once when the [`SigningKey`] was loaded, and defers to the stock provider for everything
//! else.

use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{self as sig, RsaKeyPair};
use base64::Engine as _;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, aws_lc};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rt_domain::claims::{AccessTokenClaims, IdTokenClaims};
use rt_domain::ports::{SignError, TokenSigner};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key is not an RSA private key in PEM (PKCS#1 or PKCS#8): {0}")]
    Parse(String),
    #[error("signing key must be at least 2048 bits")]
    TooSmall,
    #[error("could not generate a key")]
    Generate,
}

/// Parsed RSA keys, by their DER bytes. A process holds one or two.
static PARSED: RwLock<Vec<(Vec<u8>, Arc<RsaKeyPair>)>> = RwLock::new(Vec::new());

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: cached_signer,
    verifier_factory: aws_lc::DEFAULT_PROVIDER.verifier_factory,
    key_utils: aws_lc::DEFAULT_PROVIDER.key_utils.clone(),
});

fn cached_signer(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *alg == Algorithm::RS256 {
        let found = PARSED
            .read()
            .ok()
            .and_then(|v| v.iter().find(|(der, _)| der.as_slice() == key.as_bytes()).map(|(_, kp)| kp.clone()));
        if let Some(kp) = found {
            return Ok(Box::new(ParsedRs256(kp)));
        }
    }
    (aws_lc::DEFAULT_PROVIDER.signer_factory)(alg, key)
}

struct ParsedRs256(Arc<RsaKeyPair>);

impl signature::Signer<Vec<u8>> for ParsedRs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut out = vec![0; self.0.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.0.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out).map_err(signature::Error::from_source)?;
        Ok(out)
    }
}

impl JwtSigner for ParsedRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// The service's RS256 signing key, its public JWK and its `kid`.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
    kid: String,
    /// PKCS#1 DER of the private key: input for derived secrets.
    der: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PEM RSA private key (`RSA PRIVATE KEY` or `PRIVATE KEY`), once.
    pub fn from_pem(pem: &SecretString) -> Result<Self, KeyError> {
        let _ = PROVIDER.install_default();
        let encoding =
            EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(|e| KeyError::Parse(e.to_string()))?;
        let pair = RsaKeyPair::from_der(encoding.as_bytes()).map_err(|e| KeyError::Parse(e.to_string()))?;
        if pair.public_modulus_len() < 256 {
            return Err(KeyError::TooSmall);
        }
        let mut jwk =
            Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(|e| KeyError::Parse(e.to_string()))?;
        // RFC 7638 thumbprint (over kty, n, e) as the kid: stable for the key, no bookkeeping.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| KeyError::Parse(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| KeyError::Parse(e.to_string()))?;
        let der = encoding.as_bytes().to_vec();
        if let Ok(mut parsed) = PARSED.write()
            && !parsed.iter().any(|(d, _)| *d == der)
        {
            parsed.push((der.clone(), Arc::new(pair)));
        }
        Ok(Self { encoding, decoding, jwk, kid, der: SecretBox::new(Box::new(der)) })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs any claim set with RS256 and this key's `kid`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SignError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| SignError(e.to_string()))
    }

    /// A 32-byte secret derived from the signing key (HKDF-SHA256) for `purpose`, so that one
    /// secret to manage yields the HMAC keys of the login transaction and of sessions.
    pub fn derive_secret(&self, purpose: &str) -> SecretBox<[u8; 32]> {
        use aws_lc_rs::hkdf;
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"refresh-token-service derived keys v1");
        let prk = salt.extract(self.der.expose_secret());
        let info = [purpose.as_bytes()];
        let mut out = [0u8; 32];
        let ok = prk.expand(&info, hkdf::HKDF_SHA256).and_then(|okm| okm.fill(&mut out)).is_ok();
        if !ok {
            // HKDF-SHA256 can produce 32 bytes for any input; failure would be a bug in aws-lc.
            std::process::abort();
        }
        SecretBox::new(Box::new(out))
    }

    /// Verifies a JWT we signed: RS256 only (`none` and HS256 are refused by construction),
    /// matching `kid`, `iss`, `aud`, and `exp` against `now` (epoch seconds; no leeway).
    pub fn verify<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<C, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Algorithm);
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(VerifyError::UnknownKey);
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = 0;
        // Time is a parameter: `exp` is checked below against the caller's clock.
        v.validate_exp = false;
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(token, &self.decoding, &v).map(|d| d.claims).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidIssuer => VerifyError::Issuer,
                    K::InvalidAudience => VerifyError::Audience,
                    K::InvalidSignature => VerifyError::Signature,
                    _ => VerifyError::Malformed,
                }
            })?;
        let exp = claims.get("exp").and_then(serde_json::Value::as_i64).ok_or(VerifyError::Malformed)?;
        if now >= exp {
            return Err(VerifyError::Expired);
        }
        serde_json::from_value(claims).map_err(|_| VerifyError::Malformed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not RS256")]
    Algorithm,
    #[error("token was signed by an unknown key")]
    UnknownKey,
    #[error("invalid signature")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token has the wrong issuer")]
    Issuer,
    #[error("token has the wrong audience")]
    Audience,
}

/// The key set published at `/.well-known/jwks.json`: the signing key first, then any other
/// public keys being rotated in or out.
pub fn jwks(current: &SigningKey, others: &[Jwk]) -> JwkSet {
    let mut keys = vec![current.public_jwk().clone()];
    keys.extend(others.iter().cloned());
    JwkSet { keys }
}

impl TokenSigner for SigningKey {
    fn sign_id_token(&self, claims: &IdTokenClaims) -> Result<String, SignError> {
        self.sign(claims)
    }
    fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, SignError> {
        self.sign(claims)
    }
}

/// A new 2048-bit RSA key as PKCS#8 PEM, for local development (`cargo xtask dev`) and tests.
pub fn generate_pem() -> Result<SecretString, KeyError> {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
    let der = kp.as_der().map_err(|_| KeyError::Generate)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(SecretString::from(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        let pem = generate_pem().expect("generate");
        SigningKey::from_pem(&pem).expect("parse")
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct C {
        iss: String,
        sub: String,
        aud: String,
        exp: i64,
    }

    fn claims(exp: i64) -> C {
        C { iss: "https://t/".into(), sub: "s".into(), aud: "a".into(), exp }
    }

    #[test]
    fn signs_and_verifies_with_kid() {
        let k = key();
        let far = 4_000_000_000;
        let t = k.sign(&claims(far)).expect("sign");
        let h = jsonwebtoken::decode_header(&t).expect("header");
        assert_eq!(h.alg, Algorithm::RS256);
        assert_eq!(h.kid.as_deref(), Some(k.kid()));
        let now = 1_800_000_000;
        let back: C = k.verify(&t, "https://t/", "a", now).expect("verify");
        assert_eq!(back, claims(far));
        assert_eq!(k.verify::<C>(&t, "https://other/", "a", now).err(), Some(VerifyError::Issuer));
        assert_eq!(k.verify::<C>(&t, "https://t/", "b", now).err(), Some(VerifyError::Audience));
        assert_eq!(k.verify::<C>(&t, "https://t/", "a", far).err(), Some(VerifyError::Expired));
        assert!(k.verify::<C>(&t, "https://t/", "a", far - 1).is_ok());
        // The JWKS key verifies it too.
        let set = jwks(&k, &[]);
        let dk = DecodingKey::from_jwk(set.find(k.kid()).expect("kid in set")).expect("jwk");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["a"]);
        assert!(jsonwebtoken::decode::<C>(&t, &dk, &v).is_ok());
    }

    #[test]
    fn refuses_none_and_hs256_with_the_public_key() {
        let k = key();
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let body = b64(r#"{"iss":"https://t/","sub":"s","aud":"a","exp":4000000000}"#);
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), body);
        assert_eq!(k.verify::<C>(&none, "https://t/", "a", 0).err(), Some(VerifyError::Malformed));
        let n = serde_json::to_string(k.public_jwk()).expect("json");
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(k.kid().to_owned());
        let hs = jsonwebtoken::encode(&h, &claims(4_000_000_000), &EncodingKey::from_secret(n.as_bytes())).expect("hs");
        assert_eq!(k.verify::<C>(&hs, "https://t/", "a", 0).err(), Some(VerifyError::Algorithm));
        let other = key();
        let foreign = other.sign(&claims(4_000_000_000)).expect("sign");
        assert_eq!(k.verify::<C>(&foreign, "https://t/", "a", 0).err(), Some(VerifyError::UnknownKey));
    }

    #[test]
    fn derived_secrets_differ_by_purpose_and_are_stable() {
        let pem = generate_pem().expect("generate");
        let a = SigningKey::from_pem(&pem).expect("parse");
        let b = SigningKey::from_pem(&pem).expect("parse");
        assert_eq!(a.derive_secret("x").expose_secret(), b.derive_secret("x").expose_secret());
        assert_ne!(a.derive_secret("x").expose_secret(), a.derive_secret("y").expose_secret());
        assert_eq!(a.kid(), b.kid());
    }

    #[test]
    fn rejects_non_keys() {
        assert!(SigningKey::from_pem(&SecretString::from("not a key")).is_err());
    }
}
