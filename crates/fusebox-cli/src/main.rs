//! `fusebox`: set up a fleet store, watch the fleet's breakers, and open, close or reset
//! them fleet-wide.

#![forbid(unsafe_code)]

mod dashboard;
mod render;
mod store;
mod table;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use fusebox_fleet::{ForcedState, StateStore};

use crate::render::clean;
use crate::store::{CliError, PgArgs, StoreArgs};
use crate::table::Look;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the store answered with something this version cannot read
  2  wrong usage
  3  the store is unreachable
  4  a bad URL or setting
  5  the store is not set up (run `fusebox pg-setup`)
  6  no such breaker
  7  not confirmed (pg-setup without --yes)";

/// Fleet-wide circuit breakers: set up the store, watch the breakers, and open, close or
/// reset them across every running instance.
#[derive(Debug, Parser)]
#[command(name = "fusebox", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create (or upgrade) the PostgreSQL tables, functions and views in a schema.
    #[command(after_help = "Examples:\n  \
        fusebox pg-setup --dry-run > fusebox.sql   # review the SQL, change nothing\n  \
        fusebox --database-url postgres://ops@db/app pg-setup --yes --schema fusebox")]
    PgSetup {
        #[command(flatten)]
        pg: PgArgs,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Print the SQL and change nothing (no connection is made).
        #[arg(long)]
        dry_run: bool,
    },
    /// Every breaker: state, forced state, failure rate, calls, live instances and their
    /// open votes, remaining cooldown.
    #[command(after_help = "Examples:\n  \
        fusebox status\n  \
        fusebox status --watch              # a live table, refreshed every second\n  \
        fusebox status --json | jq '.[] | select(.state != \"closed\")'")]
    Status {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// One JSON document (with --watch, one per line and refresh).
        #[arg(long)]
        json: bool,
        /// Refresh in place until interrupted.
        #[arg(long, short = 'w')]
        watch: bool,
        /// How often --watch refreshes.
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
    },
    /// Open a breaker on every instance (the kill-switch): every call is rejected.
    #[command(after_help = "Examples:\n  \
        fusebox open payments-api --for 10m   # lifts itself after ten minutes\n  \
        fusebox open payments-api             # until `fusebox reset payments-api`")]
    Open(ForceArgs),
    /// Close a breaker on every instance: every call is admitted, outcomes trip nothing.
    #[command(after_help = "Examples:\n  \
        fusebox close payments-api --for 30m\n  \
        fusebox close payments-api")]
    Close(ForceArgs),
    /// Lift a forced state and close the breaker fleet-wide with fresh counters.
    #[command(after_help = "Example:\n  fusebox reset payments-api")]
    Reset {
        #[command(flatten)]
        store: StoreArgs,
        /// The breaker's name.
        name: String,
    },
    /// The instances of one breaker, live or recently gone, and their own verdicts.
    #[command(after_help = "Examples:\n  \
        fusebox instances payments-api\n  \
        fusebox instances payments-api --json")]
    Instances {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// The breaker's name.
        name: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve a live web page of every breaker: state, rates, instances, transitions.
    #[command(after_help = "Examples:\n  \
        fusebox dashboard --listen 127.0.0.1:9477\n  \
        fusebox --redis-url redis://cache:6379 dashboard --listen 127.0.0.1:0 --interval 500ms")]
    Dashboard(dashboard::Args),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        fusebox completions bash > /etc/bash_completion.d/fusebox\n  \
        fusebox completions zsh > \"${fpath[1]}/_fusebox\"\n  \
        fusebox completions fish > ~/.config/fish/completions/fusebox.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
struct ForceArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The breaker's name.
    name: String,
    /// Lift the forced state by itself after this long ("90s", "10m", "2h"; from 1ms to
    /// 10 years).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_force_duration)]
    for_: Option<Duration>,
    /// Force a breaker no instance has reported yet (it takes effect when one starts).
    #[arg(long)]
    create: bool,
}

