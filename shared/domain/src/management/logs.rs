//! The audit log's reads (`GET /api/v2/logs`, `GET /api/v2/users/{id}/logs`, the dashboard's
//! History tab): walks over a user's own partition, or over the tenant-wide feed a UTC day at a
//! time (newest or oldest first), with the search's filter applied to what is read. Every read
//! is bounded: offset pages reach at most [`MAX_PAGE_DEPTH`] events deep (deeper: checkpoint
//! paging, `from` + `take`), and one search looks at most at [`MAX_EXAMINED`] events.

use crate::audit::{AuditEvent, Direction, LogDay, LogFilter, LogId, MAX_RETENTION_DAYS};
use crate::clock::Timestamp;
use crate::ids::UserId;
use crate::ports::{AuditLog, LOG_BATCH_MAX, StoreError};

use super::{Invalid, MgmtError, Page, Paging, Principal};

pub const READ: &[&str] = &["read:logs"];

/// The deepest offset page: `(page + 1) * per_page` at most this (Auth0's search limit).
pub const MAX_PAGE_DEPTH: u64 = 1_000;

/// The most events one search reads (and filters) before answering with what it found.
pub const MAX_EXAMINED: usize = 2_000;

/// The most events one checkpoint read (`take`) returns.
pub const MAX_TAKE: u32 = 100;

/// Events in one order, a batch at a time: a user's partition, or the feed, day by day over
/// the retained days ([`MAX_RETENTION_DAYS`] back from today, and today).
pub struct Walk<'a, S> {
    store: &'a S,
    user: Option<&'a UserId>,
    direction: Direction,
    day: LogDay,
    oldest: LogDay,
    today: LogDay,
    done: bool,
}

impl<'a, S: AuditLog> Walk<'a, S> {
    /// A user's events.
    pub fn user(store: &'a S, user: &'a UserId, direction: Direction) -> Self {
        let day = LogDay(0);
        Self { store, user: Some(user), direction, day, oldest: day, today: day, done: false }
    }

    /// Every event, from where `direction` starts (today, the oldest retained day, or the
    /// cursor's day).
    pub fn feed(store: &'a S, direction: Direction, now: Timestamp) -> Self {
        let today = LogDay::of(now);
        let oldest = today.before(MAX_RETENTION_DAYS);
        let day = match &direction {
            Direction::NewestFirst { before: Some(b) } => LogDay::of(b.at()).min(today),
            Direction::NewestFirst { before: None } => today,
            Direction::OldestFirst { after: Some(a) } => LogDay::of(a.at()).max(oldest),
            Direction::OldestFirst { after: None } => oldest,
        };
        let done = day < oldest || day > today;
        Self { store, user: None, direction, day, oldest, today, done }
    }

    /// The next batch (at most `limit`, 1 to [`LOG_BATCH_MAX`]), `None` after the last.
    pub async fn next(&mut self, limit: u32) -> Result<Option<Vec<AuditEvent>>, StoreError> {
        let limit = limit.clamp(1, LOG_BATCH_MAX);
        while !self.done {
            let batch = match self.user {
                Some(u) => self.store.user_events(u, &self.direction, limit).await?,
                None => self.store.day_events(self.day, &self.direction, limit).await?,
            };
            if let Some(last) = batch.last() {
                self.direction = self.direction.after_event(&last.id);
            }
            if batch.len() < limit as usize {
                // This partition (or day) is exhausted: on to the next day, if any.
                if self.user.is_some() {
                    self.done = true;
                } else if self.direction.newest_first() {
                    self.day = self.day.before(1);
                    self.done = self.day < self.oldest;
                } else {
                    self.day = self.day.next();
                    self.done = self.day > self.today;
                }
            }
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }
}

/// A search (`GET /api/v2/logs` with `q`, `page`, `per_page`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSearch {
    pub filter: LogFilter,
    pub paging: Paging,
    /// `sort=date:1`.
    pub oldest_first: bool,
}

fn depth(paging: &Paging) -> Result<usize, MgmtError> {
    let want = paging.page.skip() + u64::from(paging.page.per_page);
    if want > MAX_PAGE_DEPTH {
        return Err(Invalid::PageTooDeep.into());
    }
    Ok(usize::try_from(want).unwrap_or(usize::MAX))
}

fn direction(oldest_first: bool) -> Direction {
    if oldest_first { Direction::OldestFirst { after: None } } else { Direction::NewestFirst { before: None } }
}

