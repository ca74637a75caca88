//! A simulated LLM API client whose every request runs through a cost guard.
//!
//! Each request is billed per token (input and output at different prices). Three scenes:
//!
//! 1. a daily budget: warnings from 80% of it, then refusals once it is spent;
//! 2. a runaway agent: hourly spend far above the last three hours trips the spike rule while
//!    the daily budget is nowhere near spent;
//! 3. a response cut off mid-stream: its cost is unknown, so the guard fails closed until an
//!    operator records the billed cost.
//!
//! Time is a manual clock, so the run takes milliseconds. Run it with
//! `cargo run --example llm_spend_guard`.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox::Error;
use fusebox::clock::ManualClock;
use fusebox::guard::{
    CostBaseline, CostEvent, CostEventKind, CostGuard, CostPolicy, CostRejectReason, CostWindow,
    SpikeCheck, UnknownCost,
};
use fusebox::pipeline::Pipeline;

// ---------------------------------------------------------------------------------------
// The simulated model API
// ---------------------------------------------------------------------------------------

/// Dollars per million input and output tokens.
const INPUT_PRICE: f64 = 2.50;
const OUTPUT_PRICE: f64 = 10.00;
/// The most a request may produce, which bounds its cost.
const MAX_OUTPUT_TOKENS: u32 = 4000;
const MAX_INPUT_TOKENS: u32 = 2000;

#[derive(Debug, Clone)]
struct Completion {
    input_tokens: u32,
    output_tokens: u32,
}

impl Completion {
    fn cost(&self) -> f64 {
        (f64::from(self.input_tokens) * INPUT_PRICE + f64::from(self.output_tokens) * OUTPUT_PRICE)
            / 1e6
    }
}

#[derive(Debug)]
enum ApiError {
    /// The connection dropped mid-stream: the request was billed, but for how much?
    StreamCut,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stream cut off")
    }
}

impl std::error::Error for ApiError {}

/// A model endpoint answering with a deterministic number of tokens per prompt.
struct FakeModel {
    requests: AtomicU32,
}

impl FakeModel {
    async fn complete(&self, prompt: &str, output_tokens: u32) -> Result<Completion, ApiError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if prompt.contains("[cut]") {
            return Err(ApiError::StreamCut);
        }
        Ok(Completion {
            input_tokens: (prompt.len() as u32 * 40).min(MAX_INPUT_TOKENS),
            output_tokens: output_tokens.min(MAX_OUTPUT_TOKENS),
        })
    }
}

/// What a request cost, from its result: tokens times prices, nothing for a refusal, and
/// unknown for a stream cut off before the usage report arrived.
fn billed(result: &Result<Completion, Error<ApiError>>) -> Option<f64> {
    match result {
        Ok(completion) => Some(completion.cost()),
        Err(Error::Inner(ApiError::StreamCut)) => None,
        Err(_) => Some(0.0),
    }
}

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

/// Alerts raised by the guard while a request settles, printed after the request's line.
type Alerts = Arc<Mutex<Vec<String>>>;

struct Client {
    model: FakeModel,
    pipeline: Pipeline<Completion, ApiError>,
    clock: ManualClock,
    alerts: Alerts,
}

impl Client {
    fn new(guard: CostGuard, clock: ManualClock, alerts: Alerts) -> Client {
        let pipeline = Pipeline::builder()
            .cost_guard(guard, billed)
            .build()
            .expect("a valid pipeline");
        Client {
            model: FakeModel {
                requests: AtomicU32::new(0),
            },
            pipeline,
            clock,
            alerts,
        }
    }

    /// Sends one request through the guard, then lets `gap` pass.
    async fn send(
        &self,
        prompt: &str,
        output_tokens: u32,
        gap: Duration,
    ) -> Result<Completion, Error<ApiError>> {
        let result = self
            .pipeline
            .call(|| self.model.complete(prompt, output_tokens))
            .await;
        self.clock.advance(gap);
        result
    }

