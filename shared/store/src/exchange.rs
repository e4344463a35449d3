//! The exchange's write: one plan of the state machine ([`rt_domain::exchange`]) as one
//! `TransactWriteItems`, and a refusal back into a snapshot. Nothing is decided here.
//!
//! The transaction holds (0) a conditional `Update` of the credential — the plan's assumptions
//! (secret hash, bound user/revision/client, granted claim scopes, the per-address rate-limit
//! counter) as its condition, the plan's change and the record of this use as its update — and
//! (1) a `ConditionCheck` that the user exists, is not blocked and is still at the revision the
//! token was issued under. Both items belong to the caller: nothing another user's request
//! touches is part of it (the client's existence and settings come from the cached client
//! read), and the attributes it writes are projected into no index.
//!
//! A refused condition on the credential comes back with its old image
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), turned into a [`Snapshot`]. When the
//! transaction meets another in flight on the same credential or user (`TransactionConflict`)
//! or a throttled partition, it pauses (jittered backoff, [`crate::retry`]) and sends the same
//! plan again: it commits if nothing it assumes changed, else the refusal brings the state.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
#[cfg(test)]
use rt_domain::exchange::Alive;
use rt_domain::exchange::{Action, Plan, Presented, RatePlan, Revoke, SecretCheck, Written};
use rt_domain::ports::{Contention, ExchangeWrite, StoreError};

use crate::items::{self, Item, n, s};
use crate::keys::{self, attr};
use crate::retry::{self, Pause};
use crate::{DynamoStore, PRESENT, Part, Refusal, attr_names, build_err, is_missing_map, refusal, unavailable, values};

/// The items of the exchange's transaction, in order.
const PARTS: [Part; 2] = [Part::Credential, Part::User];

impl DynamoStore {
    pub(crate) async fn write_exchange_plan(
        &self,
        w: &ExchangeWrite<'_>,
        backoff: &mut Contention,
    ) -> Result<Written, StoreError> {
        let req = w.req;
        loop {
            let items = match w.action {
                Action::Use(plan) => {
                    vec![
                        self.exchange_update(req, plan)?,
                        self.user_is_current(req.token.user(), req.token.user_rev())?,
                    ]
                }
                // The family goes, and with it one live token of its device on the user's item.
                Action::Revoke(r) => vec![
                    self.revoke_family(req, r)?,
                    self.device_count_of(req.token.user(), req.token.user_rev(), r.device_name.as_str(), -1)?,
                ],
            };
            let e = match self.ddb.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => return Ok(Written::Done),
                Err(e) => e,
            };
            let refused = match (refusal(e, &PARTS), w.action) {
                // A user item from before device counts: nothing to count off.
                (Err(e), Action::Revoke(r)) if is_missing_map(&e) => return self.revoke_family_alone(req, r).await,
                (r, _) => r?,
            };
            match refused {
                Refusal::Cancelled(reasons) if reasons.failed(Part::Credential) => {
                    let snapshot = reasons.old(Part::Credential).map(items::snapshot_from_item).transpose()?;
                    return Ok(Written::Refused(snapshot));
                }
                Refusal::Cancelled(reasons) if reasons.failed(Part::User) => match w.action {
                    Action::Use(_) => return Ok(Written::UserChanged),
                    // The user is gone or at a new revision (its device map reset): the family
                    // still goes.
                    Action::Revoke(r) => return self.revoke_family_alone(req, r).await,
                },
                Refusal::Cancelled(reasons) => {
                    tracing::warn!(reasons = %reasons, "exchange transaction cancelled");
                    return Err(StoreError::unavailable(format!("exchange cancelled: {reasons}")));
                }
                Refusal::Contended => {
                    // Another request is writing this credential (or the user's item). After a
                    // pause the same write is sent again: it holds if that request changed
                    // nothing this plan assumes, else it is refused with the credential's state
                    // (`ALL_OLD`) — no read in between, which under a hammered token would only
                    // add requests to the item everyone is waiting for.
                    if !backoff.pause().await {
                        return Err(backoff.give_up("exchange"));
                    }
                }
            }
        }
    }

    /// The `Delete` of a rotating family still at the generation the revocation saw.
    fn revoke_family(&self, req: &Presented<'_>, r: &Revoke) -> Result<TransactWriteItem, StoreError> {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(&keys::credential(req.token.id()))))
            .condition_expression("#gen = :gen")
            .set_expression_attribute_names(Some(attr_names([("#gen", attr::GENERATION)])))
            .set_expression_attribute_values(Some(values([(":gen", n(r.generation))])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().delete(d).build())
    }

    /// The revocation of a family without counting it off the user's devices: one conditional
    /// `DeleteItem`.
    async fn revoke_family_alone(&self, req: &Presented<'_>, r: &Revoke) -> Result<Written, StoreError> {
        let key = keys::credential(req.token.id());
        let result = retry::single(|| {
            self.ddb
                .delete_item()
                .table_name(&self.table)
                .key(keys::PK, s(key.pk.clone()))
                .key(keys::SK, s(key.sk))
                .condition_expression("#gen = :gen")
                .expression_attribute_names("#gen", attr::GENERATION)
                .expression_attribute_values(":gen", n(r.generation))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
        })
        .await;
        match result {
            Ok(_) => Ok(Written::Done),
            Err(e) => match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Written::Refused(c.item().map(items::snapshot_from_item).transpose()?))
                }
                _ => Err(unavailable(e)),
            },
        }
    }
}

