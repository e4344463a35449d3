//! What the three error families (`oauth`, `api_v2`, the dashboard) share: how a store
//! failure is classed, and the one log line of a server-side failure, with its whole source
//! chain. (The third shared rule, `Retry-After` on every 503, is in `response::finish`.)

use std::error::Error;
use std::fmt;

use rt_domain::ports::StoreError;

/// The status of a store failure: 503 when the database is unavailable (the caller may retry),
/// 500 when a stored item is not what we write.
pub fn store_status(e: &StoreError) -> u16 {
    match e {
        StoreError::Unavailable { .. } => 503,
        StoreError::Corrupt(_) => 500,
    }
}

/// An error and its `source()` chain on one line: `outer: inner: innermost`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// The single log line of a server-side failure (a 5xx), written by the family's mapping.
pub fn log(family: &'static str, status: u16, e: &(dyn Error + 'static)) {
    tracing::error!(family, status, error = %Chain(e), "request failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("sdk: throttled")]
    struct Sdk;

    #[test]
    fn the_chain_names_every_cause() {
        let e = StoreError::unavailable_because("dynamodb: ThrottlingException", Sdk);
        assert_eq!(Chain(&e).to_string(), "database unavailable: dynamodb: ThrottlingException: sdk: throttled");
        assert_eq!(store_status(&e), 503);
        assert_eq!(store_status(&StoreError::Corrupt("x".into())), 500);
    }
}
