//! Keys in one place: every key prefix and every attribute name that reaches DynamoDB comes
//! from `shared/store/src/keys.rs`. Renaming an attribute there must not leave a condition
//! elsewhere naming the old one (it would compile and silently stop checking).

use rt_devkit::paths::repo_root;

/// The string literals of Rust source `text` (outside `#[cfg(test)]` modules).
fn literals(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        match c {
            // Line comments (doc comments included) hold prose, not requests.
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            // A char literal such as '#' or '"' (not a lifetime).
            '\'' if !prev.is_alphanumeric() => {
                let lit: String = chars.clone().take(3).collect();
                if lit.starts_with('\\') {
                    chars.nth(2);
                } else if lit.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            _ => {}
        }
        prev = c;
    }
    out
}

const EXPRESSION_WORDS: &[&str] = &[
    "AND",
    "OR",
    "NOT",
    "SET",
    "ADD",
    "REMOVE",
    "DELETE",
    "BETWEEN",
    "IN",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "contains",
    "size",
    "begins_with",
    "if_not_exists",
    "list_append",
];

/// The names an expression uses without a `#name` / `:value` placeholder (format arguments in
/// `{}` are code, not expression text).
fn bare_names(expr: &str) -> Vec<String> {
    let mut text = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if depth == 0 => text.push(c),
            _ => {}
        }
    }
    let mut names = Vec::new();
    let mut word = String::new();
    let mut placeholder = false;
    let mut prev = ' ';
    for c in text.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' {
            if word.is_empty() {
                placeholder = prev == '#' || prev == ':';
            }
            word.push(c);
        } else {
            if !word.is_empty() && !placeholder && !EXPRESSION_WORDS.contains(&word.as_str()) {
                names.push(word.clone());
            }
            word.clear();
        }
        prev = c;
    }
    names
}

fn looks_like_expression(s: &str) -> bool {
    [
        "attribute_exists(",
        "attribute_not_exists(",
        " = ",
        " < ",
        "SET ",
        "REMOVE ",
        "ADD ",
        "contains(",
        "size(",
        "begins_with(",
    ]
    .iter()
    .any(|m| s.contains(m))
}

#[test]
fn the_scanner_sees_what_it_must() {
    let src = r##"
        // "USER#" in a comment is prose
        let a = "attribute_exists(pk) AND #rev = :rev"; let c = '"'; let d = "CLIENT#x";
        fn f<'a>(x: &'a str) {} let e = format!("{PRESENT} AND #n = :n{i}");
        #[cfg(test)] mod tests { const X: &str = "DCR#"; }
    "##;
    let lits = literals(src);
    assert_eq!(lits, ["attribute_exists(pk) AND #rev = :rev", "CLIENT#x", "{PRESENT} AND #n = :n{i}"]);
    assert_eq!(bare_names(&lits[0]), ["pk"]);
    assert!(bare_names(&lits[2]).is_empty());
}

#[test]
fn key_prefixes_and_attribute_names_come_only_from_keys_rs() {
    let dir = repo_root().join("shared/store/src");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "rs") || name == "keys.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for lit in literals(&text) {
            let prefix = lit
                .split(|c: char| !c.is_ascii_uppercase() && c != '#')
                .any(|w| w.len() > 2 && w.ends_with('#') && w.chars().filter(|c| *c == '#').count() == 1);
            if prefix {
                problems.push(format!("{name}: key prefix in {lit:?}"));
            }
            if looks_like_expression(&lit) {
                let bare = bare_names(&lit);
                if !bare.is_empty() {
                    problems
                        .push(format!("{name}: {bare:?} named directly in {lit:?} (use #placeholders from keys.rs)"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "literals outside keys.rs:\n{}", problems.join("\n"));
}
