//! DynamoDB's data model as far as the layer needs it: keys, item sizes, table schemas, the
//! index entries a write reaches, and capacity units.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::expr::{Action, PathPart};

/// An item: attribute name → AttributeValue in DynamoDB JSON.
pub type Item = Map<String, Value>;

/// DynamoDB's item size limit (400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
pub const MAX_HASH_KEY_BYTES: usize = 2048;
pub const MAX_RANGE_KEY_BYTES: usize = 1024;

/// The size of an attribute value as DynamoDB counts it (Developer Guide, "Item sizes").
pub fn value_size(v: &Value) -> usize {
    let Some((ty, inner)) = v.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match ty.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "SS" => inner.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(str::len).sum()),
        "NS" => inner.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(number_size).sum()),
        "BS" => inner.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(|b| b.len() * 3 / 4).sum()),
        "L" => 3 + inner.as_array().map_or(0, |a| a.iter().map(|x| value_size(x) + 1).sum()),
        "M" => 3 + inner.as_object().map_or(0, |m| m.iter().map(|(k, x)| k.len() + value_size(x) + 1).sum()),
        _ => 0,
    }
}

/// 1 byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// The scalar inside an `S`, `N` or `B` attribute value.
pub fn scalar(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    ["S", "N", "B"].iter().find_map(|t| o.get(*t).and_then(Value::as_str))
}

/// An item's identity: table and primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    pub table: String,
    pub pk: String,
    pub sk: String,
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.table, self.pk, self.sk)
    }
}

