//! `--config FILE`: settings from a TOML file, below flags and environment variables.
//!
//! Every command-line option is also a setting of the file, under its long name
//! (`rate-limit = 600`, or `rate_limit`); a flag given `true` is set, lists are arrays
//! (`trusted-proxy = ["10.0.0.0/8"]`). The file is turned into command-line options before
//! clap parses the command line, so one parser checks every value whatever its source, and
//! precedence is: command line, then environment (`LATCHKEY_*`), then file, then default.
//! A key no command knows is refused, naming it; a setting the command at hand does not
//! take (`rate-limit` for `migrate`) is ignored, so that one file serves every command.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use clap::CommandFactory;

use crate::cli::Cli;

/// Options that are not settings.
const NOT_SETTINGS: [&str; 4] = ["config", "help", "version", "port"];

/// The command line `args` (program name first) with the settings of the `--config` file
/// (or `LATCHKEY_CONFIG`) added as options. Without a file, `args` unchanged.
pub fn expand(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let path = config_path(&args).or_else(|| std::env::var_os("LATCHKEY_CONFIG"));
    let Some(path) = path else {
        return Ok(args);
    };
    let path = Path::new(&path);
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{} is not valid TOML: {e}", path.display()))?;
    with_settings(args, &table).with_context(|| format!("in {}", path.display()))
}

fn config_path(args: &[OsString]) -> Option<OsString> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            return None;
        }
        if arg == "--config" {
            return iter.next().cloned();
        }
        if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(value.into());
        }
    }
    None
}

/// `args` with an option added for each setting of `table` the chosen command takes and
/// neither the command line nor the environment already sets.
fn with_settings(mut args: Vec<OsString>, table: &toml::Table) -> anyhow::Result<Vec<OsString>> {
    let mut root = Cli::command();
    // Propagates the global options (`--log-format`) to every subcommand.
    root.build();
    let mut known = std::collections::BTreeSet::new();
    collect_settings(&root, &mut known);
    let command = chosen_command(&root, &args);
    let mut added = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        if !known.contains(&name) {
            bail!(
                "unknown setting `{key}`; the settings are: {}",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()))
        else {
            continue;
        };
        let flag = format!("--{name}");
        let on_command_line = args.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        });
        let in_environment = arg
            .get_env()
            .is_some_and(|var| std::env::var_os(var).is_some());
        if on_command_line || in_environment {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        for item in values(key, value)? {
            match (takes_value, item.as_str()) {
                (true, _) => added.push(OsString::from(format!("{flag}={item}"))),
                (false, "true") => added.push(OsString::from(&flag)),
                (false, "false") => {}
                (false, other) => bail!("setting `{key}` is true or false, not {other}"),
            }
        }
    }
    args.extend(added);
    Ok(args)
}

/// A setting's value as option values: scalars as text, arrays one per item.
fn values(key: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    match value {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Integer(i) => Ok(vec![i.to_string()]),
        toml::Value::Float(f) => Ok(vec![f.to_string()]),
        toml::Value::Boolean(b) => Ok(vec![b.to_string()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    bail!("setting `{key}`: a list of plain values is expected")
                }
                other => Ok(values(key, other)?.remove(0)),
            })
            .collect(),
        toml::Value::Datetime(d) => Ok(vec![d.to_string()]),
        toml::Value::Table(_) => bail!("setting `{key}` cannot be a table"),
    }
}

/// The long names of every option of every command.
fn collect_settings(command: &clap::Command, into: &mut std::collections::BTreeSet<String>) {
    for arg in command.get_arguments() {
        if let Some(long) = arg.get_long() {
            if !NOT_SETTINGS.contains(&long) {
                into.insert(long.to_owned());
            }
        }
    }
    for sub in command.get_subcommands() {
        collect_settings(sub, into);
    }
}