/// The events matching `filter` from `walk`, up to `want` of them (all of them, up to
/// [`MAX_EXAMINED`] read, when `all`).
async fn collect<S: AuditLog>(
    mut walk: Walk<'_, S>,
    filter: &LogFilter,
    want: usize,
    all: bool,
) -> Result<Vec<AuditEvent>, StoreError> {
    let (mut found, mut examined) = (Vec::new(), 0usize);
    while let Some(batch) = walk.next(LOG_BATCH_MAX).await? {
        examined += batch.len();
        found.extend(batch.into_iter().filter(|e| filter.matches(e)));
        if (!all && found.len() >= want) || examined >= MAX_EXAMINED {
            break;
        }
    }
    Ok(found)
}

fn page_of(found: Vec<AuditEvent>, paging: Paging, total: Option<u64>) -> Page<AuditEvent> {
    let items = found
        .into_iter()
        .skip(usize::try_from(paging.page.skip()).unwrap_or(usize::MAX))
        .take(paging.page.per_page as usize)
        .collect();
    Page { items, request: paging.page, total }
}

/// One offset page of the events matching `q`, newest first unless asked otherwise; with a
/// user in the filter, read from that user's partition only. The total counts the matches
/// among the events read ([`MAX_EXAMINED`] at most).
pub async fn search<S: AuditLog>(
    store: &S,
    who: &Principal,
    q: LogSearch,
    now: Timestamp,
) -> Result<Page<AuditEvent>, MgmtError> {
    who.require(READ)?;
    let want = depth(&q.paging)?;
    let d = direction(q.oldest_first);
    let walk = match &q.filter.user {
        Some(u) => Walk::user(store, u, d),
        None => Walk::feed(store, d, now),
    };
    let found = collect(walk, &q.filter, want, q.paging.with_total).await?;
    let total = q.paging.with_total.then_some(found.len() as u64);
    Ok(page_of(found, q.paging, total))
}

/// Checkpoint paging (`from` + `take`): the `take` events after `from` in log-id order,
/// oldest first — with no `from`, the `take` newest, newest first.
pub async fn checkpoint<S: AuditLog>(
    store: &S,
    who: &Principal,
    from: Option<LogId>,
    take: u32,
    now: Timestamp,
) -> Result<Vec<AuditEvent>, MgmtError> {
    who.require(READ)?;
    let take = take.clamp(1, MAX_TAKE);
    let d = match from {
        Some(after) => Direction::OldestFirst { after: Some(after) },
        None => Direction::NewestFirst { before: None },
    };
    let mut walk = Walk::feed(store, d, now);
    let mut out: Vec<AuditEvent> = Vec::new();
    while out.len() < take as usize {
        let left = take - u32::try_from(out.len()).unwrap_or(take);
        match walk.next(left).await? {
            Some(batch) => out.extend(batch),
            None => break,
        }
    }
    Ok(out)
}

/// One offset page of a user's events (`GET /api/v2/users/{id}/logs`); the total is one
/// `Select=COUNT` query of the user's partition.
pub async fn of_user<S: AuditLog>(
    store: &S,
    who: &Principal,
    user: &UserId,
    paging: Paging,
    oldest_first: bool,
) -> Result<Page<AuditEvent>, MgmtError> {
    who.require(READ)?;
    let want = depth(&paging)?;
    let found = collect(Walk::user(store, user, direction(oldest_first)), &LogFilter::default(), want, false).await?;
    let total = if paging.with_total { Some(store.count_user_events(user).await?) } else { None };
    Ok(page_of(found, paging, total))
}