/// A partition key of a table or of one of its global secondary indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub table: String,
    /// `None` for the table itself.
    pub index: Option<String>,
    pub key: String,
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.index {
            Some(i) => write!(f, "{}[{i}]/{}", self.table, self.key),
            None => write!(f, "{}/{}", self.table, self.key),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct IndexSchema {
    pub name: String,
    pub hash: String,
    pub range: Option<String>,
    pub projection: Projection,
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub hash: String,
    pub range: Option<String>,
    pub indexes: Vec<IndexSchema>,
}

fn key_schema(v: &Value) -> Option<(String, Option<String>)> {
    let mut hash = None;
    let mut range = None;
    for k in v.as_array()? {
        let name = k.get("AttributeName")?.as_str()?.to_owned();
        match k.get("KeyType")?.as_str()? {
            "HASH" => hash = Some(name),
            _ => range = Some(name),
        }
    }
    Some((hash?, range))
}

impl Schema {
    /// From the `Table` of a `DescribeTable` answer.
    pub fn from_description(table: &Value) -> Option<Self> {
        let (hash, range) = key_schema(table.get("KeySchema")?)?;
        let mut indexes = Vec::new();
        for g in table.get("GlobalSecondaryIndexes").and_then(Value::as_array).into_iter().flatten() {
            let (h, r) = key_schema(g.get("KeySchema")?)?;
            let p = g.get("Projection");
            let projection = match p.and_then(|p| p.get("ProjectionType")).and_then(Value::as_str) {
                Some("KEYS_ONLY") => Projection::KeysOnly,
                Some("INCLUDE") => Projection::Include(
                    p.and_then(|p| p.get("NonKeyAttributes"))
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_default(),
                ),
                _ => Projection::All,
            };
            indexes.push(IndexSchema { name: g.get("IndexName")?.as_str()?.to_owned(), hash: h, range: r, projection });
        }
        Some(Self { hash, range, indexes })
    }

    /// The primary key of a `Key` map or of a whole item.
    pub fn key_of(&self, table: &str, item: &Item) -> Option<ItemKey> {
        let pk = scalar(item.get(&self.hash)?)?.to_owned();
        let sk = match &self.range {
            Some(r) => scalar(item.get(r)?)?.to_owned(),
            None => String::new(),
        };
        Some(ItemKey { table: table.to_owned(), pk, sk })
    }

    /// The primary-key attributes of `item` (what a `Key` parameter holds).
    pub fn key_attributes(&self, item: &Item) -> Item {
        let mut k = Item::new();
        for name in std::iter::once(&self.hash).chain(self.range.iter()) {
            if let Some(v) = item.get(name) {
                k.insert(name.clone(), v.clone());
            }
        }
        k
    }

    pub fn index(&self, name: &str) -> Option<&IndexSchema> {
        self.indexes.iter().find(|i| i.name == name)
    }

    fn is_table_key(&self, attr: &str) -> bool {
        attr == self.hash || self.range.as_deref() == Some(attr)
    }
}

impl IndexSchema {
    /// The index partition an item appears in, if it carries the index's key attributes.
    pub fn entry_key(&self, item: &Item) -> Option<String> {
        if let Some(r) = &self.range {
            scalar(item.get(r)?)?;
        }
        Some(scalar(item.get(&self.hash)?)?.to_owned())
    }

    fn is_key(&self, attr: &str) -> bool {
        attr == self.hash || self.range.as_deref() == Some(attr)
    }

    /// Whether writing `attr` changes this index's entry of an item.
    pub fn reaches(&self, table: &Schema, attr: &str) -> bool {
        match &self.projection {
            Projection::All => true,
            Projection::KeysOnly => self.is_key(attr) || table.is_table_key(attr),
            Projection::Include(extra) => {
                self.is_key(attr) || table.is_table_key(attr) || extra.iter().any(|e| e == attr)
            }
        }
    }

    /// The size of an item's entry in this index.
    pub fn entry_size(&self, table: &Schema, item: &Item) -> usize {
        match &self.projection {
            Projection::All => item_size(item),
            _ => item.iter().filter(|(k, _)| self.reaches(table, k)).map(|(k, v)| k.len() + value_size(v)).sum(),
        }
    }
}

/// Capacity units of a write of `size` bytes (1 KB units), doubled in a transaction.
pub fn write_units(size: usize, transactional: bool) -> f64 {
    let units = size.div_ceil(1024).max(1) as f64;
    if transactional { units * 2.0 } else { units }
}

/// Capacity units of a read of `size` bytes (4 KB units): half for an eventually consistent
/// read, double in a transaction.
pub fn read_units(size: usize, consistent: bool, transactional: bool) -> f64 {
    let units = size.div_ceil(4096).max(1) as f64;
    if transactional {
        units * 2.0
    } else if consistent {
        units
    } else {
        units / 2.0
    }
}

/// What one write does to one item.
#[derive(Debug, Clone)]
pub enum WriteKind {
    Put(Item),
    Update(Vec<Action>),
    Delete,
    /// A `ConditionCheck` in a transaction: charged like a write of the item, writes nothing.
    Check,
}

/// The partitions a write reaches and the item after it.
#[derive(Debug, Clone)]
pub struct WritePlan {
    pub units: Vec<(Partition, f64)>,
    /// The item after the write (`None`: deleted or never existed); an estimate when `exact`
    /// is false.
    pub after: Option<Item>,
    pub exact: bool,
}

impl WritePlan {
    pub fn new_size(&self) -> usize {
        self.after.as_ref().map_or(0, item_size)
    }
}

/// Plans one write of `key` (whose current item is `before`).
pub fn plan_write(
    schema: &Schema,
    key: &ItemKey,
    key_attrs: &Item,
    before: Option<&Item>,
    kind: &WriteKind,
    transactional: bool,
) -> WritePlan {
    let (after, exact) = match kind {
        WriteKind::Put(item) => (Some(item.clone()), true),
        WriteKind::Delete => (None, true),
        WriteKind::Check => (before.cloned(), true),
        WriteKind::Update(actions) => {
            let mut img = before.cloned().unwrap_or_else(|| key_attrs.clone());
            let exact = apply(&mut img, actions);
            (Some(img), exact)
        }
    };
    let table_partition = Partition { table: key.table.clone(), index: None, key: key.pk.clone() };
    let size = before.map_or(0, item_size).max(after.as_ref().map_or(0, item_size));
    let mut units = vec![(table_partition, write_units(size, transactional))];
    if !matches!(kind, WriteKind::Check) {
        for index in &schema.indexes {
            let touched = match kind {
                WriteKind::Update(actions) => {
                    actions.iter().any(|a| a.attribute().is_none_or(|attr| index.reaches(schema, attr)))
                }
                _ => true,
            };
            if !touched {
                continue;
            }
            let old = before.and_then(|b| index.entry_key(b).map(|k| (k, index.entry_size(schema, b))));
            let new = after.as_ref().and_then(|a| index.entry_key(a).map(|k| (k, index.entry_size(schema, a))));
            let partition = |k: String| Partition { table: key.table.clone(), index: Some(index.name.clone()), key: k };
            match (old, new) {
                (Some((ok, os)), Some((nk, ns))) if ok == nk => {
                    units.push((partition(ok), write_units(os.max(ns), transactional)));
                }
                (old, new) => {
                    for (k, s) in old.into_iter().chain(new) {
                        units.push((partition(k), write_units(s, transactional)));
                    }
                }
            }
        }
    }
    WritePlan { units, after, exact }
}

/// Applies update actions to an item; `false` when some action could only be estimated.
pub fn apply(item: &mut Item, actions: &[Action]) -> bool {
    let mut exact = true;
    for a in actions {
        exact &= match a {
            Action::Set(path, v) => set_path(item, path, Some(v.clone())),
            Action::Remove(path) => set_path(item, path, None),
            Action::Add(path, delta) => {
                let current = get_path(item, path).and_then(|v| v.get("N")).and_then(Value::as_str);
                let base: f64 = current.and_then(|n| n.parse().ok()).unwrap_or(0.0);
                let sum = base + delta;
                let text =
                    if sum.fract() == 0.0 && sum.abs() < 1e15 { format!("{}", sum as i64) } else { sum.to_string() };
                set_path(item, path, Some(serde_json::json!({ "N": text })))
            }
            Action::Opaque(attr) => {
                // Unknown value: keep the attribute as it is (the size is an estimate).
                let _ = attr;
                false
            }
        };
    }
    exact
}

fn get_path<'a>(item: &'a Item, path: &[PathPart]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let PathPart::Attr(name) = first else { return None };
    let mut v = item.get(name)?;
    for p in rest {
        v = match p {
            PathPart::Attr(a) => v.get("M")?.get(a)?,
            PathPart::Index(i) => v.get("L")?.get(*i)?,
        };
    }
    Some(v)
}

