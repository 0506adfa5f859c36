//! The raw values given for the inputs of the table in `input.rs`: collected by both front doors
//! (the action from `INPUT_*` variables, the CLI from flags), trimmed, an empty value not given.
//! The requests parse them (`request.rs`, `push::request`).

use std::collections::BTreeMap;

use crate::context::Env;
use crate::error::{Error, Result};
use crate::input::{ALL, GITHUB_TOKEN, GITHUB_TOKEN_VAR, Input, SETTINGS};

/// Raw input values. Values are trimmed; an empty value means "not given".
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    values: BTreeMap<Input, String>,
    /// In action mode, where the files and layouts the inputs name must lie.
    pub confinement: Option<crate::files::Confinement>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.values.iter().map(|(input, v)| {
                let shown = if input.secret { "***" } else { v };
                (input.name, shown)
            }))
            .finish()
    }
}

impl Inputs {
    /// Reads the inputs the runner passes to a container action: `INPUT_<NAME>`, the name
    /// upper-cased with spaces as `_` and hyphens kept.
    pub fn from_action_env(env: &Env) -> Self {
        let mut inputs = Inputs {
            confinement: Some(crate::files::Confinement::from_action_env(env)),
            ..Inputs::default()
        };
        for input in ALL {
            if let Some(value) = env.get(&input.action_var()) {
                inputs.set(*input, value);
            }
        }
        // A `docker://` step gets none of action.yml's defaults, so not `${{ github.token }}`;
        // the job's token reaches it as `env: GITHUB_TOKEN`, the name GitHub's own tools read.
        if inputs.get(GITHUB_TOKEN).is_none()
            && let Some(token) = env.get(GITHUB_TOKEN_VAR)
        {
            inputs.set(GITHUB_TOKEN, token);
        }
        inputs
    }

    /// Whether `github-token` came from the `GITHUB_TOKEN` variable rather than the input.
    pub fn github_token_from_env(env: &Env) -> bool {
        let given = env
            .get(&GITHUB_TOKEN.action_var())
            .is_some_and(|v| !v.trim().is_empty());
        !given
            && env
                .get(GITHUB_TOKEN_VAR)
                .is_some_and(|v| !v.trim().is_empty())
    }

    /// Sets `input` to `value` (trimmed); an empty value removes it.
    pub fn set(&mut self, input: Input, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            self.values.remove(&input);
        } else {
            self.values.insert(input, value.to_owned());
        }
    }

    /// The value of `input` if given, else its default, if it has one.
    pub fn get(&self, input: Input) -> Option<&str> {
        self.values
            .get(&input)
            .map(String::as_str)
            .or(input.default)
    }

    /// A YAML boolean (`true|True|TRUE|false|False|FALSE`); `false` when neither given nor
    /// defaulted.
    pub fn flag(&self, input: Input) -> Result<bool> {
        match self.get(input) {
            None => Ok(false),
            Some("true" | "True" | "TRUE") => Ok(true),
            Some("false" | "False" | "FALSE") => Ok(false),
            Some(other) => Err(Error::input(
                input,
                format!("`{other}` is not a boolean; use `true` or `false`"),
            )),
        }
    }

    /// A list given one per line or comma-separated; blank items are dropped.
    pub fn list(&self, input: Input) -> Vec<String> {
        self.get(input)
            .map(|v| {
                v.split(['\n', ','])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The secret values given, for masking.
    pub fn secrets(&self) -> Vec<&str> {
        ALL.iter()
            .filter(|i| i.secret)
            .filter_map(|i| self.get(*i))
            .collect()
    }
}

/// Refuses, by name, a variable of `non_utf8` that the run reads: an action input (`INPUT_*`,
/// when `action`) or a `WASM_OCI_*` setting. Left out of the env map it would read as not given
/// and silently change the run (`INPUT_DRY-RUN` with a stray byte pushed for real).
pub fn refuse_non_utf8(non_utf8: &[String], action: bool) -> Result<()> {
    for var in non_utf8 {
        let input = ALL
            .iter()
            .filter(|_| action)
            .find(|i| *var == i.action_var());
        let setting = || SETTINGS.iter().find(|s| s.name == var);
        if let Some(input) = input.or_else(setting) {
            return Err(Error::input(
                *input,
                format!("the value of `{var}` is not UTF-8 text; give it as UTF-8"),
            ));
        }
    }
    Ok(())
}

/// An environment as the runner passes it: every input's `INPUT_*` variable (empty when not
/// given), with `pairs` set over them.
#[cfg(test)]
pub(crate) fn action_env(pairs: &[(&str, &str)]) -> Env {
    let mut env: Env = crate::input::ALL
        .iter()
        .map(|i| (i.action_var(), String::new()))
        .collect();
    for (k, v) in pairs {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::*;

    #[test]
    fn an_omitted_input_reads_as_its_default() {
        let inputs = Inputs::from_action_env(&action_env(&[("INPUT_TARGET", "wasm32-wasip2")]));
        assert_eq!(inputs.get(COMMAND), Some("push"));
        assert_eq!(inputs.get(PROFILE), Some("release"));
        assert_eq!(inputs.get(TARGET), Some("wasm32-wasip2"), "given wins");
        assert_eq!(inputs.get(PATH), None, "no default");
        assert_eq!(Input::named("provenance").unwrap().default, Some("true"));
        assert!(inputs.flag(PROVENANCE).unwrap());
        assert!(!inputs.flag(DRY_RUN).unwrap());
        assert!(!inputs.flag(SIGNING_KEY).unwrap(), "no default reads false");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let inputs = Inputs::from_action_env(&action_env(&[
            ("INPUT_USERNAME", "bot"),
            ("INPUT_PASSWORD", "s3cr3t-value"),
        ]));
        assert_eq!(inputs.secrets(), ["s3cr3t-value"]);
        let shown = format!("{inputs:?}");
        assert!(
            shown.contains("\"bot\"") && !shown.contains("s3cr3t-value"),
            "{shown}"
        );
    }

    #[test]
    fn a_non_utf8_input_is_refused_by_its_name() {
        let vars = ["INPUT_DRY-RUN".to_owned()];
        let err = refuse_non_utf8(&vars, true).unwrap_err().to_string();
        assert!(
            err.starts_with("input `dry-run`: the value of `INPUT_DRY-RUN` is not UTF-8"),
            "{err}"
        );
        assert!(
            refuse_non_utf8(&vars, false).is_ok(),
            "the CLI reads no INPUT_*"
        );
    }
}
