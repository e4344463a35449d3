//! RS256 JWTs with `jsonwebtoken`: signing (key parsed once per process), verification of our
//! own access tokens, the JWKS document, and keys derived from the signing key.
//!
//! [`SigningKey`] holds the private key; [`VerifyingKey`] is its public half (a public PEM, or
//! [`SigningKey::verifying_key`]) and is all that a function which only verifies tokens or
//! publishes the JWKS needs: both give the same `kid` and JWK.
//!
//! `jsonwebtoken::encode` asks its crypto provider for a signer on every call, and the stock
//! aws-lc provider re-parses the RSA key each time (0.56 ms against 0.22 ms for the signature,
//! TOOLCHAIN.md). We install a provider that hands out a signer around the `RsaKeyPair` parsed
//! once when the [`SigningKey`] was loaded, and defers to the stock provider for everything
//! else.

use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{self as sig, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, aws_lc};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
    ThumbprintHash,
};
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
    /// Never carries key material: the input may have been a private key by mistake.
    #[error("public key is not an RSA public key in PEM (SPKI or PKCS#1, or its base64 body): {0}")]
    PublicParse(&'static str),
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

/// The service's RS256 signing key and its public half.
pub struct SigningKey {
    encoding: EncodingKey,
    public: VerifyingKey,
    /// PKCS#1 DER of the private key: input for derived secrets.
    der: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.public.kid).finish_non_exhaustive()
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
        let public = VerifyingKey::from_public(pair.public_key()).map_err(|e| KeyError::Parse(e.to_string()))?;
        let der = encoding.as_bytes().to_vec();
        if let Ok(mut parsed) = PARSED.write()
            && !parsed.iter().any(|(d, _)| *d == der)
        {
            parsed.push((der.clone(), Arc::new(pair)));
        }
        Ok(Self { encoding, public, der: SecretBox::new(Box::new(der)) })
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub fn public_jwk(&self) -> &Jwk {
        self.public.public_jwk()
    }

    /// The public half: what verifies this key's tokens and is published in the JWKS.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs any claim set with RS256 and this key's `kid`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SignError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.public.kid.clone());
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
}

/// The public half of the signing key: verifies our tokens, is published in the JWKS, holds
/// nothing secret.
#[derive(Clone)]
pub struct VerifyingKey {
    decoding: DecodingKey,
    jwk: Jwk,
    kid: String,
    /// SubjectPublicKeyInfo DER, for [`Self::public_pem`].
    spki: Vec<u8>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Parses an RSA public key: a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, what
    /// `openssl pkey -pubout` writes) or `RSA PUBLIC KEY` (PKCS#1), or the base64 body of
    /// either without its armor lines. Whitespace within the base64 is ignored, so the key
    /// fits on one line (a template parameter).
    pub fn from_public_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let body = match text.strip_prefix("-----BEGIN ") {
            None => text,
            Some(rest) => {
                let (label, rest) =
                    rest.split_once("-----").ok_or(KeyError::PublicParse("no end of the BEGIN line"))?;
                if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
                    return Err(KeyError::PublicParse("expected BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY"));
                }
                rest.split_once("-----END ").map(|(body, _)| body).ok_or(KeyError::PublicParse("no END line"))?
            }
        };
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| KeyError::PublicParse("the body is not base64"))?;
        let public =
            aws_lc_rs::rsa::PublicKey::from_der(&der).map_err(|_| KeyError::PublicParse("not a DER RSA public key"))?;
        Self::from_public(&public)
    }

    fn from_public(public: &aws_lc_rs::rsa::PublicKey) -> Result<Self, KeyError> {
        let components = sig::RsaPublicKeyComponents::<Vec<u8>>::from(public);
        if components.n.len() < 256 {
            return Err(KeyError::TooSmall);
        }
        let spki =
            public.as_der().map_err(|_| KeyError::PublicParse("cannot encode the public key"))?.as_ref().to_vec();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: b64(&components.n),
                e: b64(&components.e),
            }),
        };
        // RFC 7638 thumbprint (over kty, n, e) as the kid: stable for the key, no bookkeeping.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| KeyError::Parse(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| KeyError::Parse(e.to_string()))?;
        Ok(Self { decoding, jwk, kid, spki })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki)
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
pub fn jwks(current: &VerifyingKey, others: &[Jwk]) -> JwkSet {
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
    Ok(SecretString::from(pem("PRIVATE KEY", der.as_ref())))
}