/// The expressions of one exchange attempt.
#[derive(Debug)]
struct Expr {
    condition: String,
    update: String,
    names: HashMap<String, String>,
    values: Item,
}

impl DynamoStore {
    fn exchange_update(&self, req: &Presented<'_>, plan: &Plan) -> Result<TransactWriteItem, StoreError> {
        let key = keys::credential(req.token.id());
        let e = expressions(req, plan);
        let u = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(key.pk))
            .key(keys::SK, s(key.sk))
            .condition_expression(e.condition)
            .update_expression(e.update)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }
}

/// The plan's assumptions as a condition, its change and the record of this use as an update.
fn expressions(req: &Presented<'_>, plan: &Plan) -> Expr {
    let mut names: HashMap<String, String> = [
        ("#pk", keys::PK),
        ("#uid", attr::USER_ID),
        ("#urev", attr::USER_REV),
        ("#cid", attr::CLIENT_ID),
        ("#rl", attr::RATE),
        ("#a", req.address),
        ("#w", attr::WINDOW),
        ("#lu", attr::LAST_USED_AT),
        ("#lip", attr::LAST_IP),
        ("#uc", attr::USE_COUNT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut vals: Item = [
        (":h", s(req.token.secret_hash().to_hex())),
        (":uid", s(req.token.user().as_str())),
        (":urev", n(req.token.user_rev())),
        (":cid", s(req.client_id.as_str())),
        (":now", n(req.now.millis())),
        (":ip", s(req.source_ip)),
        (":one", n(1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut cond = format!("{PRESENT} AND #uid = :uid AND #urev = :urev AND #cid = :cid");
    let mut set = vec!["#lu = :now".to_owned(), "#lip = :ip".to_owned()];
    let mut remove = vec![];

    if let Some(t) = plan.alive.issued_after {
        names.insert("#cr".into(), attr::CREATED_AT.into());
        vals.insert(":issued_after".into(), n(t.millis()));
        cond.push_str(" AND #cr >= :issued_after");
    }
    if let Some(t) = plan.alive.active_after {
        names.insert("#cr".into(), attr::CREATED_AT.into());
        vals.insert(":active_after".into(), n(t.millis()));
        cond.push_str(" AND (#lu >= :active_after OR (attribute_not_exists(#lu) AND #cr >= :active_after))");
    }
    match &plan.secret {
        SecretCheck::Current { generation: None } => {
            names.insert("#h".into(), attr::SECRET_HASH.into());
            names.insert("#gen".into(), attr::GENERATION.into());
            cond.push_str(" AND #h = :h AND attribute_not_exists(#gen)");
            if let Some(next) = &plan.rotate_to {
                // The token starts a family (its client turned rotation on): generation 1.
                names.insert("#prev".into(), attr::PREVIOUS_HASH.into());
                names.insert("#rot".into(), attr::ROTATED_AT.into());
                vals.insert(":succ".into(), s(next.to_hex()));
                vals.insert(":gen1".into(), n(1));
                set.extend(["#h = :succ", "#prev = :h", "#gen = :gen1", "#rot = :now"].map(str::to_owned));
            }
        }
        SecretCheck::Current { generation: Some(g) } => {
            names.insert("#h".into(), attr::SECRET_HASH.into());
            names.insert("#gen".into(), attr::GENERATION.into());
            vals.insert(":gen".into(), n(*g));
            cond.push_str(" AND #h = :h AND #gen = :gen");
            if let Some(next) = &plan.rotate_to {
                names.insert("#prev".into(), attr::PREVIOUS_HASH.into());
                names.insert("#rot".into(), attr::ROTATED_AT.into());
                vals.insert(":succ".into(), s(next.to_hex()));
                vals.insert(":gen1".into(), n(u64::from(*g) + 1));
                set.extend(["#h = :succ", "#prev = :h", "#gen = :gen1", "#rot = :now"].map(str::to_owned));
            } else if let Some(to) = &plan.demote_to {
                // The family ends (its client turned rotation off): a non-rotating record that
                // remembers the member that ended it.
                names.insert("#prev".into(), attr::PREVIOUS_HASH.into());
                names.insert("#rot".into(), attr::ROTATED_AT.into());
                vals.insert(":succ".into(), s(to.to_hex()));
                set.extend(["#h = :succ", "#prev = :h", "#rot = :now"].map(str::to_owned));
                remove.push("#gen".to_owned());
            }
        }
        SecretCheck::Previous { generation, rotated_at } => {
            names.insert("#gen".into(), attr::GENERATION.into());
            names.insert("#prev".into(), attr::PREVIOUS_HASH.into());
            names.insert("#rot".into(), attr::ROTATED_AT.into());
            vals.insert(":gen".into(), n(*generation));
            vals.insert(":rot".into(), n(rotated_at.millis()));
            cond.push_str(" AND #gen = :gen AND #prev = :h AND #rot = :rot");
        }
        SecretCheck::Demoted { rotated_at } => {
            names.insert("#gen".into(), attr::GENERATION.into());
            names.insert("#prev".into(), attr::PREVIOUS_HASH.into());
            names.insert("#rot".into(), attr::ROTATED_AT.into());
            vals.insert(":rot".into(), n(rotated_at.millis()));
            cond.push_str(" AND attribute_not_exists(#gen) AND #prev = :h AND #rot = :rot");
        }
    }

    if !plan.claims.is_empty() {
        names.insert("#sc".into(), attr::SCOPES.into());
    }
    for (i, (scope, granted)) in plan.claims.iter().enumerate() {
        vals.insert(format!(":c{i}"), s(*scope));
        cond.push_str(&if *granted {
            format!(" AND contains(#sc, :c{i})")
        } else {
            format!(" AND NOT contains(#sc, :c{i})")
        });
    }

    match &plan.rate {
        RatePlan::Start { window, below, prune, evict } => {
            vals.insert(":w".into(), n(*window));
            vals.insert(":below".into(), n(*below));
            vals.insert(
                ":entry".into(),
                AttributeValue::M(HashMap::from([
                    (attr::WINDOW.to_owned(), n(*window)),
                    (attr::COUNT.to_owned(), n(1)),
                ])),
            );
            cond.push_str(" AND ((attribute_not_exists(#rl.#a) AND size(#rl) < :below) OR #rl.#a.#w < :w)");
            set.push("#rl.#a = :entry".into());
            for (i, stale) in prune.iter().enumerate() {
                names.insert(format!("#s{i}"), stale.clone());
                cond.push_str(&format!(" AND #rl.#s{i}.#w < :w"));
                remove.push(format!("#rl.#s{i}"));
            }
            if let Some((address, seen)) = evict {
                names.insert("#e".into(), address.clone());
                names.insert("#n".into(), attr::COUNT.into());
                vals.insert(":ew".into(), n(seen.window));
                vals.insert(":en".into(), n(seen.count));
                cond.push_str(" AND #rl.#e.#w = :ew AND #rl.#e.#n = :en");
                remove.push("#rl.#e".into());
            }
        }
        RatePlan::Increment { window, expected } => {
            vals.insert(":w".into(), n(*window));
            vals.insert(":expected".into(), n(*expected));
            vals.insert(":next".into(), n(expected.saturating_add(1)));
            names.insert("#n".into(), attr::COUNT.into());
            cond.push_str(" AND #rl.#a.#w = :w AND #rl.#a.#n = :expected");
            set.push("#rl.#a.#n = :next".into());
        }
    }
    let mut update = format!("SET {} ADD #uc :one", set.join(", "));
    if !remove.is_empty() {
        update.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    Expr { condition: cond, update, names, values: vals }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rt_domain::clock::Timestamp;
    use rt_domain::ids::{ClientId, UserId};
    use rt_domain::ratelimit::{Counter, RatePolicy};
    use rt_domain::token::{RefreshToken, SecretHash};

    /// DynamoDB rejects names and values an expression does not use (moto only checks names):
    /// every placeholder must appear in the condition or the update.
    fn assert_all_used(e: &Expr) {
        let text = format!("{} {}", e.condition, e.update);
        let used = |p: &str| {
            text.match_indices(p).any(|(i, _)| {
                let next = text[i + p.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        };
        for k in e.names.keys().chain(e.values.keys()) {
            assert!(used(k), "{k} unused in {text}");
        }
    }

    #[test]
    fn every_placeholder_is_used_in_every_plan() {
        let token = RefreshToken::generate(&UserId::generate(), 3);
        let client = ClientId::parse("c").expect("id");
        let claims = [("profile", true), ("email", false)];
        let req = Presented {
            token: &token,
            client_id: &client,
            address: "203.0.113.7",
            source_ip: "203.0.113.7",
            now: Timestamp::from_secs(1000),
            policy: RatePolicy { limit: 10, window_secs: 60 },
            max_addresses: 4,
            claims: &claims,
            rotation: None,
            leeway_secs: 0,
            expiry: Default::default(),
            migrate: false,
            demote: false,
        };
        let next = SecretHash::of(b"next");
        let secrets = [
            (SecretCheck::Current { generation: None }, None, None),
            (SecretCheck::Current { generation: None }, Some(next.clone()), None),
            (SecretCheck::Current { generation: Some(3) }, None, None),
            (SecretCheck::Current { generation: Some(3) }, Some(next.clone()), None),
            (SecretCheck::Current { generation: Some(3) }, None, Some(next)),
            (SecretCheck::Previous { generation: 4, rotated_at: Timestamp::from_secs(990) }, None, None),
            (SecretCheck::Demoted { rotated_at: Timestamp::from_secs(990) }, None, None),
        ];
        for rate in [
            RatePlan::Start { window: 16, below: 4, prune: vec![], evict: None },
            RatePlan::Start {
                window: 16,
                below: 7,
                prune: vec!["198.51.100.1".into(), "2001:db8::/64".into()],
                evict: None,
            },
            RatePlan::Start {
                window: 16,
                below: 17,
                prune: vec!["198.51.100.1".into()],
                evict: Some(("203.0.113.9".into(), Counter { window: 16, count: 3 })),
            },
            RatePlan::Increment { window: 16, expected: 4 },
        ] {
            for claims in [vec![], vec![("profile", true), ("email", false)]] {
                for (secret, rotate_to, demote_to) in secrets.clone() {
                    for alive in [
                        Alive::default(),
                        Alive {
                            issued_after: Some(Timestamp::from_secs(5)),
                            active_after: Some(Timestamp::from_secs(9)),
                        },
                        Alive { issued_after: None, active_after: Some(Timestamp::from_secs(9)) },
                    ] {
                        let plan = Plan {
                            rate: rate.clone(),
                            claims: claims.clone(),
                            secret: secret.clone(),
                            rotate_to: rotate_to.clone(),
                            demote_to: demote_to.clone(),
                            alive,
                        };
                        assert_all_used(&expressions(&req, &plan));
                    }
                }
            }
        }
        let plan = Plan {
            rate: RatePlan::Start { window: 16, below: 2, prune: vec!["x".into()], evict: None },
            claims: vec![],
            secret: SecretCheck::Current { generation: Some(3) },
            rotate_to: Some(SecretHash::of(b"next")),
            demote_to: None,
            alive: Alive::default(),
        };
        let e = expressions(&req, &plan);
        assert!(e.update.contains("REMOVE #rl.#s0"), "{}", e.update);
        assert!(e.condition.contains("#rl.#s0.#w < :w"), "{}", e.condition);
        assert!(e.condition.contains("#h = :h AND #gen = :gen"), "{}", e.condition);
        assert!(e.update.contains("#h = :succ, #prev = :h, #gen = :gen1, #rot = :now"), "{}", e.update);
    }
}
