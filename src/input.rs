//! The action's inputs, in one table: each input's name, its default and whether its value is
//! a secret. Both front doors collect raw values into [`Inputs`] under these entries, and every
//! reader names an entry (`inputs.get(input::PATH)`), so a misspelt input does not compile.
//! `tests/it/contract.rs` holds the table equal to action.yml and the README. The `WASM_OCI_*`
//! settings have entries too, outside the action's table, so an error names each the same way.
//! This module imports nothing of the crate: the error type carries its entries.

/// One input of the action: `name` as action.yml declares it (`INPUT_<NAME>` in the action,
/// `--<name>` and `WASM_OCI_<NAME>` on the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Input {
    /// The name in action.yml.
    pub name: &'static str,
    /// The value read when the input is not given, as action.yml declares it.
    pub default: Option<&'static str>,
    /// Whether the value is a secret: masked before anything else is printed, never shown.
    pub secret: bool,
    /// The commands that read it: a sub-action (`verify/`, `pull/`, `push/`) declares the
    /// inputs of its command.
    pub readers: &'static [Reader],
}

/// Who reads an input: a command, or a push in build mode only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reader {
    /// `push`, whether it locates or builds the .wasm.
    Push,
    /// `push` when it builds the .wasm with cargo, and `build`, which chooses that (`push/`
    /// locates a .wasm: it declares none of these).
    Build,
    /// `pull`.
    Pull,
    /// `verify`.
    Verify,
}

impl Input {
    /// The variable the runner passes this input in: `INPUT_` and the name upper-cased,
    /// hyphens kept.
    pub fn action_var(&self) -> String {
        format!("INPUT_{}", self.name.to_uppercase().replace(' ', "_"))
    }

    /// The input called `name`, if the action declares one.
    pub fn named(name: &str) -> Option<Input> {
        ALL.iter().find(|i| i.name == name).copied()
    }

    /// Whether `reader` reads this input.
    pub fn read_by(&self, reader: Reader) -> bool {
        self.readers.contains(&reader)
    }

    /// A setting read from the environment by its own name rather than an input of the
    /// action: named in errors as an input is.
    const fn setting(name: &'static str) -> Input {
        Input {
            name,
            default: None,
            secret: false,
            readers: &[],
        }
    }
}

/// The table: one line per input, `CONST = "name"`, the commands that read it in brackets, then
/// `, default "value"` and `, secret true` where they apply. The constant is the name upper-cased
/// with `_` for `-`.
macro_rules! inputs {
    ($($id:ident = $name:literal [$($reader:ident)*] $(, default $default:literal)? $(, secret $secret:literal)?;)*) => {
        $(
            #[doc = concat!("The `", $name, "` input.")]
            pub const $id: Input = Input {
                name: $name,
                default: inputs!(@default $($default)?),
                secret: inputs!(@secret $($secret)?),
                readers: &[$(Reader::$reader),*],
            };
        )*
        /// Every input the action declares, in action.yml's order.
        pub const ALL: &[Input] = &[$($id),*];
    };
    (@default) => { None };
    (@default $value:literal) => { Some($value) };
    (@secret) => { false };
    (@secret $value:literal) => { $value };
}

inputs! {
    COMMAND = "command" [Push Pull Verify], default "push";
    IMAGE = "image" [Push Pull Verify];
    TAGS = "tags" [Push];
    PATH = "path" [Push];
    BUILD = "build" [Build], default "auto";
    WORKING_DIRECTORY = "working-directory" [Push Pull Verify], default ".";
    PACKAGE = "package" [Build];
    TARGET = "target" [Build], default "wasm32-wasip1";
    PROFILE = "profile" [Build], default "release";
    FEATURES = "features" [Build];
    CARGO_ARGS = "cargo-args" [Build];
    FORMAT = "format" [Push], default "cncf";
    ANNOTATIONS = "annotations" [Push Verify];
    USERNAME = "username" [Push Pull Verify];
    PASSWORD = "password" [Push Pull Verify], secret true;
    GITHUB_TOKEN = "github-token" [Push Pull Verify], secret true;
    INSECURE = "insecure" [Push Pull Verify], default "false";
    CA_FILE = "ca-file" [Push Pull Verify];
    DRY_RUN = "dry-run" [Push], default "false";
    // In the workspace, not hidden, so `actions/upload-artifact` takes it as it is.
    DRY_RUN_LAYOUT = "dry-run-layout" [Push], default "wasm-oci-dry-run";
    PROVENANCE = "provenance" [Push], default "true";
    SBOM = "sbom" [Build], default "true";
    REQUIRE_SBOM = "require-sbom" [Verify], default "false";
    SIGNING_KEY = "signing-key" [Push], secret true;
    SIGN = "sign" [Push], default "auto";
    SIGSTORE_TRUST_CONFIG = "sigstore-trust-config" [Push Verify];
    OUTPUT = "output" [Pull];
    LAYER = "layer" [Pull Verify];
    EXPECT_SOURCE = "expect-source" [Verify];
    EXPECT_REVISION = "expect-revision" [Verify];
    PUBLIC_KEY = "public-key" [Verify];
    REQUIRE_SIGNATURE = "require-signature" [Verify], default "true";
    CERTIFICATE_IDENTITY = "certificate-identity" [Verify];
    CERTIFICATE_IDENTITY_REGEXP = "certificate-identity-regexp" [Verify];
    CERTIFICATE_OIDC_ISSUER = "certificate-oidc-issuer" [Verify];
    ALLOWED_IMPORTS = "allowed-imports" [Push Verify];
}

/// The `WASM_OCI_*` settings: bounds of the retries and of a read, in seconds (a count for
/// `WASM_OCI_RETRY_MAX_ATTEMPTS`). The CLI's flags are read by clap; these from the env map.
pub const HTTP_TIMEOUT: Input = Input::setting("WASM_OCI_HTTP_TIMEOUT");
/// See [`HTTP_TIMEOUT`].
pub const RETRY_INITIAL_DELAY: Input = Input::setting("WASM_OCI_RETRY_INITIAL_DELAY");
/// See [`HTTP_TIMEOUT`].
pub const RETRY_MAX_ELAPSED: Input = Input::setting("WASM_OCI_RETRY_MAX_ELAPSED");
/// See [`HTTP_TIMEOUT`].
pub const RETRY_MAX_ATTEMPTS: Input = Input::setting("WASM_OCI_RETRY_MAX_ATTEMPTS");

/// Every `WASM_OCI_*` setting.
pub const SETTINGS: &[Input] = &[
    HTTP_TIMEOUT,
    RETRY_INITIAL_DELAY,
    RETRY_MAX_ELAPSED,
    RETRY_MAX_ATTEMPTS,
];

/// `SOURCE_DATE_EPOCH`, the reproducible `created` time (seconds since 1970).
pub const SOURCE_DATE_EPOCH: Input = Input::setting("SOURCE_DATE_EPOCH");

/// The variable `github-token` falls back to when the input is empty.
pub const GITHUB_TOKEN_VAR: &str = "GITHUB_TOKEN";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_input_once_and_its_constant_after_it() {
        for (i, input) in ALL.iter().enumerate() {
            assert!(
                !ALL[..i].iter().any(|other| other.name == input.name),
                "`{}` twice",
                input.name
            );
        }
        assert_eq!(WORKING_DIRECTORY.name, "working-directory");
        assert_eq!(Input::named("no-such-input"), None);
        let secrets: Vec<_> = ALL.iter().filter(|i| i.secret).map(|i| i.name).collect();
        assert_eq!(secrets, ["password", "github-token", "signing-key"]);
    }
}