/// Sets (or with `None` removes) the value at `path`; `false` if the path cannot be modelled.
fn set_path(item: &mut Item, path: &[PathPart], value: Option<Value>) -> bool {
    let Some((first, rest)) = path.split_first() else { return false };
    let PathPart::Attr(name) = first else { return false };
    if rest.is_empty() {
        match value {
            Some(v) => item.insert(name.clone(), v),
            None => item.remove(name),
        };
        return true;
    }
    let Some(mut cur) = item.get_mut(name) else { return value.is_none() };
    let Some((last, middle)) = rest.split_last() else { return false };
    for p in middle {
        let next = match p {
            PathPart::Attr(a) => cur.get_mut("M").and_then(|m| m.get_mut(a)),
            PathPart::Index(i) => cur.get_mut("L").and_then(|l| l.get_mut(*i)),
        };
        match next {
            Some(n) => cur = n,
            None => return value.is_none(),
        }
    }
    match (last, value) {
        (PathPart::Attr(a), Some(v)) => {
            cur.get_mut("M").and_then(Value::as_object_mut).map(|m| m.insert(a.clone(), v)).is_some()
        }
        (PathPart::Attr(a), None) => {
            if let Some(m) = cur.get_mut("M").and_then(Value::as_object_mut) {
                m.remove(a);
            }
            true
        }
        (PathPart::Index(i), Some(v)) => match cur.get_mut("L").and_then(Value::as_array_mut) {
            Some(l) if *i < l.len() => {
                if let Some(slot) = l.get_mut(*i) {
                    *slot = v;
                }
                true
            }
            Some(l) => {
                l.push(v);
                true
            }
            None => false,
        },
        (PathPart::Index(i), None) => {
            if let Some(l) = cur.get_mut("L").and_then(Value::as_array_mut)
                && *i < l.len()
            {
                l.remove(*i);
            }
            true
        }
    }
}

/// A token bucket per partition: `rate` units per second, at most one second of burst.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    pub fn full(rate: f64) -> Self {
        Self { tokens: rate, at: std::time::Instant::now() }
    }

    fn refill(&mut self, rate: f64) {
        let now = std::time::Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(rate);
        self.at = now;
    }

    /// Takes `units` if there are that many; `false` (and nothing taken) otherwise.
    pub fn take(&mut self, rate: f64, units: f64) -> bool {
        self.refill(rate);
        if self.tokens + 1e-9 >= units {
            self.tokens -= units;
            true
        } else {
            false
        }
    }

    /// Whether a read may start (reads are charged after the fact and may overdraw).
    pub fn has_some(&mut self, rate: f64) -> bool {
        self.refill(rate);
        self.tokens > 0.0
    }

    pub fn charge(&mut self, rate: f64, units: f64) {
        self.refill(rate);
        self.tokens -= units;
    }
}

