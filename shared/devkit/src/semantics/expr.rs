//! Just enough of DynamoDB's expression language for the rules the semantics layer enforces:
//! which placeholders an expression uses, which value a key condition compares with which
//! attribute, and what an update expression writes.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An attribute name, `#placeholder` resolved where possible.
    Name(String),
    /// A `:value` placeholder.
    Value(String),
    Punct(char),
    /// `=`, `<>`, `<`, `<=`, `>`, `>=`.
    Cmp,
}

fn tokens(expr: &str, names: &HashMap<String, String>) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let word = |start: usize| {
        let mut j = start;
        while chars.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
            j += 1;
        }
        (chars.get(start..j).map(|s| s.iter().collect::<String>()).unwrap_or_default(), j)
    };
    while let Some(&c) = chars.get(i) {
        match c {
            '#' | ':' => {
                let (w, j) = word(i + 1);
                let placeholder = format!("{c}{w}");
                out.push(if c == '#' {
                    Token::Name(names.get(&placeholder).cloned().unwrap_or(placeholder))
                } else {
                    Token::Value(placeholder)
                });
                i = j;
            }
            '=' => {
                out.push(Token::Cmp);
                i += 1;
            }
            '<' | '>' => {
                out.push(Token::Cmp);
                i += if matches!(chars.get(i + 1), Some('=' | '>')) { 2 } else { 1 };
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let (w, j) = word(i);
                out.push(Token::Name(w));
                i = j;
            }
            c if c.is_whitespace() => i += 1,
            c => {
                out.push(Token::Punct(c));
                i += 1;
            }
        }
    }
    out
}

/// The `#name` and `:value` placeholders that appear in `exprs`.
pub fn placeholders<'a>(exprs: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for e in exprs {
        let chars: Vec<char> = e.chars().collect();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            if c == '#' || c == ':' {
                let mut p = String::from(c);
                while let Some(&n) = chars.get(i).filter(|n| n.is_ascii_alphanumeric() || **n == '_') {
                    p.push(n);
                    i += 1;
                }
                used.insert(p);
            }
        }
    }
    used
}

/// DynamoDB's check that every `ExpressionAttributeNames` / `ExpressionAttributeValues` entry
/// of a request (or of one action of a transaction) is used by one of its expressions. moto
/// skips the check for values; the service answers `ValidationException`.
pub fn unused_placeholders(action: &Value) -> Option<String> {
    let exprs: Vec<&str> = [
        "ConditionExpression",
        "UpdateExpression",
        "KeyConditionExpression",
        "FilterExpression",
        "ProjectionExpression",
    ]
    .iter()
    .filter_map(|k| action.get(*k).and_then(Value::as_str))
    .collect();
    let used = placeholders(exprs);
    for (field, what) in [
        ("ExpressionAttributeValues", "ExpressionAttributeValues"),
        ("ExpressionAttributeNames", "ExpressionAttributeNames"),
    ] {
        let Some(defined) = action.get(field).and_then(Value::as_object) else { continue };
        let unused: Vec<&str> = defined.keys().filter(|k| !used.contains(*k)).map(String::as_str).collect();
        if !unused.is_empty() {
            return Some(format!("Value provided in {what} unused in expressions: keys: {{{}}}", unused.join(", ")));
        }
    }
    None
}

/// The attribute each `:value` of a key condition is compared with.
pub fn key_condition_operands(expr: &str, names: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut last_name: Option<String> = None;
    let mut pending: Vec<String> = Vec::new();
    for t in tokens(expr, names) {
        match t {
            Token::Name(n) if !is_keyword(&n) => {
                for v in pending.drain(..) {
                    pairs.push((n.clone(), v));
                }
                last_name = Some(n);
            }
            Token::Value(v) => match &last_name {
                Some(n) => pairs.push((n.clone(), v)),
                None => pending.push(v),
            },
            _ => {}
        }
    }
    pairs
}

fn is_keyword(w: &str) -> bool {
    ["AND", "OR", "NOT", "BETWEEN", "IN", "begins_with", "SET", "REMOVE", "ADD", "DELETE"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(w))
}