/// `der` armored as PEM with `label`, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
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
        let v = k.verifying_key();
        let back: C = v.verify(&t, "https://t/", "a", now).expect("verify");
        assert_eq!(back, claims(far));
        assert_eq!(v.verify::<C>(&t, "https://other/", "a", now).err(), Some(VerifyError::Issuer));
        assert_eq!(v.verify::<C>(&t, "https://t/", "b", now).err(), Some(VerifyError::Audience));
        assert_eq!(v.verify::<C>(&t, "https://t/", "a", far).err(), Some(VerifyError::Expired));
        assert!(v.verify::<C>(&t, "https://t/", "a", far - 1).is_ok());
        // The JWKS key verifies it too.
        let set = jwks(v, &[]);
        let dk = DecodingKey::from_jwk(set.find(k.kid()).expect("kid in set")).expect("jwk");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["a"]);
        assert!(jsonwebtoken::decode::<C>(&t, &dk, &v).is_ok());
    }

    #[test]
    fn refuses_none_and_hs256_with_the_public_key() {
        let signer = key();
        let k = signer.verifying_key();
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
    fn the_public_key_alone_has_the_same_kid_and_jwk_and_verifies() {
        let k = key();
        let token = k.sign(&claims(4_000_000_000)).expect("sign");
        let pem = k.verifying_key().public_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // PKCS#1 `RSA PUBLIC KEY` of the same key.
        let spki = base64::engine::general_purpose::STANDARD.decode(&body).expect("b64");
        let pkcs1 = aws_lc_rs::rsa::PublicKey::from_der(&spki).expect("spki");
        let pkcs1 = super::pem("RSA PUBLIC KEY", pkcs1.as_ref());
        let one_line = pem.replace('\n', " ");
        for text in [pem.as_str(), one_line.as_str(), body.as_str(), pkcs1.as_str(), &format!("\n  {body}\n")] {
            let v = VerifyingKey::from_public_pem(text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(v.kid(), k.kid());
            assert_eq!(v.public_jwk(), k.public_jwk());
            assert_eq!(
                serde_json::to_value(jwks(&v, &[])).ok(),
                serde_json::to_value(jwks(k.verifying_key(), &[])).ok()
            );
            let back: C = v.verify(&token, "https://t/", "a", 0).expect("verify");
            assert_eq!(back, claims(4_000_000_000));
            assert_eq!(v.public_pem(), pem);
        }
    }

    #[test]
    fn a_public_key_is_refused_when_it_is_private_small_or_garbage_and_no_key_material_is_echoed() {
        let private = generate_pem().expect("generate");
        let e = VerifyingKey::from_public_pem(private.expose_secret()).expect_err("a private key");
        assert!(matches!(e, KeyError::PublicParse(_)), "{e}");
        let body: String = private.expose_secret().lines().filter(|l| !l.starts_with("-----")).collect();
        let e = VerifyingKey::from_public_pem(&body).expect_err("a private key's body");
        assert!(!e.to_string().contains(body.get(..16).unwrap_or_default()), "{e}");
        for garbage in ["", "not a key", "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----"] {
            assert!(VerifyingKey::from_public_pem(garbage).is_err(), "{garbage}");
        }
        let mut n = vec![0xC3_u8; 128];
        n[127] = 0xC5;
        let small = sig::RsaPublicKeyComponents { n, e: vec![1, 0, 1] }.as_der().expect("der");
        let small = super::pem("PUBLIC KEY", small.as_ref());
        assert!(matches!(VerifyingKey::from_public_pem(&small), Err(KeyError::TooSmall)));
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
