//! The `StateStore` contract on PostgreSQL: each operation one call of a function the
//! schema installs, and the rows it answers read back into views.

use fusebox_fleet::{
    BreakerRecord, Cas, Claim, FleetChange, FleetState, FleetTotals, FleetView, ForcedState,
    InstanceView, Notice, StateStore, StoreError, StoreFuture, SyncRequest, check_force_ms,
    check_span_ms,
};
use tokio::sync::broadcast;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::*;

pub(crate) fn newer_schema(schema: &str, found: i32) -> StoreError {
    StoreError::Protocol(format!(
        "schema \"{schema}\" is at version {found}, newer than this build's {SCHEMA_VERSION}; upgrade fusebox"
    ))
}

pub(crate) fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("empty {what}")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "{what} longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if name.contains('\0') {
        return Err(StoreError::Invalid(format!("{what} holds a NUL byte")));
    }
    Ok(())
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column)
        .map_err(|e| StoreError::Protocol(format!("column {column}: {e}")))
}

/// Reads the rows of `fleet_rows` (every instance) or the row of `summary_row` (the fleet's
/// totals and at most the caller's instance): the call's outcome and the view; `None` for
/// no row.
pub(crate) fn read_view(name: &str, rows: &[Row]) -> Result<Option<(i64, FleetView)>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let state: String = get(first, "state")?;
    let forced: Option<String> = get(first, "forced")?;
    let record = BreakerRecord {
        generation: to_u64(get(first, "generation")?),
        state: FleetState::parse(&state)
            .ok_or_else(|| StoreError::Protocol(format!("unknown state {state:?}")))?,
        open_until_ms: to_u64(get(first, "open_until_ms")?),
        trips: to_u32(get(first, "trips")?),
        trial_successes: to_u32(get(first, "trial_successes")?),
        trial_failures: to_u32(get(first, "trial_failures")?),
        forced: match forced {
            None => None,
            Some(f) => Some(
                ForcedState::parse(&f)
                    .ok_or_else(|| StoreError::Protocol(format!("unknown forced state {f:?}")))?,
            ),
        },
        forced_until_ms: get::<Option<i64>>(first, "forced_until_ms")?.map(to_u64),
        transitions: to_u64(get(first, "transitions")?),
        opens: to_u64(get(first, "opens")?),
        changed_ms: to_u64(get(first, "changed_ms")?),
        mode: get(first, "mode")?,
        reason: get(first, "reason")?,
    };
    let now_ms = to_u64(get(first, "now_ms")?);
    let totals = if first.columns().iter().any(|c| c.name() == "live_instances") {
        Some(FleetTotals {
            live_instances: to_u32(get(first, "live_instances")?),
            open_votes: to_u32(get(first, "open_votes")?),
            live_claims: to_u32(get(first, "live_claims")?),
            successes: to_u64(get(first, "fleet_successes")?),
            failures: to_u64(get(first, "fleet_failures")?),
            slow: to_u64(get(first, "fleet_slow")?),
        })
    } else {
        None
    };
    let mut instances = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(id) = get::<Option<String>>(row, "instance")? else {
            continue; // the breaker has no instance: one row with nulls
        };
        let lease_until = to_u64(get(row, "lease_until_ms")?);
        instances.push(InstanceView {
            id,
            live: lease_until > now_ms,
            lease_remaining_ms: lease_until.saturating_sub(now_ms),
            local_open: get(row, "local_open")?,
            successes: to_u64(get(row, "successes")?),
            failures: to_u64(get(row, "failures")?),
            slow: to_u64(get(row, "slow")?),
            seq: to_u64(get(row, "seq")?),
            trials_claimed: to_u32(get(row, "claims")?),
        });
    }
    let outcome: i64 = get(first, "outcome")?;
    Ok(Some((
        outcome,
        FleetView {
            name: name.to_owned(),
            now_ms,
            record,
            instances,
            totals,
        },
    )))
}