/// One element of a document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPart {
    Attr(String),
    Index(usize),
}

/// What an update expression does to one path.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `SET path = :v`
    Set(Vec<PathPart>, Value),
    /// `SET path = path ± :v` or `ADD path :v` on a number: the delta.
    Add(Vec<PathPart>, f64),
    Remove(Vec<PathPart>),
    /// A form this model does not evaluate (`if_not_exists`, `list_append`, sets…): only the
    /// top-level attribute it writes is known.
    Opaque(String),
}

impl Action {
    /// The top-level attribute written.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            Self::Set(p, _) | Self::Add(p, _) | Self::Remove(p) => match p.first() {
                Some(PathPart::Attr(a)) => Some(a),
                _ => None,
            },
            Self::Opaque(a) => Some(a),
        }
    }
}

/// Splits `s` at `sep` where not nested in parentheses or brackets.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(s.get(start..i).unwrap_or(""));
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

fn path(text: &str, names: &HashMap<String, String>) -> Option<Vec<PathPart>> {
    let mut parts = Vec::new();
    for seg in text.trim().split('.') {
        let (head, rest) = match seg.find('[') {
            Some(i) => (seg.get(..i)?, seg.get(i..)?),
            None => (seg, ""),
        };
        let head = head.trim();
        if head.is_empty() {
            return None;
        }
        let name = if head.starts_with('#') { names.get(head)?.clone() } else { head.to_owned() };
        parts.push(PathPart::Attr(name));
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            parts.push(PathPart::Index(idx.trim_end_matches(']').trim().parse().ok()?));
        }
    }
    Some(parts)
}

fn number(v: &Value) -> Option<f64> {
    v.get("N").and_then(Value::as_str).and_then(|n| n.parse().ok())
}

/// The actions of an update expression, with `:values` substituted.
pub fn update_actions(expr: &str, names: &HashMap<String, String>, values: &HashMap<String, Value>) -> Vec<Action> {
    // Find the clause keywords at the top level.
    let mut clauses: Vec<(String, usize, usize)> = Vec::new();
    let bytes = expr.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes.get(i).copied().unwrap_or(b' ');
        match c {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            _ => {}
        }
        let boundary = i == 0 || bytes.get(i - 1).is_some_and(|b| b.is_ascii_whitespace());
        if depth == 0 && boundary {
            for kw in ["SET", "REMOVE", "ADD", "DELETE"] {
                let end = i + kw.len();
                let matches = expr.get(i..end).is_some_and(|w| w.eq_ignore_ascii_case(kw))
                    && bytes.get(end).is_none_or(|b| b.is_ascii_whitespace());
                if matches {
                    if let Some(last) = clauses.last_mut() {
                        last.2 = i;
                    }
                    clauses.push((kw.to_owned(), end, bytes.len()));
                    i = end;
                    break;
                }
            }
        }
        i += 1;
    }
    let mut actions = Vec::new();
    for (kw, start, end) in clauses {
        let body = expr.get(start..end).unwrap_or("");
        for item in split_top(body, ',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let action = match kw.as_str() {
                "SET" => set_action(item, names, values),
                "REMOVE" => path(item, names).map(Action::Remove),
                "ADD" | "DELETE" => {
                    let mut words = item.split_whitespace();
                    let p = words.next().and_then(|p| path(p, names));
                    let v = words.next().and_then(|v| values.get(v));
                    match (kw.as_str(), p, v.and_then(number)) {
                        ("ADD", Some(p), Some(d)) => Some(Action::Add(p, d)),
                        (_, Some(p), _) => first_attr(&p).map(Action::Opaque),
                        _ => None,
                    }
                }
                _ => None,
            };
            actions.push(action.unwrap_or_else(|| Action::Opaque(opaque_target(item, names))));
        }
    }
    actions
}

fn first_attr(p: &[PathPart]) -> Option<String> {
    match p.first() {
        Some(PathPart::Attr(a)) => Some(a.clone()),
        _ => None,
    }
}

