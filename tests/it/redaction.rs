//! Secrets in the errors of the read commands in action mode: a registry that quotes the
//! credentials it was sent in its refusal has them redacted in the `::error::` line, as push has.

use crate::common;

use common::*;

#[test]
fn action_read_errors_never_show_a_password() {
    let host = crate::hostile_output::echoing_registry();
    let ws = Workspace::new();
    let password = "Sup3r-s3cret-pw";
    let image = format!("{host}/acme/app:v1");
    for command in ["pull", "verify"] {
        let run = ws.run_action(&ws.action_env(&[
            ("command", command),
            ("image", &image),
            ("insecure", "true"),
            ("username", "bot"),
            ("password", password),
        ]));
        assert!(!run.success(), "{run:?}");
        let errors = run.error_lines();
        assert_eq!(errors.len(), 1, "{run:?}");
        assert!(
            errors[0].contains("no user matches bot:***"),
            "the registry's words, redacted: {run:?}"
        );
        assert_eq!(
            run.all().matches(password).count(),
            1,
            "only the mask line: {run:?}"
        );
    }
}
