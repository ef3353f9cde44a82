//! `loop key`: the repository's key slots.

use std::process::ExitCode;

use anyhow::{Result, bail};
use loop_repo::Repository;
use loop_repo::keys::Secret;
use serde_json::json;

use crate::args::*;
use crate::output::{ok, print_json, printable};
use crate::repo_open;

pub(super) fn key(g: &Global, k: KeyCommand) -> Result<ExitCode> {
    let mut repo = repo_open::open(g)?;
    match k {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            if g.json {
                print_json(&keys)?;
            } else if !g.quiet {
                println!(
                    " {:<9} {:<11} {:<26} {:<16} {:<10} Label",
                    "ID", "Kind", "Created", "Host", "User"
                );
                for k in keys {
                    println!(
                        "{}{:<9} {:<11} {:<26} {:<16} {:<10} {}",
                        if k.current { "*" } else { " " },
                        k.id.short(),
                        k.kind,
                        k.meta.created,
                        printable(&k.meta.host),
                        printable(&k.meta.user),
                        printable(k.problem.as_deref().unwrap_or(&k.meta.label))
                    );
                }
            }
        }
        KeyCommand::Add(n) => {
            let pass =
                repo_open::new_passphrase(n.new_password_file.as_deref(), "LOOP_NEW_PASSWORD")?;
            repo_open::validate_password(&pass)?;
            let mut meta =
                Repository::default_slot_meta(&repo_open::hostname(), &repo_open::username());
            meta.label = n.label;
            let id = repo.add_key(Secret::Passphrase(&pass.0), repo_open::kdf(g), &meta)?;
            if g.json {
                print_json(&json!({"id": id.to_hex()}))?;
            } else if !g.quiet {
                println!("added key {}", id.short());
            }
        }
        KeyCommand::Remove { id } => {
            let keys = repo.list_keys()?;
            let matches: Vec<_> = keys
                .iter()
                .filter(|k| k.id.to_hex().starts_with(&id.to_ascii_lowercase()))
                .collect();
            let target = match matches.as_slice() {
                [one] => one.id,
                [] => bail!("no key {id}"),
                _ => bail!("key prefix {id} is ambiguous"),
            };
            repo.remove_key(&target)?;
            if g.json {
                print_json(&json!({"removed": target.to_hex()}))?;
            } else if !g.quiet {
                println!("removed key {}", target.short());
            }
        }
        KeyCommand::Passwd(n) => {
            let pass =
                repo_open::new_passphrase(n.new_password_file.as_deref(), "LOOP_NEW_PASSWORD")?;
            repo_open::validate_password(&pass)?;
            let mut meta =
                Repository::default_slot_meta(&repo_open::hostname(), &repo_open::username());
            meta.label = n.label;
            let id = repo.change_passphrase(&pass.0, repo_open::kdf(g), &meta)?;
            if g.json {
                print_json(&json!({"id": id.to_hex()}))?;
            } else if !g.quiet {
                println!("passphrase changed (new key {})", id.short());
            }
        }
    }
    ok()
}