/// One page of a user's events for the dashboard's History tab, newest first, before the
/// cursor `before`; and the cursor of the next page when there may be one.
pub async fn history<S: AuditLog>(
    store: &S,
    user: &UserId,
    before: Option<LogId>,
    per_page: u32,
) -> Result<(Vec<AuditEvent>, Option<LogId>), StoreError> {
    let per_page = per_page.clamp(1, LOG_BATCH_MAX);
    let events = store.user_events(user, &Direction::NewestFirst { before }, per_page).await?;
    let next = if events.len() == per_page as usize { events.last().map(|e| e.id.clone()) } else { None };
    Ok((events, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventType, Source};
    use crate::ids::ClientId;
    use crate::memory::MemoryStore;
    use crate::ports::PageRequest;
    use crate::scope::Scope;

    const DAY: i64 = 86_400;
    const T0: Timestamp = Timestamp::from_secs(1_800_000_000);

    fn reader() -> Principal {
        Principal { client_id: ClientId::generate(), scopes: Scope::parse("read:logs").expect("scope") }
    }

    async fn event(s: &MemoryStore, kind: EventType, at: Timestamp, user: Option<&UserId>) -> AuditEvent {
        let mut e = AuditEvent::new(kind, at, Source::default());
        if let Some(u) = user {
            e = e.user(u, None);
        }
        s.record_event(&e).await.expect("record");
        e
    }

    fn paging(page: u32, per_page: u32, with_total: bool) -> Paging {
        Paging { page: PageRequest { page, per_page }, with_total }
    }

    #[tokio::test]
    async fn reads_need_read_logs_and_refuse_deep_pages() {
        let s = MemoryStore::new();
        let nobody = Principal { scopes: Scope::parse("read:users").expect("scope"), ..reader() };
        let q = LogSearch { filter: LogFilter::default(), paging: paging(0, 10, false), oldest_first: false };
        assert!(matches!(search(&s, &nobody, q.clone(), T0).await, Err(MgmtError::InsufficientScope(READ))));
        assert!(matches!(checkpoint(&s, &nobody, None, 10, T0).await, Err(MgmtError::InsufficientScope(_))));
        let deep = LogSearch { paging: paging(10, 100, false), ..q.clone() };
        assert!(matches!(search(&s, &reader(), deep, T0).await, Err(MgmtError::Invalid(Invalid::PageTooDeep))));
        let deepest = LogSearch { paging: paging(9, 100, false), ..q };
        assert!(search(&s, &reader(), deepest, T0).await.is_ok(), "1000 deep is the limit");
    }

    #[tokio::test]
    async fn the_feed_walks_days_in_both_directions_and_checkpoints_have_no_gaps() {
        let s = MemoryStore::new();
        let u = UserId::generate();
        let mut all = Vec::new();
        // Ten days with events, some days empty; one event older than the retention window.
        for d in [0i64, 1, 3, 7, 8, 20, 29, 30] {
            for k in 0..3 {
                let kind = if k == 0 { EventType::SuccessLogin } else { EventType::SuccessRefreshExchange };
                all.push(event(&s, kind, T0.plus_secs(d * DAY + k * 60), Some(&u)).await);
            }
        }
        let now = T0.plus_secs(30 * DAY + 3_600);
        let stale = event(&s, EventType::WrongPassword, T0.plus_secs(-5 * DAY), None).await;
        let mut ids: Vec<LogId> = all.iter().map(|e| e.id.clone()).collect();
        ids.sort();

        let q = LogSearch { filter: LogFilter::default(), paging: paging(0, 5, true), oldest_first: false };
        let p = search(&s, &reader(), q.clone(), now).await.expect("page");
        let newest: Vec<LogId> = ids.iter().rev().take(5).cloned().collect();
        assert_eq!(p.items.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), newest);
        assert_eq!(p.total, Some(24), "the stale event is beyond the retained days");
        let logins = LogSearch { filter: LogFilter { kind: Some(EventType::SuccessLogin), ..Default::default() }, ..q };
        assert_eq!(search(&s, &reader(), logins, now).await.expect("page").total, Some(8));

        // Checkpoints from the oldest retained event: every event once, in log-id order.
        let first = ids.first().cloned().expect("one");
        let mut seen = vec![first.clone()];
        let mut from = first;
        loop {
            let batch = checkpoint(&s, &reader(), Some(from.clone()), 4, now).await.expect("batch");
            let Some(last) = batch.last() else { break };
            from = last.id.clone();
            seen.extend(batch.into_iter().map(|e| e.id));
        }
        assert_eq!(seen, ids);
        assert!(!seen.contains(&stale.id));
        let newest_two = checkpoint(&s, &reader(), None, 2, now).await.expect("batch");
        assert_eq!(newest_two.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), newest[..2].to_vec());
    }

    #[tokio::test]
    async fn a_users_pages_and_history_cursor() {
        let s = MemoryStore::new();
        let (a, b) = (UserId::generate(), UserId::generate());
        for k in 0..7 {
            event(&s, EventType::SuccessLogin, T0.plus_secs(k), Some(&a)).await;
        }
        event(&s, EventType::SuccessLogin, T0, Some(&b)).await;
        let p = of_user(&s, &reader(), &a, paging(1, 3, true), false).await.expect("page");
        assert_eq!((p.items.len(), p.total), (3, Some(7)));
        assert_eq!(p.items.first().map(|e| e.at()), Some(T0.plus_secs(3)));
        let oldest = of_user(&s, &reader(), &a, paging(0, 2, false), true).await.expect("page");
        assert_eq!(oldest.items.first().map(|e| e.at()), Some(T0));

        let (first, next) = history(&s, &a, None, 4).await.expect("page");
        assert_eq!(first.len(), 4);
        let (rest, end) = history(&s, &a, next, 4).await.expect("page");
        assert_eq!((rest.len(), end), (3, None));
        assert!(rest.iter().all(|e| e.user_id.as_ref() == Some(&a)));
    }
}
