//! A fake `ipset` for unit tests: interprets `ipset -exist restore` line by line (stopping at
//! the first error, like the real one) and prints `ipset save` output.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::IpsetBackend;
use crate::dataplane::iptables::CommandError;

/// One set: type, family and members as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSet {
    /// `hash:net`, ...
    pub kind: String,
    /// `inet` or `inet6`.
    pub family: String,
    /// Members as the restore input wrote them (a /32 or /128 is stored without its length).
    pub members: BTreeSet<String>,
}

/// Sets in memory. Sets named in `in_use` cannot be destroyed (a rule references them).
#[derive(Debug, Default)]
pub struct FakeIpset {
    /// Every set.
    pub sets: BTreeMap<String, FakeSet>,
    /// Sets referenced by iptables rules.
    pub in_use: BTreeSet<String>,
    /// Every restore input.
    pub restores: Vec<String>,
    fail_restores: VecDeque<String>,
}

fn failed(stderr: String) -> CommandError {
    CommandError::Failed {
        program: "fake-ipset".to_string(),
        args: "-exist restore".to_string(),
        status: "exit status: 1".to_string(),
        stderr,
    }
}

fn normalize(member: &str) -> String {
    member
        .strip_suffix("/32")
        .or_else(|| member.strip_suffix("/128"))
        .unwrap_or(member)
        .to_string()
}

impl FakeIpset {
    /// No sets.
    pub fn new() -> FakeIpset {
        FakeIpset::default()
    }

    /// Makes the next restore fail with `message` before its first line.
    pub fn fail_next_restore(&mut self, message: &str) {
        self.fail_restores.push_back(message.to_string());
    }

    /// Runs one restore line.
    pub fn line(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["create", name, kind, rest @ ..] => {
                let family = rest
                    .windows(2)
                    .find(|w| w[0] == "family")
                    .map_or("inet", |w| w[1]);
                match self.sets.get(*name) {
                    Some(s) if s.kind != *kind || s.family != family => {
                        Err("Set cannot be created: set with the same name already exists".into())
                    }
                    Some(_) => Ok(()),
                    None => {
                        self.sets.insert(
                            name.to_string(),
                            FakeSet {
                                kind: kind.to_string(),
                                family: family.to_string(),
                                members: BTreeSet::new(),
                            },
                        );
                        Ok(())
                    }
                }
            }
            ["add", name, m] => {
                let set = self
                    .sets
                    .get_mut(*name)
                    .ok_or("The set with the given name does not exist")?;
                set.members.insert(normalize(m));
                Ok(())
            }
            ["del", name, m] => {
                let set = self
                    .sets
                    .get_mut(*name)
                    .ok_or("The set with the given name does not exist")?;
                set.members.remove(&normalize(m));
                Ok(())
            }
            ["flush", name] => {
                let set = self
                    .sets
                    .get_mut(*name)
                    .ok_or("The set with the given name does not exist")?;
                set.members.clear();
                Ok(())
            }
            ["swap", a, b] => {
                let sa = self
                    .sets
                    .remove(*a)
                    .ok_or("The set with the given name does not exist")?;
                let Some(sb) = self.sets.remove(*b) else {
                    self.sets.insert(a.to_string(), sa);
                    return Err("The set with the given name does not exist".into());
                };
                self.sets.insert(a.to_string(), sb);
                self.sets.insert(b.to_string(), sa);
                Ok(())
            }
            ["destroy", name] => {
                if self.in_use.contains(*name) {
                    return Err(
                        "Set cannot be destroyed: it is in use by a kernel component".into(),
                    );
                }
                self.sets.remove(*name);
                Ok(())
            }
            _ => Err(format!("unknown line {line:?}")),
        }
    }
}

impl IpsetBackend for FakeIpset {
    fn save(&mut self) -> Result<String, CommandError> {
        let mut out = String::new();
        for (name, s) in &self.sets {
            out.push_str(&format!(
                "create {name} {} family {} hashsize 1024 maxelem 1048576\n",
                s.kind, s.family
            ));
            for m in &s.members {
                out.push_str(&format!("add {name} {m}\n"));
            }
        }
        Ok(out)
    }

    fn restore(&mut self, input: &str) -> Result<(), CommandError> {
        self.restores.push(input.to_string());
        if let Some(msg) = self.fail_restores.pop_front() {
            return Err(failed(msg));
        }
        for (n, line) in input.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            self.line(line)
                .map_err(|e| failed(format!("Error in line {}: {e}", n + 1)))?;
        }
        Ok(())
    }
}