/// How tables look.
#[derive(Debug, clap::Args)]
struct OutputArgs {
    /// Colour states: auto (on a terminal, unless NO_COLOR is set or TERM=dumb), always or
    /// never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColourChoice::Auto)]
    color: ColourChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColourChoice {
    Auto,
    Always,
    Never,
}

impl OutputArgs {
    /// The look for stdout now: a terminal's width (else `COLUMNS`, else unlimited for a
    /// pipe), and colour as chosen.
    fn look(&self) -> Look {
        let terminal = std::io::stdout().is_terminal();
        let colour = match self.color {
            ColourChoice::Always => true,
            ColourChoice::Never => false,
            ColourChoice::Auto => {
                terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
            }
        };
        // The table crate measures the terminal stdout is (None for a pipe).
        let measured = terminal
            .then(|| comfy_table::Table::new().width())
            .flatten();
        let width = measured
            .or_else(|| {
                std::env::var("COLUMNS")
                    .ok()
                    .and_then(|c| c.trim().parse().ok())
            })
            .filter(|&w| w > 0);
        Look { width, colour }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try 90s, 10m, 2h)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// A `--for` value, checked against what every store can keep before anything is written.
fn parse_force_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try 90s, 10m, 2h)"))?;
    fusebox_fleet::force_millis(d).map_err(|e| match e {
        fusebox_fleet::StoreError::Invalid(why) => why,
        other => other.to_string(),
    })?;
    Ok(d)
}

fn main() -> ExitCode {
    let cli = parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fusebox: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fusebox: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The command line, or clap's error and exit. Clap quotes a refused value as given, so
/// when an argument holds a control character the error is taken from the arguments with
/// those escaped: the same message, and nothing in it can drive the terminal.
fn parse() -> Cli {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let error = match Cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    let escaped: Vec<String> = args.iter().map(|a| clean(a).into_owned()).collect();
    if !error.use_stderr() || escaped == args {
        error.exit();
    }
    if let Err(e) = Cli::try_parse_from(&escaped) {
        e.exit();
    }
    // Escaping made the arguments valid (no such case is known): the first error, plain
    // and escaped line by line.
    let text = error.render().to_string();
    for line in text.lines() {
        eprintln!("{}", clean(line));
    }
    std::process::exit(error.exit_code());
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let top = cli.store;
    match cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "fusebox", &mut std::io::stdout());
            Ok(())
        }
        Command::PgSetup { pg, yes, dry_run } => {
            let store = StoreArgs::from(pg).over(&top)?;
            pg_setup(&store, yes, dry_run).await
        }
        Command::Status {
            store,
            output,
            json,
            watch,
            interval,
        } => {
            let opened = store.over(&top)?.open().await?;
            if watch {
                let look = || output.look();
                render::watch(&*opened.store, &opened.label, json, interval, look).await
            } else {
                let views = render::collect(&*opened.store).await?;
                say(&render::status(&views, json, output.look()));
                Ok(())
            }
        }
        Command::Open(args) => force(&top, args, Some(ForcedState::Open)).await,
        Command::Close(args) => force(&top, args, Some(ForcedState::Closed)).await,
        Command::Reset { store, name } => {
            let args = ForceArgs {
                store,
                name,
                for_: None,
                create: false,
            };
            force(&top, args, None).await
        }
        Command::Dashboard(args) => dashboard::run(&top, args).await,
        Command::Instances {
            store,
            output,
            name,
            json,
        } => {
            let opened = store.over(&top)?.open().await?;
            let view = known(&*opened.store, &name).await?;
            say(&render::instances(&view, json, output.look()));
            Ok(())
        }
    }
}

