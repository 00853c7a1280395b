// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The command line: clap definitions and the dispatcher `main` calls.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::assemble::Assembled;
use crate::commands::{self, CommandError, Report};
use crate::program::Program;
use crate::target::{Controls, Target};

/// Run, trace and decode s390 channel programs against a simulated or a real (vfio-ccw)
/// channel subsystem.
///
/// Without `--vfio`, commands run on the built-in simulated channel subsystem: subchannel
/// 0.0.0000 holds a virtio-blk-ccw device (devno 0005), 0.0.0001 a test device (devno 0006);
/// `--machine FILE` describes another one (docs/machine-format.md).
#[derive(Debug, Parser)]
#[command(name = "ccwctl", version, propagate_version = true)]
pub struct Cli {
    /// Print JSON (one document; `watch` prints one object per line).
    #[arg(long, global = true)]
    pub json: bool,

    /// Print tracing output on stderr (`RUST_LOG` filters it; default `debug`).
    #[arg(long, global = true)]
    pub trace: bool,

    /// Drive a real subchannel through vfio-ccw: an mdev (its UUID or sysfs path), or a bus
    /// id (`dev:0.0.0120` a device, `sch:0.0.0001` a subchannel, plain when unambiguous)
    /// whose subchannel ccwctl claims for vfio_ccw for the run, with an mdev, and gives back
    /// to its driver afterwards, also after an error.
    #[arg(long, global = true, value_name = "MDEV|BUSID")]
    pub vfio: Option<String>,

    /// With `--vfio BUSID`: the UUID of the mdev to create (default: the subchannel's own
    /// mdev, or a new one with a random UUID).
    #[arg(long, global = true, value_name = "UUID", requires = "vfio")]
    pub mdev_uuid: Option<String>,

    /// Simulate the machine described in FILE (devices, CHPIDs and path types; see
    /// docs/machine-format.md) instead of the built-in one.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "vfio")]
    pub machine: Option<PathBuf>,

    /// How long to wait for a channel program's final status, in milliseconds.
    #[arg(long, global = true, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List subchannels: bus ids, device number, CU and device type/model, paths, state.
    List,
    /// Run SENSE ID on a device and decode it (CIWs included).
    SenseId {
        /// Subchannel id (0.0.0000) or device bus id (0.0.0005); `sch:`/`dev:` force one.
        busid: String,
    },
    /// Run a channel program file (see docs/program-format.md) and show what came back.
    Run {
        /// Subchannel id (0.0.0000) or device bus id (0.0.0005); `sch:`/`dev:` force one.
        busid: String,
        /// The program file.
        program: PathBuf,
        /// Exit with status 3 unless the program ended with exactly CE|DE and no
        /// subchannel status.
        #[arg(long)]
        strict: bool,
    },
    /// Decode an architected block given in hex.
    Decode {
        /// ccw, ccw0, orb, scsw, irb, schib, crw, senseid, sense.
        block: String,
        /// The bytes in hex; several arguments are concatenated (spaces, `:`, `_` allowed).
        #[arg(required = true, num_args = 1..)]
        hex: Vec<String>,
    },
    /// An ECKD 3390 DASD through channel programs: a Hercules CKD image on the simulated
    /// channel subsystem, or with --vfio a real DASD (rdc, read, write).
    #[cfg(feature = "sim")]
    Dasd {
        /// What to do with it.
        #[command(subcommand)]
        cmd: crate::dasd::DasdCommand,
    },
    /// Stream interruptions and channel reports as they arrive.
    Watch {
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long, value_name = "SECS")]
        duration: Option<f64>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
        /// Simulator only: make channel path CHPID go away and come back, so that channel
        /// reports and path-related interruptions arrive (hex, e.g. 0x40).
        #[arg(long, value_name = "CHPID", value_parser = parse_u8)]
        inject_path_event: Option<u8>,
        /// Simulator only: make the device at BUSID present unsolicited attention status.
        #[arg(long, value_name = "BUSID")]
        inject_attention: Option<String>,
    },
}

fn parse_u8(s: &str) -> Result<u8, String> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u8::from_str_radix(t, 16).map_err(|_| format!("`{s}` is not a hex byte"))
}

