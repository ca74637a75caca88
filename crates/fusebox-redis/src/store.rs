//! [`StateStore`] for [`RedisStore`]: each operation checks its request, runs one script
//! (or a read), and decodes the reply. Apart from the store's handle, keys and connection,
//! which `lib.rs` holds.

use fusebox_fleet::{
    Cas, Claim, FleetChange, FleetView, ForcedState, Notice, StateStore, StoreError, StoreFuture,
    SyncRequest, check_force_ms, check_span_ms,
};
use redis::Value;
use tokio::sync::broadcast;

use crate::reply::decode_view;
use crate::{RedisStore, millis, store_error};

impl StateStore for RedisStore {
    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut con = self.connection().await?;
            let _: String = redis::cmd("PING")
                .query_async(&mut con)
                .await
                .map_err(store_error)?;
            Ok(())
        })
    }

    fn sync<'a>(&'a self, req: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            if req.instance.is_empty() {
                return Err(StoreError::Invalid("empty instance id".into()));
            }
            check_span_ms("lease_ttl_ms", req.lease_ttl_ms)?;
            let args = [
                req.instance.clone(),
                req.lease_ttl_ms.max(1).to_string(),
                req.seq.to_string(),
                req.outcomes.successes.to_string(),
                req.outcomes.failures.to_string(),
                req.outcomes.slow.to_string(),
                req.trials.generation.to_string(),
                req.trials.successes.to_string(),
                req.trials.failures.to_string(),
                req.trials.release.to_string(),
                u8::from(req.local_open).to_string(),
                req.mode.clone(),
                req.incarnation.to_string(),
            ];
            let reply = self
                .run_script(&self.inner.scripts.sync, &req.breaker, &args)
                .await?;
            let view = decode_view(&req.breaker, &reply)?.0;
            self.note_breaker(&view, true).await;
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
            change.check()?;
            let cooldown = match change {
                FleetChange::Open { cooldown_ms } => cooldown_ms,
                FleetChange::HalfOpen | FleetChange::Closed => 0,
            };
            let args = [
                expected_generation.to_string(),
                change.target().as_str().to_owned(),
                cooldown.to_string(),
                reason.to_owned(),
            ];
            let reply = self
                .run_script(&self.inner.scripts.transition, breaker, &args)
                .await?;
            let (view, won) = decode_view(breaker, &reply)?;
            self.note_breaker(&view, won == 1).await;
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
            let args = [instance.to_owned(), want.to_string(), permitted.to_string()];
            let reply = self
                .run_script(&self.inner.scripts.claim, breaker, &args)
                .await?;
            let (view, granted) = decode_view(breaker, &reply)?;
            self.note_breaker(&view, false).await;
            Ok(Claim {
                granted: u32::try_from(granted).unwrap_or(0),
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
            check_force_ms(for_ms)?;
            let args = [
                forced.map(ForcedState::as_str).unwrap_or("").to_owned(),
                for_ms.unwrap_or(0).to_string(),
            ];
            let reply = self
                .run_script(&self.inner.scripts.force, breaker, &args)
                .await?;
            let view = decode_view(breaker, &reply)?.0;
            self.note_breaker(&view, true).await;
            Ok(view)
        })
    }

    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            let reply = self
                .run_script(&self.inner.scripts.view, breaker, &[])
                .await?;
            match reply {
                Value::Nil => Ok(None),
                other => Ok(Some(decode_view(breaker, &other)?.0)),
            }
        })
    }

    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut con = self.connection().await?;
            let names: Vec<String> = if self.is_cluster() {
                self.inner
                    .scripts
                    .seen_list
                    .key(self.seen_key())
                    .arg(millis(self.inner.idle_ttl).max(1))
                    .invoke_async(&mut con)
                    .await
            } else {
                self.inner
                    .scripts
                    .breakers
                    .key(self.names_key())
                    .arg(&self.inner.prefix)
                    .invoke_async(&mut con)
                    .await
            }
            .map_err(store_error)?;
            Ok(names)
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        let receiver = self.inner.notices.subscribe();
        self.inner.listening.call_once(|| self.listen());
        receiver
    }
}