/// The (sub)command `args` select, following subcommand names in order and stepping over
/// the values of options (`--log-format json serve`).
fn chosen_command<'a>(root: &'a clap::Command, args: &[OsString]) -> &'a clap::Command {
    let mut command = root;
    let mut args = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(arg) = args.next() {
        if let Some(long) = arg.strip_prefix("--") {
            let takes_value = command
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .is_some_and(|a| a.get_action().takes_values());
            if takes_value {
                args.next();
            }
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        match command.find_subcommand(arg) {
            Some(sub) => command = sub,
            None => break,
        }
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_with(args: &[&str], file: &str) -> anyhow::Result<Vec<String>> {
        let table: toml::Table = toml::from_str(file).unwrap();
        let args = args.iter().map(OsString::from).collect();
        Ok(with_settings(args, &table)?
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect())
    }

    #[test]
    fn settings_become_options_of_the_chosen_command() {
        let args = expand_with(
            &["latchkey", "serve"],
            "rate_limit = 600\nstrict-delegation = true\ntrusted-proxy = [\"10.0.0.0/8\", \"192.0.2.1/32\"]\n",
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "latchkey",
                "serve",
                "--rate-limit=600",
                "--strict-delegation",
                "--trusted-proxy=10.0.0.0/8",
                "--trusted-proxy=192.0.2.1/32"
            ]
        );
    }

    #[test]
    fn the_command_line_wins_and_other_commands_settings_are_ignored() {
        let args = expand_with(
            &["latchkey", "serve", "--rate-limit", "5"],
            "rate-limit = 600\n",
        )
        .unwrap();
        assert_eq!(args, ["latchkey", "serve", "--rate-limit", "5"]);
        let args = expand_with(&["latchkey", "migrate"], "rate-limit = 600\n").unwrap();
        assert_eq!(args, ["latchkey", "migrate"]);
        let args = expand_with(
            &["latchkey", "users", "list"],
            "database = \"sqlite://x.db\"\n",
        )
        .unwrap();
        assert_eq!(
            args,
            ["latchkey", "users", "list", "--database=sqlite://x.db"]
        );
    }

    #[test]
    fn options_before_the_command_do_not_hide_it() {
        let args = expand_with(
            &["latchkey", "--log-format", "json", "serve"],
            "rate-limit = 7\n",
        )
        .unwrap();
        assert_eq!(args.last().unwrap(), "--rate-limit=7");
    }

    #[test]
    fn unknown_and_misshapen_settings_are_refused_by_name() {
        let error = expand_with(&["latchkey", "serve"], "rate-limt = 5\n").unwrap_err();
        assert!(
            error.to_string().contains("unknown setting `rate-limt`"),
            "{error}"
        );
        let error = expand_with(&["latchkey", "serve"], "[listen]\nport = 1\n").unwrap_err();
        assert!(error.to_string().contains("`listen`"), "{error}");
        let error = expand_with(&["latchkey", "serve"], "strict-delegation = 3\n").unwrap_err();
        assert!(error.to_string().contains("`strict-delegation`"), "{error}");
    }

    #[test]
    fn the_example_file_is_accepted() {
        let example = include_str!("../../../../examples/latchkey.toml");
        let args = expand_with(&["latchkey", "serve"], example).unwrap();
        assert!(args.contains(&"--log-format=text".to_owned()), "{args:?}");
        use clap::Parser;
        Cli::try_parse_from(args).unwrap();
    }

    /// The settings table of docs/operating.md names every option of `serve`, by flag and environment
    /// variable.
    #[test]
    fn the_operating_guide_lists_every_setting() {
        let doc = include_str!("../../../../docs/operating.md");
        let mut root = Cli::command();
        root.build();
        let serve = root.find_subcommand("serve").unwrap();
        for arg in serve.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if NOT_SETTINGS.contains(&long) && long != "config" {
                continue;
            }
            assert!(
                doc.contains(&format!("| `--{long}` |")),
                "docs/operating.md lacks --{long}"
            );
            if let Some(env) = arg.get_env() {
                let env = env.to_str().unwrap();
                assert!(
                    doc.contains(&format!("`{env}`")),
                    "docs/operating.md lacks {env}"
                );
            }
        }
    }

    #[test]
    fn finds_the_file_on_the_command_line() {
        let args: Vec<OsString> = ["latchkey", "serve", "--config=a.toml"]
            .map(OsString::from)
            .into();
        assert_eq!(config_path(&args), Some("a.toml".into()));
        let args: Vec<OsString> = ["latchkey", "--config", "b.toml", "serve"]
            .map(OsString::from)
            .into();
        assert_eq!(config_path(&args), Some("b.toml".into()));
    }
}
