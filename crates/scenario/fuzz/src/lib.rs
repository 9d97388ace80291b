//! What the scenario fuzz target checks for one input, shared by the libFuzzer target and the
//! stable replay driver.
//!
//! The input, taken as UTF-8 (lossily), is parsed and validated as a scenario file. Nothing may
//! panic; an invalid scenario must be answered with an error that renders with a message and
//! maps to exit code 2; a valid one must have passed the validator's own rules (checked here:
//! at least one frame).

/// Runs one input; `Err` describes a broken invariant (a panic is a crash on its own).
pub fn check(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    match scenario::validate(&text, "fuzz.toml") {
        Ok(s) => {
            if s.frames == 0 {
                return Err("a valid scenario with 0 frames".into());
            }
            Ok(())
        }
        Err(e) => {
            let shown = e.render();
            if shown.trim().is_empty() || shown.trim() == "error:" {
                return Err(format!("an error without a message: {e:?}"));
            }
            if e.exit_code().code() != 2 {
                return Err(format!(
                    "an invalid scenario must exit 2, not {}",
                    e.exit_code().code()
                ));
            }
            Ok(())
        }
    }
}