async fn pg_setup(args: &StoreArgs, yes: bool, dry_run: bool) -> Result<(), CliError> {
    if dry_run {
        let sql = fusebox_postgres::setup_sql(&args.schema()).map_err(CliError::from)?;
        say(sql.trim_end());
        return Ok(());
    }
    let pg = args.postgres()?;
    if !yes {
        confirm(&format!(
            "Create or upgrade the fusebox tables in schema \"{}\" on {}? [y/N] ",
            clean(pg.schema()),
            clean(&pg.server())
        ))?;
    }
    let report = pg
        .setup()
        .await
        .map_err(|e| CliError::store(e, &pg.server()))?;
    let schema = clean(&report.schema);
    let server = pg.server();
    let server = clean(&server);
    if report.applied.is_empty() {
        say(&format!(
            "schema \"{schema}\" on {server} is already at version {}; nothing to do",
            report.version
        ));
    } else if report.created() {
        say(&format!(
            "schema \"{schema}\" on {server} created at version {}",
            report.version
        ));
    } else {
        say(&format!(
            "schema \"{schema}\" on {server} upgraded from version {} to {}",
            report.previous_version, report.version
        ));
    }
    Ok(())
}

/// Writes a line to stdout; a reader that went away (`fusebox status | head`) is no error.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Asks on the terminal; anything but yes (or no terminal to ask on) refuses.
fn confirm(question: &str) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
    }
    let mut answer = String::new();
    let read = stdin.lock().read_line(&mut answer).unwrap_or(0);
    if read == 0 {
        return Err(CliError::NotConfirmed(
            "no answer to the confirmation; pass --yes to set up without asking".into(),
        ));
    }
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::NotConfirmed(
            "not confirmed; nothing changed".into(),
        )),
    }
}

/// The breaker's view, or an error naming the breakers the store knows.
async fn known(store: &dyn StateStore, name: &str) -> Result<fusebox_fleet::FleetView, CliError> {
    if let Some(view) = store.view(name).await.map_err(CliError::from)? {
        return Ok(view);
    }
    let names = store.breakers().await.map_err(CliError::from)?;
    Err(CliError::UnknownBreaker {
        name: name.to_owned(),
        known: names,
    })
}

/// Whether the store lists `name`, without reading its record.
async fn store_holds(store: &dyn StateStore, name: &str) -> bool {
    store
        .breakers()
        .await
        .is_ok_and(|names| names.iter().any(|n| n == name))
}

async fn force(
    top: &StoreArgs,
    force: ForceArgs,
    state: Option<ForcedState>,
) -> Result<(), CliError> {
    let opened = force.store.clone().over(top)?.open().await?;
    let store = &*opened.store;
    if !force.create || state.is_none() {
        match known(store, &force.name).await {
            Ok(_) => {}
            // An unreadable record is what a reset repairs: it rewrites every field.
            Err(CliError::Protocol(why))
                if state.is_none() && store_holds(store, &force.name).await =>
            {
                eprintln!(
                    "{}: the stored record was unreadable ({}); rewriting it",
                    clean(&force.name),
                    clean(&why)
                );
            }
            Err(e) => return Err(e),
        }
    }
    let for_ms = force
        .for_
        .map(fusebox_fleet::force_millis)
        .transpose()
        .map_err(CliError::from)?;
    let view = store
        .force(&force.name, state, for_ms)
        .await
        .map_err(CliError::from)?;
    let what = match state {
        Some(ForcedState::Open) => "forced open: every instance rejects every call",
        Some(ForcedState::Closed) => "forced closed: every instance admits every call",
        None => "reset: forced state lifted, closed with fresh counters",
    };
    let until = match (force.for_, view.record.forced_until_ms) {
        (Some(d), Some(until)) => format!(
            " for {} (until {})",
            humantime::format_duration(d),
            render::timestamp(until)
        ),
        _ if state.is_some() => " until `fusebox reset`".to_owned(),
        _ => String::new(),
    };
    say(&format!(
        "{}: {what}{until}; {} live instance(s) follow within two sync intervals",
        clean(&force.name),
        view.live_instances()
    ));
    Ok(())
}