fn print_report<R: Report>(json: bool, report: &R) -> Result<(), CommandError> {
    let mut out = std::io::stdout().lock();
    let text = if json {
        let mut s = serde_json::to_string_pretty(report)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        s.push('\n');
        s
    } else {
        report.text()
    };
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}

/// Runs `cli`; returns the process exit code. Errors print as one line on stderr
/// (`ccwctl: ...`), or as `{"error": ..., "kind": ...}` on stdout with `--json`.
pub fn main_with(cli: Cli) -> ExitCode {
    if cli.trace {
        init_tracing();
    }
    let json = cli.json;
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                let v = serde_json::json!({ "error": e.to_string() });
                println!("{v}");
            }
            eprintln!("ccwctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

// Without either backend only `decode` works; the rest answers that the backend is missing.
#[cfg_attr(not(any(feature = "sim", feature = "vfio")), allow(unused_variables))]
fn dispatch(cli: Cli) -> Result<u8, CommandError> {
    let timeout = Duration::from_millis(cli.timeout);
    // `decode` needs no channel subsystem.
    if let Command::Decode { block, hex } = &cli.command {
        let report = commands::decode_cmd(block, &hex.join(""))?;
        print_report(cli.json, &report)?;
        return Ok(0);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CommandError::Target(crate::target::TargetError::new(
                crate::target::TargetErrorKind::Other,
                format!("cannot start the async runtime: {e}"),
            ))
        })?;
    // `dasd` brings its own simulated subsystem (a 3390 on the given image).
    #[cfg(feature = "sim")]
    if let Command::Dasd { cmd } = &cli.command {
        if cli.machine.is_some() {
            return Err(CommandError::Usage(
                "`dasd` runs on its own 3390 (the image it is given); --machine is for list, \
                 sense-id, run and watch"
                    .into(),
            ));
        }
        let claims = crate::backends::Claims::default();
        let vfio = cli.vfio.as_deref().map(|name| crate::backends::VfioArgs {
            name,
            uuid: cli.mdev_uuid.as_deref(),
            claims: &claims,
        });
        let print = rt.block_on(crate::dasd::dasd_cmd(cmd, timeout, vfio));
        let released = after_runtime(rt, claims);
        let print = print?;
        released?;
        let _ = std::io::stdout()
            .lock()
            .write_all(print(cli.json).as_bytes());
        return Ok(0);
    }
    // The machine file is checked before anything runs.
    #[cfg(feature = "sim")]
    let machine = match &cli.machine {
        Some(path) => Some(vcss::machine::Machine::from_file(path)?),
        None => None,
    };
    #[cfg(not(feature = "sim"))]
    if cli.machine.is_some() {
        return Err(unavailable(
            "--machine needs ccwctl built with the `sim` feature",
        ));
    }
    // `run` parses its program first: a malformed file fails before any device is touched,
    // and the guest memory is sized for the program.
    let program = match &cli.command {
        Command::Run { program, .. } => Some(Program::from_file(program)?),
        _ => None,
    };
    let mem = Arc::new(match &program {
        Some(p) => Assembled::memory_for(p)?,
        None => Assembled::default_memory()?,
    });
    let claims = crate::backends::Claims::default();
    let result = rt.block_on(async {
        match &cli.vfio {
            #[cfg(feature = "vfio")]
            Some(name) => {
                let args = crate::backends::VfioArgs {
                    name,
                    uuid: cli.mdev_uuid.as_deref(),
                    claims: &claims,
                };
                let target = crate::backends::open_vfio(args, mem)?;
                execute(&target, &cli, program.as_ref(), timeout, None).await
            }
            #[cfg(not(feature = "vfio"))]
            Some(_) => Err(unavailable("--vfio needs ccwctl built with the `vfio` feature")),
            #[cfg(feature = "sim")]
            None => match &machine {
                Some(m) => {
                    let target = crate::backends::simulated_machine(mem, m)?;
                    execute(&target, &cli, program.as_ref(), timeout, Some(m)).await
                }
                None => {
                    let target = crate::backends::simulated(mem)?;
                    execute(&target, &cli, program.as_ref(), timeout, None).await
                }
            },
            #[cfg(not(feature = "sim"))]
            None => Err(unavailable(
                "this ccwctl has no simulator (built without the `sim` feature): give --vfio <mdev>",
            )),
        }
    });
    let released = after_runtime(rt, claims);
    let code = result?;
    released?;
    Ok(code)
}

