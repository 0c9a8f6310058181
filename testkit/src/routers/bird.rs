//! BIRD 2 inside a test namespace: `bird -f` with its own config, control socket, pid and log
//! file, queried with `birdc`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::bird_routes::{BirdRoute, parse_bird_routes};
use super::{
    RouterError, STARTUP, check_alive, in_dir, instance_dir, io_error, poll, run, spawn_in,
    write_file,
};
use crate::{ChildGuard, Netns};

/// A running BIRD; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Bird {
    child: ChildGuard,
    dir: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    output: PathBuf,
}

impl Bird {
    /// Writes `config` (after a `log "<dir>/bird.log" all;` line) into a fresh directory,
    /// checks it with `bird -p`, runs `bird -f -c <conf> -s <sock> -P <pid>` inside `ns` and
    /// waits until `birdc` answers.
    pub fn start(ns: &Netns, config: &str) -> Result<Bird, RouterError> {
        let dir = instance_dir("bird-")?;
        let log = in_dir(&dir, "bird.log");
        let conf = in_dir(&dir, "bird.conf");
        let socket = in_dir(&dir, "bird.ctl");
        let output = in_dir(&dir, "bird.out");
        write_file(&conf, &format!("log \"{}\" all;\n{config}", log.display()))?;
        run(Command::new("bird").arg("-p").arg("-c").arg(&conf), &conf)?;
        let pid = in_dir(&dir, "bird.pid");
        let args = [
            "-f",
            "-c",
            &conf.to_string_lossy(),
            "-s",
            &socket.to_string_lossy(),
            "-P",
            &pid.to_string_lossy(),
        ]
        .map(|s| s.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = spawn_in(ns, "bird", &args, &output)?;
        let mut bird = Bird {
            child,
            dir,
            config: conf,
            socket,
            log,
            output,
        };
        let (output, log) = (bird.output.clone(), bird.log.clone());
        poll(
            "BIRD answering on its control socket",
            STARTUP,
            &log,
            |last| {
                check_alive(&mut bird.child, "bird", &output, &log)?;
                match bird.try_birdc("show status") {
                    Ok(s) if s.contains("Daemon is up and running") => Ok(Some(())),
                    Ok(s) => {
                        *last = s;
                        Ok(None)
                    }
                    Err(e) => {
                        *last = e.to_string();
                        Ok(None)
                    }
                }
            },
        )?;
        Ok(bird)
    }

    /// The BIRD process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file (`log ... all`).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The config file as written.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The instance directory (config, socket, pid, log, stdout/stderr).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `birdc -s <sock> <cmd>` with the `BIRD x ready.` banner removed; panics on failure.
    pub fn birdc(&self, cmd: &str) -> String {
        self.try_birdc(cmd)
            .unwrap_or_else(|e| panic!("birdc {cmd:?}: {e}"))
    }

    /// `birdc -s <sock> <cmd>`; errors when birdc fails (it exits 1 on unknown commands).
    pub fn try_birdc(&self, cmd: &str) -> Result<String, RouterError> {
        let out = run(
            Command::new("birdc")
                .arg("-s")
                .arg(&self.socket)
                .args(cmd.split_whitespace()),
            &self.log,
        )?;
        Ok(out
            .lines()
            .filter(|l| !(l.starts_with("BIRD ") && l.ends_with(" ready.")))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Replaces the configuration (same `log` line prepended) and runs `configure`.
    pub fn reconfigure(&self, config: &str) -> Result<String, RouterError> {
        write_file(
            &self.config,
            &format!("log \"{}\" all;\n{config}", self.log.display()),
        )?;
        let out = self.try_birdc("configure")?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            Ok(out)
        } else {
            Err(RouterError::Command {
                command: "birdc configure".into(),
                output: out,
                log: self.log.display().to_string(),
            })
        }
    }

    /// The state of protocol `name`: for BGP the `BGP state:` line (`Established`, `Active`,
    /// `Connect`, ...), else the State column (`up`, `down`, `start`). `None` if unknown.
    pub fn protocol_state(&self, name: &str) -> Option<String> {
        let out = self.try_birdc(&format!("show protocols all {name}")).ok()?;
        if let Some(line) = out
            .lines()
            .find(|l| l.trim_start().starts_with("BGP state:"))
        {
            return line.split(':').nth(1).map(|s| s.trim().to_string());
        }
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(3))
            .map(str::to_string)
    }

    /// Polls until protocol `name` is Established.
    pub fn wait_established(&self, name: &str, timeout: Duration) -> Result<(), RouterError> {
        poll(
            &format!("BIRD protocol {name} Established"),
            timeout,
            &self.log,
            |last| {
                let state = self.protocol_state(name).unwrap_or_default();
                let up = state == "Established";
                *last = state;
                Ok(up.then_some(()))
            },
        )
    }

    /// The routes of `table` (e.g. `master4`) from `show route table <table> all`.
    pub fn routes(&self, table: &str) -> Vec<BirdRoute> {
        parse_bird_routes(&self.birdc(&format!("show route table {table} all")))
    }

    /// Routes imported by protocol `name`, from its channel statistics (`Routes: N imported`):
    /// cheap even with a million routes.
    pub fn imported_routes(&self, name: &str) -> Option<u64> {
        let out = self.try_birdc(&format!("show protocols all {name}")).ok()?;
        imported_from(&out)
    }

    /// A persistent connection to the control socket, for frequent queries without starting a
    /// `birdc` process each time.
    pub fn control(&self) -> Result<BirdControl, RouterError> {
        BirdControl::connect(&self.socket, &self.log)
    }
}

/// The `N` of `Routes: N imported, ...` in `show protocols all` output.
fn imported_from(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Routes:"))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One open BIRD control-socket session (the protocol `birdc` speaks): each reply line is
/// `DDDD-text` (more follows), ` text` (continuation) or `DDDD text` (last line; codes from
/// 8000 up are errors).
#[derive(Debug)]
pub struct BirdControl {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    log: PathBuf,
}

impl BirdControl {
    fn connect(socket: &Path, log: &Path) -> Result<BirdControl, RouterError> {
        let writer = UnixStream::connect(socket)
            .map_err(io_error(format!("connecting to {}", socket.display())))?;
        let reader = BufReader::new(
            writer
                .try_clone()
                .map_err(io_error("cloning the BIRD control socket"))?,
        );
        let mut control = BirdControl {
            reader,
            writer,
            log: log.to_path_buf(),
        };
        control.read_reply("(greeting)")?;
        Ok(control)
    }

    /// Sends one command and returns its reply text (codes removed), or the error reply.
    pub fn command(&mut self, cmd: &str) -> Result<String, RouterError> {
        writeln!(self.writer, "{cmd}").map_err(io_error("writing to the BIRD control socket"))?;
        self.read_reply(cmd)
    }

    /// Routes imported by protocol `name` (see [`Bird::imported_routes`]).
    pub fn imported_routes(&mut self, name: &str) -> Option<u64> {
        imported_from(&self.command(&format!("show protocols all {name}")).ok()?)
    }

    fn failed(&self, cmd: &str, output: String) -> RouterError {
        RouterError::Command {
            command: format!("BIRD control: {cmd}"),
            output,
            log: self.log.display().to_string(),
        }
    }

    fn read_reply(&mut self, cmd: &str) -> Result<String, RouterError> {
        let mut text = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(io_error("reading from the BIRD control socket"))?;
            if n == 0 {
                return Err(self.failed(cmd, format!("connection closed after {text:?}")));
            }
            let l = line.trim_end_matches('\n');
            let b = l.as_bytes();
            if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) {
                let rest = l.get(5..).unwrap_or_default();
                text.push_str(rest);
                text.push('\n');
                if b[4] == b' ' {
                    if matches!(b[0], b'8' | b'9') {
                        return Err(self.failed(cmd, rest.to_string()));
                    }
                    return Ok(text);
                }
            } else {
                text.push_str(l.strip_prefix(' ').unwrap_or(l));
                text.push('\n');
            }
        }
    }
}