    /// Like [`send`](Self::send), printing what happened; true unless the guard refused.
    async fn ask(&self, label: &str, prompt: &str, output_tokens: u32, gap: Duration) -> bool {
        let result = self.send(prompt, output_tokens, gap).await;
        let admitted = self.print(label, result);
        for alert in self.alerts.lock().expect("alerts").drain(..) {
            println!("  >> {alert}");
        }
        admitted
    }

    fn print(&self, label: &str, result: Result<Completion, Error<ApiError>>) -> bool {
        match result {
            Ok(c) => {
                println!(
                    "  {label}: {:>5} tokens, ${:.4}",
                    c.input_tokens + c.output_tokens,
                    c.cost()
                );
                true
            }
            Err(Error::CostRejected(refused)) => {
                let wait = refused.retry_after.map_or(0, |d| d.as_secs());
                let why = match refused.reason {
                    CostRejectReason::BudgetBreached => {
                        format!(
                            "budget spent (${:.4} of ${:.2})",
                            refused.spent, refused.limit
                        )
                    }
                    CostRejectReason::Spike { latest, threshold } => {
                        format!("spike (${latest:.4} this hour, above ${threshold:.4})")
                    }
                    CostRejectReason::UnknownCost => "an earlier cost is unknown".to_string(),
                    _ => refused.reason.to_string(),
                };
                println!(
                    "  {label}: REFUSED by `{}`: {why}; retry in {}h{:02}m",
                    refused.name,
                    wait / 3600,
                    wait % 3600 / 60
                );
                false
            }
            Err(e) => {
                println!("  {label}: failed - {e}");
                true
            }
        }
    }
}

/// Formats the guard's events as an alerting hook would receive them.
fn alert(event: &CostEvent) -> Option<String> {
    let budget = &event.status.budget;
    Some(match event.kind {
        CostEventKind::Warning => format!(
            "WARNING [{}]: ${:.4} of ${:.2} spent ({:.0}%)",
            event.name,
            budget.current_spend,
            budget.limit,
            budget.usage_ratio * 100.0
        ),
        CostEventKind::Breach => format!(
            "BREACH [{}]: ${:.4} of ${:.2}; requests are refused",
            event.name, budget.current_spend, budget.limit
        ),
        CostEventKind::Spike => {
            let (baseline, threshold) = event
                .status
                .baseline
                .map_or((0.0, 0.0), |r| (r.baseline(), r.threshold()));
            format!(
                "SPIKE [{}]: ${:.4} this hour against a baseline of ${baseline:.4} \
                 (threshold ${threshold:.4}); requests are refused",
                event.name, budget.current_spend
            )
        }
        CostEventKind::UnknownCost => format!(
            "UNKNOWN COST [{}]: a request's cost could not be told",
            event.name
        ),
        _ => return None,
    })
}

/// A guard for `policy` whose alerts are queued for the client to print.
fn alerting_guard(
    name: &'static str,
    policy: CostPolicy,
    clock: &ManualClock,
) -> Result<(CostGuard, Alerts), fusebox::ConfigError> {
    let alerts = Alerts::default();
    let queue = Arc::clone(&alerts);
    let guard = CostGuard::builder(name, policy)
        .clock(clock.clone())
        .on_event(move |event| {
            if let Some(text) = alert(event) {
                queue.lock().expect("alerts").push(text);
            }
        })
        .build()?;
    Ok((guard, alerts))
}

/// Monday 2024-03-04 09:00 UTC.
fn monday_nine() -> Duration {
    Duration::from_secs(1_709_542_800)
}

/// The most one request can cost: the estimate reserved while it runs.
fn max_request_cost() -> f64 {
    Completion {
        input_tokens: MAX_INPUT_TOKENS,
        output_tokens: MAX_OUTPUT_TOKENS,
    }
    .cost()
}

// ---------------------------------------------------------------------------------------
// The scenes
// ---------------------------------------------------------------------------------------

