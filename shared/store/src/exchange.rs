//! The refresh-token exchange: one `TransactWriteItems` on the common path.
//!
//! The transaction holds (0) a conditional `Update` of the credential — secret hash, bound
//! user/revision/client, granted claim scopes as guessed, the per-address rate-limit counter
//! as guessed, and the record of this use — and (1) a `ConditionCheck` that the user exists, is
//! not blocked and is still at the revision the token was issued under. Both items belong to
//! the caller: nothing another user's request touches is part of it (the client's existence
//! and settings come from the cached client read), and the attributes it writes are projected
//! into no index.
//!
//! When a guess is wrong the credential's old image comes back with the cancellation
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), the guess is corrected and the
//! transaction sent again; every write is conditional on the exact state it was computed from,
//! so concurrent exchanges never over-count. When the transaction meets another in flight on
//! the same credential or user (`TransactionConflict`) or a throttled partition, it pauses
//! (jittered backoff, [`crate::retry`]), reads the credential's committed state and plans again:
//! a counter that reached the limit answers "rate limited" without another transaction.
//!
//! Guesses: a new rate-limit window for this address (true for any client that refreshes less
//! often than the window), and the claim scopes the caller hinted.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use rt_domain::ports::{Exchange, ExchangeOutcome, Rejection, StoreError};
use rt_domain::scope::Scope;
use rt_domain::token::SecretHash;

use crate::items::{self, Item, n, s};
use crate::keys::{self, attr};
use crate::retry::{self, Backoff};
use crate::{DynamoStore, Refusal, build_err, is_ccf, refusal, unavailable};

