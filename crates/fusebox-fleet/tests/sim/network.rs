//! A simulated network between fleet instances and one store: every instance reaches the
//! store through its own [`Link`], whose faults (a cut, added latency) the scenario sets
//! at any moment, and the store itself may restart and lose everything it held, as a
//! server without persistence does. Time is tokio's, so a paused runtime replays a run
//! exactly from its seed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use fusebox_fleet::{
    Cas, Claim, FleetChange, FleetState, FleetView, ForcedState, MemoryStore, Notice, OutcomeDelta,
    StateStore, StoreError, StoreFuture, SyncRequest,
};
use fusebox_policy::TokioClock;

/// How a cut link fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Every operation fails at once (connection refused).
    Refused,
    /// Nothing comes back: the caller's own timeout ends the wait.
    Blackhole,
}

/// The faults on one instance's link right now.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkFaults {
    pub cut: Option<Cut>,
    /// Added to each way of every exchange.
    pub latency: Duration,
}

/// A won transition that opened the fleet, as the store saw it at that moment.
#[derive(Debug, Clone)]
pub struct OpenEvent {
    pub at: Instant,
    pub epoch: u32,
    /// The instance whose engine made the transition.
    pub by: usize,
    /// The record's state just before: `Closed` for a trip, `HalfOpen` for failed trials.
    pub from: FleetState,
    pub live: u32,
    /// Live instances voting open, by index.
    pub voters: Vec<usize>,
}

/// A won transition that closed the fleet (trials passed, or an operator's reset).
#[derive(Debug, Clone, Copy)]
pub struct CloseEvent {
    pub at: Instant,
}

#[derive(Default)]
struct Ledger {
    opens: Vec<OpenEvent>,
    closes: Vec<CloseEvent>,
    /// Restarts: when the store came back empty.
    wipes: Vec<Instant>,
    /// Per instance: outcome deltas the instance was told were applied, by store epoch.
    acked: Vec<HashMap<u32, OutcomeDelta>>,
    acked_flushes: HashSet<(usize, u64, u64)>,
}

struct Server {
    store: MemoryStore,
    epoch: u32,
    down: bool,
}

/// The store and every link to it.
pub struct Network {
    clock: TokioClock,
    server: Mutex<Server>,
    faults: Vec<Mutex<LinkFaults>>,
    /// Each link's own subscription: a notice reaches only links that are up when it is
    /// sent, and never a deaf one (its subscription lost), which relies on its periodic sync.
    notices: Vec<broadcast::Sender<Notice>>,
    deaf: Vec<bool>,
    ledger: Mutex<Ledger>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unavailable(why: &str) -> StoreError {
    StoreError::Unavailable(why.to_owned())
}

fn instance_index(id: &str) -> Option<usize> {
    id.strip_prefix('i').and_then(|n| n.parse().ok())
}

impl Network {
    /// A network of `links` instances (ids `i0`, `i1`, …) and one empty store on tokio's
    /// clock. Must be called inside the runtime: it starts the store's notice relay.
    pub fn new(deaf: Vec<bool>) -> Arc<Network> {
        let links = deaf.len();
        let clock = TokioClock::new();
        let net = Arc::new(Network {
            clock,
            server: Mutex::new(Server {
                store: MemoryStore::with_clock(clock),
                epoch: 0,
                down: false,
            }),
            faults: (0..links).map(|_| Mutex::default()).collect(),
            notices: (0..links).map(|_| broadcast::channel(64).0).collect(),
            deaf,
            ledger: Mutex::new(Ledger {
                acked: vec![HashMap::new(); links],
                ..Ledger::default()
            }),
        });
        let store = lock(&net.server).store.clone();
        Network::relay(&net, &store);
        net
    }