/// Sums units per partition.
pub fn per_partition(units: impl IntoIterator<Item = (Partition, f64)>) -> HashMap<Partition, f64> {
    let mut m: HashMap<Partition, f64> = HashMap::new();
    for (p, u) in units {
        *m.entry(p).or_default() += u;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().cloned().unwrap_or_default()
    }

    fn schema() -> Schema {
        Schema {
            hash: "pk".into(),
            range: Some("sk".into()),
            indexes: vec![
                IndexSchema { name: "all".into(), hash: "g1".into(), range: None, projection: Projection::All },
                IndexSchema { name: "keys".into(), hash: "g2".into(), range: None, projection: Projection::KeysOnly },
            ],
        }
    }

    #[test]
    fn sizes_follow_the_developer_guide() {
        assert_eq!(value_size(&json!({"S": "abc"})), 3);
        assert_eq!(value_size(&json!({"N": "123"})), 3);
        assert_eq!(value_size(&json!({"BOOL": true})), 1);
        assert_eq!(item_size(&item(json!({"ab": {"S": "xyz"}}))), 5);
        assert_eq!(write_units(1024, false), 1.0);
        assert_eq!(write_units(1025, true), 4.0);
        assert_eq!(read_units(100, false, false), 0.5);
    }

    #[test]
    fn writes_reach_indexes_by_projection() {
        let s = schema();
        let before =
            item(json!({"pk": {"S": "A"}, "sk": {"S": "A"}, "g1": {"S": "G1"}, "g2": {"S": "G2"}, "n": {"N": "1"}}));
        let key =
            s.key_of("t", &before).unwrap_or_else(|| ItemKey { table: "t".into(), pk: "?".into(), sk: "?".into() });
        let keys = s.key_attributes(&before);
        let bump = WriteKind::Update(vec![Action::Add(vec![PathPart::Attr("n".into())], 1.0)]);
        let plan = plan_write(&s, &key, &keys, Some(&before), &bump, true);
        let parts: Vec<String> = plan.units.iter().map(|(p, _)| p.to_string()).collect();
        // ALL projection: every write of the item; KEYS_ONLY: only writes of key attributes.
        assert_eq!(parts, ["t/A", "t[all]/G1"]);
        assert_eq!(plan.after.as_ref().and_then(|a| a.get("n")), Some(&json!({"N": "2"})));
        assert!(plan.exact);
        let plan = plan_write(&s, &key, &keys, Some(&before), &WriteKind::Delete, false);
        assert_eq!(plan.units.len(), 3);
        let moved = WriteKind::Update(vec![Action::Set(vec![PathPart::Attr("g2".into())], json!({"S": "G3"}))]);
        let parts: Vec<String> = plan_write(&s, &key, &keys, Some(&before), &moved, false)
            .units
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(parts, ["t/A", "t[all]/G1", "t[keys]/G2", "t[keys]/G3"]);
    }

    #[test]
    fn nested_updates_apply() {
        let mut i = item(json!({"rl": {"M": {"a": {"M": {"n": {"N": "4"}}}, "b": {"M": {}}}}}));
        let exact = apply(
            &mut i,
            &[
                Action::Set(
                    vec![PathPart::Attr("rl".into()), PathPart::Attr("a".into()), PathPart::Attr("n".into())],
                    json!({"N": "5"}),
                ),
                Action::Remove(vec![PathPart::Attr("rl".into()), PathPart::Attr("b".into())]),
            ],
        );
        assert!(exact);
        assert_eq!(i, item(json!({"rl": {"M": {"a": {"M": {"n": {"N": "5"}}}}}})));
    }

    #[test]
    fn buckets_refuse_beyond_one_second_of_burst() {
        let mut b = Bucket::full(10.0);
        assert!(b.take(10.0, 6.0));
        assert!(!b.take(10.0, 6.0));
        assert!(b.take(10.0, 4.0));
    }
}
