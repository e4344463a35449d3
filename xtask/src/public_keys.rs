//! `cargo xtask public-keys [FILE]`: the public half of a key document (the signing secret:
//! a PEM key or bundle, or the JSON form with rotation states), as the one-line JWK set that
//! the verify-only functions take (`SIGNING_PUBLIC_KEY_PEM`, template parameter
//! `SigningPublicKeyPem`). It lists the keys (algorithm, state, `kid`) on stderr; it never
//! prints private key material. `FILE` defaults to the key document of `cargo xtask dev`;
//! `-` reads stdin.

use std::io::Read as _;

use secrecy::SecretString;

use crate::Result;

pub fn main(args: &[String]) -> Result<()> {
    let text = match args.first().map(String::as_str) {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?,
        None => {
            let path = crate::dev::signing_keys_path();
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
    };
    let keys = rt_jwt::SigningKeys::from_pem(&SecretString::from(text))?;
    eprintln!("{keys:?}");
    println!("{}", keys.verifying_keys().document());
    Ok(())
}