    /// Forwards one store's notices to the links that are up; ends with that store.
    fn relay(net: &Arc<Network>, store: &MemoryStore) {
        let mut rx = store.subscribe();
        let net = Arc::downgrade(net);
        tokio::spawn(async move {
            loop {
                let notice = match rx.recv().await {
                    Ok(n) => n,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(net) = net.upgrade() else { return };
                for ((faults, tx), deaf) in net.faults.iter().zip(&net.notices).zip(&net.deaf) {
                    if !deaf && lock(faults).cut.is_none() {
                        let _ = tx.send(notice.clone());
                    }
                }
            }
        });
    }

    /// Instance `index`'s handle on the store.
    pub fn link(self: &Arc<Self>, index: usize) -> Link {
        Link {
            net: Arc::clone(self),
            index,
        }
    }

    pub fn set_faults(&self, index: usize, faults: LinkFaults) {
        *lock(&self.faults[index]) = faults;
    }

    fn faults(&self, index: usize) -> LinkFaults {
        *lock(&self.faults[index])
    }

    /// The store goes down and comes back empty: a new epoch, until [`restart_end`].
    pub fn restart_begin(self: &Arc<Self>) {
        let fresh = MemoryStore::with_clock(self.clock);
        {
            let mut server = lock(&self.server);
            server.store = fresh.clone();
            server.epoch += 1;
            server.down = true;
        }
        lock(&self.ledger).wipes.push(Instant::now());
        Network::relay(self, &fresh);
    }

    pub fn restart_end(&self) {
        lock(&self.server).down = false;
    }

    fn reach(&self) -> Result<(MemoryStore, u32), StoreError> {
        let server = lock(&self.server);
        if server.down {
            return Err(unavailable("store restarting"));
        }
        Ok((server.store.clone(), server.epoch))
    }

    /// The operator's handle: no link faults, but nothing while the store is down.
    pub async fn force(&self, breaker: &str, forced: Option<ForcedState>) -> FleetView {
        let (store, _) = self
            .reach()
            .expect("the operator acts while the store is up");
        store.force(breaker, forced, None).await.expect("force")
    }

    /// The store's current view of `breaker` (every instance it remembers).
    pub async fn view(&self, breaker: &str) -> Option<FleetView> {
        let (store, _) = self.reach().ok()?;
        store.view(breaker).await.expect("view")
    }

    pub fn epoch(&self) -> u32 {
        lock(&self.server).epoch
    }

    pub fn opens(&self) -> Vec<OpenEvent> {
        lock(&self.ledger).opens.clone()
    }

    pub fn closes(&self) -> Vec<CloseEvent> {
        lock(&self.ledger).closes.clone()
    }

    pub fn wipes(&self) -> Vec<Instant> {
        lock(&self.ledger).wipes.clone()
    }

    /// Outcomes instance `index` saw acknowledged by stores that have since been wiped.
    pub fn acked_before(&self, index: usize, epoch: u32) -> OutcomeDelta {
        let ledger = lock(&self.ledger);
        let mut sum = OutcomeDelta::default();
        for (_, d) in ledger.acked[index].iter().filter(|(e, _)| **e < epoch) {
            sum.successes += d.successes;
            sum.failures += d.failures;
            sum.slow += d.slow;
        }
        sum
    }

    fn note_ack(&self, index: usize, epoch: u32, request: &SyncRequest) {
        let mut ledger = lock(&self.ledger);
        // A flush is acknowledged once: the engine never resends an acknowledged one.
        if ledger
            .acked_flushes
            .insert((index, request.incarnation, request.seq))
        {
            let d = ledger.acked[index].entry(epoch).or_default();
            d.successes += request.outcomes.successes;
            d.failures += request.outcomes.failures;
            d.slow += request.outcomes.slow;
        }
    }

    fn note_transition(&self, index: usize, epoch: u32, before: Option<&FleetView>, cas: &Cas) {
        if !cas.won {
            return;
        }
        let mut ledger = lock(&self.ledger);
        match cas.view.record.state {
            FleetState::Open => {
                let from = before.map_or(FleetState::Closed, |v| v.record.state);
                let live: Vec<_> = before
                    .map(|v| v.instances.iter().filter(|i| i.live).collect())
                    .unwrap_or_default();
                ledger.opens.push(OpenEvent {
                    at: Instant::now(),
                    epoch,
                    by: index,
                    from,
                    live: u32::try_from(live.len()).expect("small fleet"),
                    voters: live
                        .iter()
                        .filter(|i| i.local_open)
                        .filter_map(|i| instance_index(&i.id))
                        .collect(),
                });
            }
            FleetState::Closed => ledger.closes.push(CloseEvent { at: Instant::now() }),
            FleetState::HalfOpen => {}
        }
    }

    /// An operator's reset closes the fleet too.
    pub fn note_reset(&self) {
        lock(&self.ledger)
            .closes
            .push(CloseEvent { at: Instant::now() });
    }
}

/// One instance's connection to the store, through its link's faults.
#[derive(Clone)]
pub struct Link {
    net: Arc<Network>,
    index: usize,
}

impl Link {
    /// One way across the link: fails, hangs, or takes the link's latency.
    async fn cross(&self) -> Result<(), StoreError> {
        let faults = self.net.faults(self.index);
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        // Checked after the latency too: a cut made while a message travels loses it.
        match self.net.faults(self.index).cut.or(faults.cut) {
            Some(Cut::Refused) => Err(unavailable("connection refused")),
            Some(Cut::Blackhole) => std::future::pending().await,
            None => Ok(()),
        }
    }
}

impl StateStore for Link {
    fn sync<'a>(&'a self, request: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            self.cross().await?;
            let (store, epoch) = self.net.reach()?;
            let view = store.sync(request).await?;
            self.cross().await?;
            self.net.note_ack(self.index, epoch, request);
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
            self.cross().await?;
            let (store, epoch) = self.net.reach()?;
            // The memory store answers at once, so nothing runs between the two calls on
            // this single-threaded runtime: the view is the record the transition meets.
            let before = store.view(breaker).await?;
            let cas = store
                .transition(breaker, expected_generation, change, reason)
                .await?;
            self.net
                .note_transition(self.index, epoch, before.as_ref(), &cas);
            self.cross().await?;
            Ok(cas)
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
            self.cross().await?;
            let (store, _) = self.net.reach()?;
            let claim = store
                .claim_trials(breaker, instance, want, permitted)
                .await?;
            self.cross().await?;
            Ok(claim)
        })
    }

    fn force<'a>(
        &'a self,
        breaker: &'a str,
        forced: Option<ForcedState>,
        for_ms: Option<u64>,
    ) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            self.cross().await?;
            let (store, _) = self.net.reach()?;
            let view = store.force(breaker, forced, for_ms).await?;
            self.cross().await?;
            Ok(view)
        })
    }

    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            self.cross().await?;
            let (store, _) = self.net.reach()?;
            let view = store.view(breaker).await?;
            self.cross().await?;
            Ok(view)
        })
    }

    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            self.cross().await?;
            let (store, _) = self.net.reach()?;
            let names = store.breakers().await?;
            self.cross().await?;
            Ok(names)
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.net.notices[self.index].subscribe()
    }
}