impl StateStore for PostgresStore {
    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let schema = &self.inner.schema;
            let found = self.schema_version().await?;
            match found {
                Some(v) if v == SCHEMA_VERSION => Ok(()),
                Some(v) if v > SCHEMA_VERSION => Err(newer_schema(schema, v)),
                _ if self.inner.setup_on_prepare => self.setup().await.map(drop),
                None => Err(error::not_set_up(schema, "no schema version recorded")),
                Some(v) => Err(error::outdated(schema, v, SCHEMA_VERSION)),
            }
        })
    }

    fn sync<'a>(&'a self, req: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            check_name("breaker name", &req.breaker)?;
            check_name("instance id", &req.instance)?;
            check_span_ms("lease_ttl_ms", req.lease_ttl_ms)?;
            // Stored as the same 64 bits, signed: only ever compared for equality.
            let incarnation = req.incarnation as i64;
            let params: [&(dyn ToSql + Sync); 14] = [
                &req.breaker,
                &req.instance,
                &to_i64(req.lease_ttl_ms),
                &to_i64(req.seq),
                &to_i64(req.outcomes.successes),
                &to_i64(req.outcomes.failures),
                &to_i64(req.outcomes.slow),
                &to_i64(req.trials.generation),
                &i64::from(req.trials.successes),
                &i64::from(req.trials.failures),
                &i64::from(req.trials.release),
                &req.local_open,
                &req.mode,
                &incarnation,
            ];
            let (_, view) = self
                .call(&req.breaker, &self.inner.sql.sync, &params)
                .await?;
            Ok(view)
        })
    }

    fn transition<'a>(
        &'a self,
        breaker: &'a str,
        expected_generation: u64,
        change: FleetChange,
        reason: &'a str,
    ) -> StoreFuture<'a, Cas> {
        Box::pin(async move {
            check_name("breaker name", breaker)?;
            change.check()?;
            let cooldown = match change {
                FleetChange::Open { cooldown_ms } => to_i64(cooldown_ms),
                FleetChange::HalfOpen | FleetChange::Closed => 0,
            };
            let target = change.target().as_str();
            let params: [&(dyn ToSql + Sync); 5] = [
                &breaker,
                &to_i64(expected_generation),
                &target,
                &cooldown,
                &reason,
            ];
            let (won, view) = self
                .call(breaker, &self.inner.sql.transition, &params)
                .await?;
            Ok(Cas {
                won: won == 1,
                view,
            })
        })
    }

    fn claim_trials<'a>(
        &'a self,
        breaker: &'a str,
        instance: &'a str,
        want: u32,
        permitted: u32,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            check_name("breaker name", breaker)?;
            check_name("instance id", instance)?;
            let params: [&(dyn ToSql + Sync); 4] =
                [&breaker, &instance, &i64::from(want), &i64::from(permitted)];
            let (granted, view) = self.call(breaker, &self.inner.sql.claim, &params).await?;
            Ok(Claim {
                granted: to_u32(granted),
                view,
            })
        })
    }

    fn force<'a>(
        &'a self,
        breaker: &'a str,
        forced: Option<ForcedState>,
        for_ms: Option<u64>,
    ) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            check_name("breaker name", breaker)?;
            check_force_ms(for_ms)?;
            let state = forced.map(ForcedState::as_str);
            let for_ms = for_ms.map(to_i64);
            let params: [&(dyn ToSql + Sync); 3] = [&breaker, &state, &for_ms];
            let (_, view) = self.call(breaker, &self.inner.sql.force, &params).await?;
            Ok(view)
        })
    }

    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            check_name("breaker name", breaker)?;
            let rows = self.query(&self.inner.sql.view, &[&breaker]).await?;
            Ok(read_view(breaker, &rows)?.map(|(_, view)| view))
        })
    }

    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let rows = self.query(&self.inner.sql.breakers, &[]).await?;
            rows.iter().map(|r| get(r, "name")).collect()
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        let receiver = self.inner.notices.subscribe();
        self.start_listener();
        receiver
    }
}
