//! `[expect] error`: the run enforces it.
//!
//! A scenario that says `error = "ENOMEM"` shows a failure; a run that does not fail that way
//! shows something else and must not pass for it. After the run, [`check_expected_error`] adds
//! one run error, a sentence saying what was expected and what happened, when no run error has
//! the expected errno: the run then exits 1 like any failed run, and the sentence says why. A
//! run that fails with the expected errno is left as it is (it exits 1, as `[expect]` says).

use crate::report::{Report, RunError};
use crate::schema::Expect;

/// Adds the error saying that `expect.error` did not happen (module doc).
pub(crate) fn check_expected_error(report: &mut Report, expect: &Expect) {
    let Some(want) = &expect.error else {
        return;
    };
    if report.errors.iter().any(|e| &e.errno == want) {
        return;
    }
    let got: Vec<&str> = report.errors.iter().map(|e| e.errno.as_str()).collect();
    let message = if got.is_empty() {
        format!("the scenario expects the run to fail with {want} ([expect] error), and it did not fail")
    } else {
        let mut got = got;
        got.sort_unstable();
        got.dedup();
        format!(
            "the scenario expects the run to fail with {want} ([expect] error), and it failed \
             with {} instead",
            got.join(", ")
        )
    };
    report.errors.push(RunError {
        errno: String::new(),
        message,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(errno: &str) -> Expect {
        Expect {
            error: Some(errno.into()),
            ..Expect::default()
        }
    }

    #[test]
    fn an_expected_error_that_did_not_happen_is_a_failure_saying_so() {
        let mut r = Report::new("t", 0);
        check_expected_error(&mut r, &expect("ENOMEM"));
        assert_eq!(r.exit_code(), crate::ExitCode::Failed);
        assert!(
            r.errors[0]
                .message
                .contains("expects the run to fail with ENOMEM")
                && r.errors[0].message.contains("did not fail"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn a_different_errno_is_named() {
        let mut r = Report::new("t", 0);
        r.errors.push(RunError {
            errno: "EIO".into(),
            message: "x".into(),
        });
        check_expected_error(&mut r, &expect("ENOMEM"));
        assert_eq!(r.errors.len(), 2);
        assert!(
            r.errors[1].message.contains("failed with EIO instead"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn the_expected_errno_is_left_alone() {
        let mut r = Report::new("t", 0);
        r.errors.push(RunError {
            errno: "ENOMEM".into(),
            message: "x".into(),
        });
        check_expected_error(&mut r, &expect("ENOMEM"));
        assert_eq!(r.errors.len(), 1);
        let mut none = Report::new("t", 0);
        check_expected_error(&mut none, &Expect::default());
        assert!(none.errors.is_empty());
    }
}
