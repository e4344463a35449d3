//! A device name from a `User-Agent` header ("Chrome on Linux"), for sign-ins that name no
//! `device`: the dashboard and the Management API still show something a person recognises.
//! A heuristic over the well-known tokens, not a full parser: the name is a label, never a
//! security decision.

use crate::ids::DeviceName;

/// Used when the header is absent or says nothing recognisable.
pub const UNKNOWN_DEVICE: &str = crate::ids::UNKNOWN_DEVICE;

/// Browsers, most specific first (Edge and Opera also say "Chrome"; Chrome also says "Safari").
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("HeadlessChrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
];

/// Operating systems, most specific first (Android also says "Linux"; iOS also says "Mac OS X").
const SYSTEMS: &[(&str, &str)] = &[
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
];

/// "Firefox on Linux", "Safari on iOS"; the product name for non-browsers ("curl", "node");
/// [`UNKNOWN_DEVICE`] otherwise.
pub fn device_name(user_agent: Option<&str>) -> DeviceName {
    let ua = user_agent.unwrap_or("").trim();
    let found = |table: &[(&str, &'static str)]| table.iter().find(|(token, _)| ua.contains(token)).map(|(_, n)| *n);
    let label = match (found(BROWSERS), found(SYSTEMS)) {
        (Some(b), Some(os)) => format!("{b} on {os}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(os)) => format!("Browser on {os}"),
        (None, None) => product(ua).unwrap_or(UNKNOWN_DEVICE).to_owned(),
    };
    DeviceName::parse(&label).unwrap_or_else(|_| DeviceName::unknown())
}

/// The first product token ("curl/8.5.0" → "curl"), when it is a plain word.
fn product(ua: &str) -> Option<&str> {
    let name = ua.split(['/', ' ']).next()?;
    let plain =
        !name.is_empty() && name.len() <= 40 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    plain.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(ua: &str) -> String {
        device_name(Some(ua)).as_str().to_owned()
    }

    #[test]
    fn browsers_and_systems() {
        assert_eq!(name("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"), "Firefox on Linux");
        assert_eq!(
            name(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
            ),
            "Edge on Windows"
        );
        assert_eq!(
            name(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
            ),
            "Safari on iOS"
        );
        assert_eq!(
            name(
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
            ),
            "Chrome on Android"
        );
        assert_eq!(
            name(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
            ),
            "Chrome on Linux"
        );
        assert_eq!(
            name(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
            ),
            "Safari on macOS"
        );
    }

    #[test]
    fn tools_and_nothing() {
        assert_eq!(name("curl/8.5.0"), "curl");
        assert_eq!(name("node"), "node");
        assert_eq!(device_name(None).as_str(), UNKNOWN_DEVICE);
        assert_eq!(name("   "), UNKNOWN_DEVICE);
        assert_eq!(name("\u{1}\u{2}"), UNKNOWN_DEVICE);
        assert_eq!(name(&"x".repeat(5000)), UNKNOWN_DEVICE);
    }
}
