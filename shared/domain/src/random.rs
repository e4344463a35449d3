//! Randomness from the operating system's CSPRNG (through aws-lc).

/// Fills `buf` with cryptographically secure random bytes.
pub fn fill(buf: &mut [u8]) {
    // SystemRandom reads the OS CSPRNG (getrandom). It fails only if the kernel refuses, in
    // which case nothing sensible can be issued; we retry once and then zero-fill is never used:
    // the process aborts rather than minting a predictable secret.
    if aws_lc_rs::rand::fill(buf).is_err() && aws_lc_rs::rand::fill(buf).is_err() {
        std::process::abort();
    }
}

/// An array of `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random string of `len` ASCII letters and digits, uniformly distributed (rejection sampling).
pub fn alphanumeric(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf);
        for b in buf {
            // 248 = 4 * 62: values at or above it would bias the distribution.
            if b < 248 {
                if let Some(c) = ALNUM.get(usize::from(b % 62)) {
                    out.push(char::from(*c));
                }
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

/// Lower-case hexadecimal encoding.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(c) = HEX.get(usize::from(nibble)) {
                s.push(char::from(*c));
            }
        }
    }
    s
}

/// Decodes lower- or upper-case hexadecimal into exactly `N` bytes.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let raw = s.as_bytes();
    if raw.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *slot = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphanumeric_has_requested_length_and_alphabet() {
        for len in [0, 1, 16, 100] {
            let s = alphanumeric(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(alphanumeric(16), alphanumeric(16));
    }

    #[test]
    fn hex_round_trips() {
        let b: [u8; 12] = bytes();
        assert_eq!(unhex::<12>(&hex(&b)), Some(b));
        assert_eq!(unhex::<2>("zz00"), None);
        assert_eq!(unhex::<2>("abc"), None);
    }
}