async fn daily_budget() -> Result<(), Box<dyn std::error::Error>> {
    println!("== 1. A daily budget of $0.50, warnings from 80% ==");
    let clock = ManualClock::new();
    clock.set(monday_nine());
    let policy = CostPolicy::builder(0.50)
        .warning_ratio(0.8)
        .window(CostWindow::CalendarDay)
        .estimated_cost(max_request_cost())
        .build()?;
    let (guard, alerts) = alerting_guard("chat-daily", policy, &clock)?;
    let client = Client::new(guard.clone(), clock, alerts);

    for n in 1..=20 {
        let label = format!("request {n:>2}");
        let prompt = "Summarise this support ticket";
        if !client
            .ask(&label, prompt, 3000, Duration::from_secs(90))
            .await
        {
            break;
        }
    }
    let status = guard.status();
    println!(
        "  spent ${:.4} of ${:.2} today; the model saw {} requests\n",
        status.spent,
        status.budget.limit,
        client.model.requests.load(Ordering::Relaxed)
    );
    assert!(status.budget.is_breached);
    assert!(status.spent < 0.50 + max_request_cost());
    Ok(())
}

async fn runaway_agent() -> Result<(), Box<dyn std::error::Error>> {
    println!("== 2. A runaway agent: this hour against the last three ==");
    let clock = ManualClock::new();
    clock.set(monday_nine());
    let policy = CostPolicy::builder(50.0) // far from the daily concern here
        .window(CostWindow::CalendarHour)
        .baseline(CostBaseline::Recent {
            check: SpikeCheck::default().with_min_baseline(0.05),
            periods: 3,
        })
        .estimated_cost(max_request_cost())
        .build()?;
    let (guard, alerts) = alerting_guard("agent-hourly", policy, &clock)?;
    let client = Client::new(guard.clone(), clock.clone(), alerts);

    // Three ordinary hours: a request every six minutes.
    for hour in 9..12 {
        for _ in 0..9 {
            client
                .send("Plan the next step", 1500, Duration::from_secs(360))
                .await?;
        }
        client
            .send("Plan the next step", 1500, Duration::ZERO)
            .await?;
        println!(
            "  {hour}:00-{hour}:59  10 requests, ${:.4}",
            guard.status().spent
        );
        clock.advance(Duration::from_secs(360));
    }

    // Noon: the agent loops on itself, firing large requests every few seconds.
    println!("  12:00 the agent starts looping");
    let mut tripped = false;
    for n in 1..=40 {
        let label = format!("loop {n:>2}");
        if !client
            .ask(
                &label,
                "Retry the plan with more detail",
                4000,
                Duration::from_secs(5),
            )
            .await
        {
            tripped = true;
            break;
        }
    }
    let status = guard.status();
    let reading = status.baseline.expect("three hours have closed");
    println!(
        "  this hour ${:.4} against a baseline of ${:.4}: tripped long before the ${:.2} limit\n",
        status.spent,
        reading.baseline(),
        status.budget.limit
    );
    assert!(tripped && reading.is_spike() && !status.budget.is_breached);
    Ok(())
}

async fn unknown_cost() -> Result<(), Box<dyn std::error::Error>> {
    println!("== 3. A stream cut off: the cost is unknown, so the guard fails closed ==");
    let clock = ManualClock::new();
    clock.set(monday_nine());
    let policy = CostPolicy::builder(5.0)
        .window(CostWindow::CalendarHour)
        .unknown_cost(UnknownCost::Reject)
        .build()?;
    let (guard, alerts) = alerting_guard("chat-strict", policy, &clock)?;
    let client = Client::new(guard.clone(), clock, alerts);

    let gap = Duration::from_secs(60);
    client
        .ask("request 1", "Translate this paragraph", 800, gap)
        .await;
    client
        .ask("request 2", "Translate this chapter [cut]", 4000, gap)
        .await;
    let blocked = !client
        .ask("request 3", "Translate the next one", 800, gap)
        .await;

    // The usage report arrives from the provider's billing export.
    guard.record_cost(0.0412)?;
    println!(
        "  operator recorded the billed $0.0412; block lifted: {}",
        guard.clear_unknown()
    );
    let resumed = client
        .ask("request 4", "Translate the next one", 800, gap)
        .await;
    assert!(blocked && resumed);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    daily_budget().await?;
    runaway_agent().await?;
    unknown_cost().await?;
    Ok(())
}