fn opaque_target(item: &str, names: &HashMap<String, String>) -> String {
    let head = item.split(['=', ' ', '.', '[']).next().unwrap_or("").trim();
    names.get(head).cloned().unwrap_or_else(|| head.to_owned())
}

fn set_action(item: &str, names: &HashMap<String, String>, values: &HashMap<String, Value>) -> Option<Action> {
    let (lhs, rhs) = item.split_once('=')?;
    let target = path(lhs, names)?;
    let rhs = rhs.trim();
    if let Some(v) = values.get(rhs) {
        return Some(Action::Set(target, v.clone()));
    }
    // `path + :v` / `path - :v` on the same path.
    for (op, sign) in [('+', 1.0), ('-', -1.0)] {
        if let Some((a, b)) = rhs.split_once(op)
            && path(a, names).as_ref() == Some(&target)
            && let Some(d) = values.get(b.trim()).and_then(number)
        {
            return Some(Action::Add(target, sign * d));
        }
    }
    first_attr(&target).map(Action::Opaque)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn unused_values_and_names_are_found() {
        let ok = json!({"ConditionExpression": "#a = :a", "ExpressionAttributeNames": {"#a": "x"},
                        "ExpressionAttributeValues": {":a": {"S": "1"}}});
        assert_eq!(unused_placeholders(&ok), None);
        let bad = json!({"ConditionExpression": "#a = :a", "ExpressionAttributeNames": {"#a": "x"},
                         "ExpressionAttributeValues": {":a": {"S": "1"}, ":ab": {"S": "2"}}});
        let m = unused_placeholders(&bad).unwrap_or_default();
        assert!(m.contains("ExpressionAttributeValues unused") && m.contains(":ab"), "{m}");
        let bad = json!({"UpdateExpression": "SET #a = :a", "ExpressionAttributeNames": {"#a": "x", "#b": "y"},
                         "ExpressionAttributeValues": {":a": {"S": "1"}}});
        assert!(unused_placeholders(&bad).unwrap_or_default().contains("#b"));
    }

    #[test]
    fn key_conditions_pair_values_with_attributes() {
        let n = names(&[("#pk", "gsi1pk"), ("#sk", "gsi1sk")]);
        assert_eq!(
            key_condition_operands("#pk = :pk AND begins_with(#sk, :prefix)", &n),
            vec![("gsi1pk".to_owned(), ":pk".to_owned()), ("gsi1sk".to_owned(), ":prefix".to_owned())]
        );
        assert_eq!(
            key_condition_operands("pk = :p AND sk BETWEEN :a AND :b", &HashMap::new()),
            vec![("pk".into(), ":p".into()), ("sk".into(), ":a".into()), ("sk".into(), ":b".into())]
        );
    }

    #[test]
    fn update_expressions_are_modelled() {
        let n = names(&[("#rl", "rl"), ("#a", "10.0.0.1"), ("#n", "n"), ("#uc", "use_count"), ("#s0", "old")]);
        let v: HashMap<String, Value> =
            [(":e", json!({"M": {"n": {"N": "1"}}})), (":one", json!({"N": "1"})), (":x", json!({"S": "x"}))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
        let acts = update_actions("SET #rl.#a = :e, lu = :x ADD #uc :one REMOVE #rl.#s0", &n, &v);
        assert_eq!(acts.len(), 4, "{acts:?}");
        assert_eq!(
            acts.first(),
            Some(&Action::Set(
                vec![PathPart::Attr("rl".into()), PathPart::Attr("10.0.0.1".into())],
                json!({"M": {"n": {"N": "1"}}})
            ))
        );
        assert_eq!(acts.get(2), Some(&Action::Add(vec![PathPart::Attr("use_count".into())], 1.0)));
        assert_eq!(acts.get(3), Some(&Action::Remove(vec![PathPart::Attr("rl".into()), PathPart::Attr("old".into())])));
        let acts = update_actions("SET #n = #n + :one, y = if_not_exists(y, :x)", &n, &v);
        assert_eq!(acts.first(), Some(&Action::Add(vec![PathPart::Attr("n".into())], 1.0)));
        assert_eq!(acts.get(1).and_then(Action::attribute), Some("y"));
    }
}