/// Most stale address counters removed in one write.
const MAX_PRUNE: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum RatePlan {
    /// No counter for this address in the current window: start one at 1, removing `prune`
    /// (stale counters of other addresses) to make room.
    Fresh { prune: Vec<String> },
    /// The counter is in window `window` at `expected`: set it to `expected + 1`.
    Increment { window: i64, expected: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    rate: RatePlan,
    claims: Vec<(&'static str, bool)>,
}

enum Decision {
    Retry(Plan),
    Done(ExchangeOutcome),
}

impl DynamoStore {
    pub(crate) async fn exchange_once(&self, ex: &Exchange<'_>) -> Result<ExchangeOutcome, StoreError> {
        let window = ex.policy.window(ex.now).index;
        let hint_key = (ex.token.id().to_string(), ex.address.to_owned());
        let hint = self.counter_hints.lock().ok().and_then(|h| h.get(&hint_key).copied());
        let rate = match hint {
            Some((w, used)) if w == window && used < ex.policy.limit => {
                RatePlan::Increment { window: w, expected: used }
            }
            _ => RatePlan::Fresh { prune: vec![] },
        };
        let mut plan = Plan { rate, claims: ex.claim_scopes.to_vec() };
        // Wrong guesses (each corrects the plan from the returned item) are bounded by the
        // limit; contention (another request of this token or this user in flight, or this
        // token's partition throttled) by the time budget.
        let max_guesses = (ex.policy.limit as usize).saturating_add(6).min(64);
        let mut guesses = 0;
        let mut backoff = Backoff::start();
        loop {
            let items = vec![
                self.exchange_update(ex, window, &plan)?,
                self.user_is_current(ex.token.user(), ex.token.user_rev())?,
            ];
            let result = self.ddb.transact_write_items().set_transact_items(Some(items)).send().await;
            let e = match result {
                Ok(_) => {
                    let (w, used) = match plan.rate {
                        RatePlan::Fresh { .. } => (window, 1),
                        RatePlan::Increment { window, expected } => (window, expected.saturating_add(1)),
                    };
                    self.remember(hint_key, w, used);
                    let granted_claims = Scope::from_iter(plan.claims.iter().filter(|(_, g)| *g).map(|(c, _)| *c));
                    return Ok(ExchangeOutcome::Granted { used, granted_claims });
                }
                Err(e) => e,
            };
            let codes = match refusal(e)? {
                Refusal::Cancelled(codes) => codes,
                Refusal::Contended(codes) => {
                    if !backoff.pause().await {
                        return Err(backoff.give_up("exchange"));
                    }
                    // When only the user item was contended (another device of the user), the
                    // plan still holds. Otherwise another request changed (or is changing) this
                    // credential: plan from its committed state; a counter already at the limit
                    // is final for the window.
                    let credential_contended = codes.first().is_none_or(|(c, _)| retry::is_contention_reason(c));
                    if credential_contended && let Some(committed) = self.committed(ex).await? {
                        let Some(item) = committed else {
                            return Ok(ExchangeOutcome::Rejected(Rejection::Unknown));
                        };
                        match decide(&item, ex, window, &plan)? {
                            Decision::Done(outcome) => return Ok(self.finish(hint_key, window, outcome)),
                            Decision::Retry(next) => plan = next,
                        }
                    }
                    continue;
                }
            };
            let failed = |i: usize| codes.get(i).is_some_and(|(c, _)| is_ccf(c));
            if failed(0) {
                let Some(Some(item)) = codes.first().map(|(_, item)| item.as_ref()) else {
                    return Ok(ExchangeOutcome::Rejected(Rejection::Unknown));
                };
                guesses += 1;
                match decide(item, ex, window, &plan)? {
                    Decision::Done(outcome) => return Ok(self.finish(hint_key, window, outcome)),
                    Decision::Retry(next) if next != plan && guesses < max_guesses => plan = next,
                    Decision::Retry(_) => {
                        tracing::warn!(credential = %ex.token.id(), "exchange condition failed for no known reason");
                        return Err(StoreError::unavailable("exchange condition failed unexpectedly"));
                    }
                }
            } else if failed(1) {
                return Ok(ExchangeOutcome::Rejected(Rejection::UserGone));
            } else {
                let summary: Vec<&str> = codes.iter().map(|(c, _)| c.as_str()).collect();
                tracing::warn!(?summary, "exchange transaction cancelled");
                return Err(StoreError::unavailable("exchange cancelled"));
            }
        }
    }

    /// The credential's committed state (strongly consistent), or `None` when the read is
    /// throttled too: then the next attempt tells.
    async fn committed(&self, ex: &Exchange<'_>) -> Result<Option<Option<Item>>, StoreError> {
        match self.read(&keys::credential(ex.token.id())).send().await {
            Ok(out) => Ok(Some(out.item)),
            Err(e) if retry::is_contention_error(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Remembers the counter of a rate-limited outcome.
    fn finish(&self, hint_key: (String, String), window: i64, outcome: ExchangeOutcome) -> ExchangeOutcome {
        if let ExchangeOutcome::RateLimited { used } = outcome {
            self.remember(hint_key, window, used);
        }
        outcome
    }
}

impl DynamoStore {
    fn remember(&self, key: (String, String), window: i64, used: u32) {
        if let Ok(mut hints) = self.counter_hints.lock() {
            if hints.len() >= crate::COUNTER_HINTS_MAX {
                hints.clear();
            }
            hints.insert(key, (window, used));
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
    fn exchange_update(&self, ex: &Exchange<'_>, window: i64, plan: &Plan) -> Result<TransactWriteItem, StoreError> {
        let key = keys::credential(ex.token.id());
        let e = expressions(ex, window, plan);
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

fn expressions(ex: &Exchange<'_>, window: i64, plan: &Plan) -> Expr {
    let mut names: HashMap<String, String> = [
        ("#h", attr::SECRET_HASH),
        ("#uid", attr::USER_ID),
        ("#urev", attr::USER_REV),
        ("#cid", attr::CLIENT_ID),
        ("#rl", attr::RATE),
        ("#a", ex.address),
        ("#w", attr::WINDOW),
        ("#lu", attr::LAST_USED_AT),
        ("#lip", attr::LAST_IP),
        ("#uc", attr::USE_COUNT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut vals: Item = [
        (":h", s(ex.token.secret_hash().to_hex())),
        (":uid", s(ex.token.user().as_str())),
        (":urev", n(ex.token.user_rev())),
        (":cid", s(ex.client_id.as_str())),
        (":now", n(ex.now.millis())),
        (":ip", s(ex.source_ip)),
        (":one", n(1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut cond = String::from("attribute_exists(pk) AND #h = :h AND #uid = :uid AND #urev = :urev AND #cid = :cid");
    let mut set = vec!["#lu = :now".to_owned(), "#lip = :ip".to_owned()];
    let mut remove = vec![];

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
        RatePlan::Fresh { prune } => {
            let room = u64::from(ex.max_addresses).saturating_add(prune.len() as u64);
            vals.insert(":w".into(), n(window));
            vals.insert(":room".into(), n(room));
            vals.insert(
                ":entry".into(),
                AttributeValue::M(HashMap::from([
                    (attr::WINDOW.to_owned(), n(window)),
                    (attr::COUNT.to_owned(), n(1)),
                ])),
            );
            cond.push_str(" AND ((attribute_not_exists(#rl.#a) AND size(#rl) < :room) OR #rl.#a.#w < :w)");
            set.push("#rl.#a = :entry".into());
            for (i, stale) in prune.iter().enumerate() {
                names.insert(format!("#s{i}"), stale.clone());
                cond.push_str(&format!(" AND #rl.#s{i}.#w < :w"));
                remove.push(format!("#rl.#s{i}"));
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

/// Works out from the credential's old image why the conditional update failed.
fn decide(item: &Item, ex: &Exchange<'_>, window: i64, plan: &Plan) -> Result<Decision, StoreError> {
    let stored = SecretHash::from_hex(items::get_s(item, attr::SECRET_HASH)?)
        .ok_or_else(|| StoreError::Corrupt("credential secret hash".into()))?;
    if !stored.ct_eq(&ex.token.secret_hash()) {
        return Ok(Decision::Done(ExchangeOutcome::Rejected(Rejection::Unknown)));
    }
    // The user id and revision travel in the token in clear; the secret binds them.
    if items::get_s(item, attr::USER_ID)? != ex.token.user().as_str()
        || items::get_u32(item, attr::USER_REV)? != ex.token.user_rev()
    {
        return Ok(Decision::Done(ExchangeOutcome::Rejected(Rejection::Unknown)));
    }
    if items::get_s(item, attr::CLIENT_ID)? != ex.client_id.as_str() {
        return Ok(Decision::Done(ExchangeOutcome::Rejected(Rejection::WrongClient)));
    }
    let scopes = items::get_ss(item, attr::SCOPES)?;
    let claims = plan.claims.iter().map(|(c, _)| (*c, scopes.iter().any(|s| s == c))).collect();

    let counters = item.get(attr::RATE).and_then(|v| v.as_m().ok());
    let counter = |m: &AttributeValue| -> Option<(i64, u32)> {
        let m = m.as_m().ok()?;
        let w = m.get(attr::WINDOW)?.as_n().ok()?.parse().ok()?;
        let c = m.get(attr::COUNT)?.as_n().ok()?.parse().ok()?;
        Some((w, c))
    };
    let mine = counters.and_then(|m| m.get(ex.address)).and_then(counter);
    let rate = match mine {
        Some((w, used)) if w >= window => {
            if used >= ex.policy.limit {
                return Ok(Decision::Done(ExchangeOutcome::RateLimited { used }));
            }
            RatePlan::Increment { window: w, expected: used }
        }
        Some(_) => RatePlan::Fresh { prune: vec![] },
        None => {
            let all = counters.map(|m| m.len()).unwrap_or(0);
            if all < ex.max_addresses as usize {
                RatePlan::Fresh { prune: vec![] }
            } else {
                let mut stale: Vec<String> = counters
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| k.as_str() != ex.address && counter(v).is_none_or(|(w, _)| w < window))
                    .map(|(k, _)| k.clone())
                    .collect();
                stale.sort();
                stale.truncate(MAX_PRUNE);
                if stale.is_empty() {
                    return Ok(Decision::Done(ExchangeOutcome::TooManyAddresses));
                }
                RatePlan::Fresh { prune: stale }
            }
        }
    };
    Ok(Decision::Retry(Plan { rate, claims }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rt_domain::clock::Timestamp;
    use rt_domain::ids::{ClientId, UserId};
    use rt_domain::ratelimit::RatePolicy;
    use rt_domain::token::RefreshToken;

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
        let ex = Exchange {
            token: &token,
            client_id: &client,
            address: "203.0.113.7",
            source_ip: "203.0.113.7",
            now: Timestamp::from_secs(1000),
            policy: RatePolicy { limit: 10, window_secs: 60 },
            max_addresses: 4,
            claim_scopes: &claims,
        };
        for rate in [
            RatePlan::Fresh { prune: vec![] },
            RatePlan::Fresh { prune: vec!["198.51.100.1".into(), "2001:db8::/64".into()] },
            RatePlan::Increment { window: 16, expected: 4 },
        ] {
            for claims in [vec![], vec![("profile", true), ("email", false)]] {
                let e = expressions(&ex, 16, &Plan { rate: rate.clone(), claims });
                assert_all_used(&e);
            }
        }
        let e = expressions(&ex, 16, &Plan { rate: RatePlan::Fresh { prune: vec!["x".into()] }, claims: vec![] });
        assert!(e.update.contains("REMOVE #rl.#s0"), "{}", e.update);
        assert!(e.condition.contains("#rl.#s0.#w < :w"), "{}", e.condition);
    }
}
