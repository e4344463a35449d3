//! Reading a JSON request body as Auth0 validates it: an object with known properties only,
//! each of the expected JSON type and size.

use serde_json::{Map, Value};

use super::error::{ApiError, payload};

/// A JSON object whose properties are all among those allowed.
#[derive(Debug)]
pub struct Object(Map<String, Value>);

impl Object {
    /// Refuses anything but an object, and properties outside `allowed` (Auth0: "Additional
    /// properties not allowed").
    pub fn parse(v: Value, allowed: &[&str]) -> Result<Self, ApiError> {
        match v {
            Value::Object(m) => Self::known(m, allowed),
            _ => Err(payload("the body must be a JSON object")),
        }
    }

    fn known(m: Map<String, Value>, allowed: &[&str]) -> Result<Self, ApiError> {
        let extra: Vec<&str> = m.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
        if extra.is_empty() {
            Ok(Self(m))
        } else {
            Err(payload(format!("'Additional properties not allowed: {}'", extra.join(","))))
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A present, non-null property.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A nested object (`null` is absent), with its own allowed properties.
    pub fn object(&self, name: &str, allowed: &[&str]) -> Result<Option<Self>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Self::known(m.clone(), allowed).map(Some),
            Some(_) => Err(payload(format!("'{name}' must be an object"))),
        }
    }

    /// A string of at most `max` characters without control characters.
    pub fn string(&self, name: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(payload(format!(
                "'{name}' must be a string of at most {max} characters without control characters"
            ))),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(payload(format!("'{name}' must be a boolean"))),
        }
    }

    /// An array of at most `max_items` strings (each at most 2 048 bytes, no control
    /// characters).
    pub fn strings(&self, name: &str, max_items: usize) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) if a.len() <= max_items => a
                .iter()
                .map(|v| match v {
                    Value::String(s) if s.len() <= 2048 && !s.chars().any(char::is_control) => Ok(s.clone()),
                    _ => Err(payload(format!("'{name}' must be an array of strings"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(payload(format!("'{name}' must be an array of at most {max_items} strings"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(e: ApiError) -> String {
        e.to_string()
    }

    #[test]
    fn objects_are_strict() {
        assert!(Object::parse(json!([1]), &["a"]).is_err());
        let e = Object::parse(json!({"a": 1, "role": "admin"}), &["a"]).expect_err("extra");
        assert_eq!(message(e), "Payload validation error: 'Additional properties not allowed: role'");
        let o = Object::parse(json!({"a": "x", "b": true, "c": ["u"], "n": null}), &["a", "b", "c", "n"]).expect("ok");
        assert_eq!(o.string("a", 5).ok().flatten().as_deref(), Some("x"));
        assert!(o.string("b", 5).is_err());
        assert_eq!(o.bool("b").ok().flatten(), Some(true));
        assert_eq!(o.strings("c", 1).ok().flatten(), Some(vec!["u".to_owned()]));
        assert!(o.strings("c", 0).is_err());
        assert_eq!(o.string("n", 5).ok().flatten(), None);
        assert!(o.contains("n") && o.get("n").is_none());
        assert!(Object::parse(json!({"a": "\u{7}"}), &["a"]).expect("ok").string("a", 5).is_err());
    }
}
