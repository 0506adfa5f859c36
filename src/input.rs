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

    /// A setting read from the environment by its own name rather than an input of the
    /// action: named in errors as an input is.
    const fn setting(name: &'static str) -> Input {
        Input {
            name,
            default: None,
            secret: false,
        }
    }
}

/// The table: one line per input, `CONST = "name"`, then `, default "value"` and
/// `, secret true` where they apply. The constant is the name upper-cased with `_` for `-`.
macro_rules! inputs {
    ($($id:ident = $name:literal $(, default $default:literal)? $(, secret $secret:literal)?;)*) => {
        $(
            #[doc = concat!("The `", $name, "` input.")]
            pub const $id: Input = Input {
                name: $name,
                default: inputs!(@default $($default)?),
                secret: inputs!(@secret $($secret)?),
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
    COMMAND = "command", default "push";
    IMAGE = "image";
    TAGS = "tags";
    PATH = "path";
    BUILD = "build", default "auto";
    WORKING_DIRECTORY = "working-directory", default ".";
    PACKAGE = "package";
    TARGET = "target", default "wasm32-wasip1";
    PROFILE = "profile", default "release";
    FEATURES = "features";
    CARGO_ARGS = "cargo-args";
    FORMAT = "format", default "cncf";
    ANNOTATIONS = "annotations";
    USERNAME = "username";
    PASSWORD = "password", secret true;
    GITHUB_TOKEN = "github-token", secret true;
    INSECURE = "insecure", default "false";
    CA_FILE = "ca-file";
    DRY_RUN = "dry-run", default "false";
    // In the workspace, not hidden, so `actions/upload-artifact` takes it as it is.
    DRY_RUN_LAYOUT = "dry-run-layout", default "wasm-oci-dry-run";
    PROVENANCE = "provenance", default "true";
    SBOM = "sbom", default "true";
    REQUIRE_SBOM = "require-sbom", default "false";
    SIGNING_KEY = "signing-key", secret true;
    SIGN = "sign", default "auto";
    SIGSTORE_TRUST_CONFIG = "sigstore-trust-config";
    OUTPUT = "output";
    LAYER = "layer";
    EXPECT_SOURCE = "expect-source";
    EXPECT_REVISION = "expect-revision";
    PUBLIC_KEY = "public-key";
    REQUIRE_SIGNATURE = "require-signature", default "true";
    CERTIFICATE_IDENTITY = "certificate-identity";
    CERTIFICATE_IDENTITY_REGEXP = "certificate-identity-regexp";
    CERTIFICATE_OIDC_ISSUER = "certificate-oidc-issuer";
    ALLOWED_IMPORTS = "allowed-imports";
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