/// Ends the runtime, then gives back the subchannels the run claimed. Dropping the runtime
/// drops every task (interrupt tasks, `watch`'s), and with them every open vfio device: the
/// kernel removes no mdev whose device is open. The command's own error wins over this one.
fn after_runtime(
    rt: tokio::runtime::Runtime,
    claims: crate::backends::Claims,
) -> Result<(), CommandError> {
    drop(rt);
    Ok(claims.release()?)
}

/// The machine a simulated target runs, for `list` to show (`()` without the simulator).
#[cfg(feature = "sim")]
type MachineRef<'a> = Option<&'a vcss::machine::Machine>;
#[cfg(not(feature = "sim"))]
type MachineRef<'a> = Option<&'a ()>;

/// A usage-independent failure: the backend asked for is not part of this build.
#[cfg(not(all(feature = "sim", feature = "vfio")))]
fn unavailable(what: &str) -> CommandError {
    CommandError::Target(crate::target::TargetError::new(
        crate::target::TargetErrorKind::Unavailable,
        what,
    ))
}

#[cfg_attr(not(any(feature = "sim", feature = "vfio")), allow(dead_code))]
async fn execute<B: Controls>(
    target: &Target<B>,
    cli: &Cli,
    parsed: Option<&Program>,
    timeout: Duration,
    machine: MachineRef<'_>,
) -> Result<u8, CommandError> {
    match &cli.command {
        Command::List => {
            #[cfg_attr(not(feature = "sim"), allow(unused_mut))]
            let mut r = commands::list_cmd(target, timeout).await?;
            #[cfg(feature = "sim")]
            if let Some(m) = machine {
                r.machine = Some(commands::MachineReport::of(m));
            }
            #[cfg(not(feature = "sim"))]
            let _ = machine;
            print_report(cli.json, &r)?;
            Ok(0)
        }
        Command::SenseId { busid } => {
            let r = commands::sense_id_cmd(target, busid, timeout).await?;
            print_report(cli.json, &r)?;
            Ok(0)
        }
        Command::Run {
            busid,
            program,
            strict,
        } => {
            let Some(parsed) = parsed else {
                return Err(CommandError::Usage("internal: program not parsed".into()));
            };
            let r = commands::run_cmd(target, busid, parsed, program, timeout).await?;
            print_report(cli.json, &r)?;
            Ok(if *strict && r.outcome != "ok" { 3 } else { 0 })
        }
        Command::Watch {
            duration,
            count,
            inject_path_event,
            inject_attention,
        } => {
            let duration = match duration {
                Some(d) if d.is_finite() && *d >= 0.0 => Some(Duration::from_secs_f64(*d)),
                Some(d) => {
                    return Err(CommandError::Usage(format!(
                        "--duration must be a non-negative number of seconds, not {d}"
                    )));
                }
                None => None,
            };
            let json = cli.json;
            if !json
                && target.name() == "simulated"
                && inject_path_event.is_none()
                && inject_attention.is_none()
            {
                // Nothing happens on the simulator by itself: say how to make something happen.
                eprintln!(
                    "ccwctl: watching the simulated subsystem; it is quiet unless told otherwise \
                     (try --inject-path-event 00 or --inject-attention 0.0.0001)"
                );
            }
            let watch = commands::watch_cmd(
                target,
                duration,
                *count,
                commands::Inject {
                    path_event: *inject_path_event,
                    attention: inject_attention.clone(),
                },
                |line| {
                    let mut out = std::io::stdout().lock();
                    let text = if json {
                        format!("{}\n", serde_json::to_string(line).unwrap_or_default())
                    } else {
                        line.text()
                    };
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                },
            );
            tokio::select! {
                r = watch => { r?; }
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(0)
        }
        Command::Decode { .. } => Ok(0),
        #[cfg(feature = "sim")]
        Command::Dasd { .. } => Ok(0),
    }
}
