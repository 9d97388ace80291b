//! A sweep's plan: the varied fields, the cartesian product of their values, and the `dmabuf
//! run` command line of each point. Written to `DIR/plan.json` before anything runs, so that
//! `--collect DIR` knows the points of a sweep whose runs happened elsewhere.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// One `--vary PATH=V1,V2,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vary {
    /// The field's path, as `--set` takes it.
    pub path: String,
    /// Its values, in the order given.
    pub values: Vec<String>,
}

impl Vary {
    /// Parses `PATH=V1,V2,...`. Commas inside brackets, braces or quotes do not split
    /// (`--vary 'links.a->b.planes=[{bank="dram0"}],[{bank="dram1"}]'`).
    pub fn parse(index: usize, arg: &str) -> Result<Vary, String> {
        let err = |why: &str| format!("--vary #{index} ({arg}): {why}");
        let (path, values) = arg
            .split_once('=')
            .ok_or_else(|| err("expected PATH=V1,V2,... (`links.camera->isp.buffers=2,4,6`)"))?;
        if path.trim().is_empty() {
            return Err(err("the path is empty"));
        }
        let mut out = Vec::new();
        let (mut depth, mut quote, mut cur) = (0i32, None::<char>, String::new());
        for c in values.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | '{') => depth += 1,
                (None, ']' | '}') => depth -= 1,
                (None, ',') if depth == 0 => {
                    out.push(std::mem::take(&mut cur));
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        out.push(cur);
        let out: Vec<String> = out.into_iter().map(|v| v.trim().to_string()).collect();
        if out.iter().any(String::is_empty) {
            return Err(err("an empty value (two commas, or one at an end)"));
        }
        Ok(Vary {
            path: path.trim().to_string(),
            values: out,
        })
    }
}

/// Everything a sweep runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The scenario argument every point runs (a file, a bundled name).
    pub scenario: String,
    /// The `--set` overrides common to every point.
    pub set: Vec<String>,
    /// `--frames`, if given.
    pub frames: Option<u64>,
    /// `--seed`, if given.
    pub seed: Option<u64>,
    /// The varied fields.
    pub vary: Vec<Vary>,
    /// Each point's values, one per varied field.
    pub points: Vec<Vec<String>>,
}

/// Most points a sweep may have.
pub const MAX_POINTS: usize = 10_000;

impl Plan {
    /// The plan of the cartesian product of `vary` (the first field varies slowest).
    pub fn new(
        scenario: String,
        set: Vec<String>,
        frames: Option<u64>,
        seed: Option<u64>,
        vary: Vec<Vary>,
    ) -> Result<Plan, String> {
        let count = vary
            .iter()
            .try_fold(1usize, |n, v| n.checked_mul(v.values.len()))
            .filter(|&n| n <= MAX_POINTS)
            .ok_or_else(|| format!("more than {MAX_POINTS} points: vary fewer values"))?;
        let mut points = Vec::with_capacity(count);
        for i in 0..count {
            let mut rest = i;
            let mut point = vec![String::new(); vary.len()];
            for (j, v) in vary.iter().enumerate().rev() {
                point[j] = v.values[rest % v.values.len()].clone();
                rest /= v.values.len();
            }
            points.push(point);
        }
        Ok(Plan {
            scenario,
            set,
            frames,
            seed,
            vary,
            points,
        })
    }

    /// The directory of point `i`'s run, relative to the sweep's directory.
    pub fn run_dir(i: usize) -> PathBuf {
        Path::new("runs").join(format!("{i:03}"))
    }

    /// `PATH=VALUE` of each varied field at point `i`.
    pub fn assignments(&self, i: usize) -> Vec<String> {
        self.vary
            .iter()
            .zip(&self.points[i])
            .map(|(v, x)| format!("{}={x}", v.path))
            .collect()
    }

    /// The arguments of `dmabuf` that run point `i` into `dir/runs/NNN`.
    pub fn args(&self, i: usize, dir: &Path) -> Vec<String> {
        let mut a = vec!["run".to_string(), self.scenario.clone()];
        for s in self.set.iter().chain(&self.assignments(i)) {
            a.push("--set".into());
            a.push(s.clone());
        }
        if let Some(f) = self.frames {
            a.extend(["--frames".into(), f.to_string()]);
        }
        if let Some(s) = self.seed {
            a.extend(["--seed".into(), s.to_string()]);
        }
        a.extend([
            "--out".into(),
            dir.join(Self::run_dir(i)).display().to_string(),
        ]);
        a
    }

    /// The plan as JSON (`plan.json`).
    pub fn to_json(&self) -> String {
        let v = json!({
            "scenario": self.scenario,
            "set": self.set,
            "frames": self.frames,
            "seed": self.seed,
            "vary": self.vary.iter().map(|v| json!({"path": v.path, "values": v.values})).collect::<Vec<_>>(),
            "points": self.points.iter().enumerate().map(|(i, p)| json!({
                "point": i,
                "values": p,
                "dir": Self::run_dir(i).display().to_string(),
            })).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }

    /// Reads `plan.json` back.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let bad = |what: &str| format!("not a sweep plan: `{what}` is missing or malformed");
        let vary = v["vary"]
            .as_array()
            .ok_or_else(|| bad("vary"))?
            .iter()
            .map(|x| {
                Some(Vary {
                    path: x["path"].as_str()?.to_string(),
                    values: strings(&x["values"])?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("vary"))?;
        let points = v["points"]
            .as_array()
            .ok_or_else(|| bad("points"))?
            .iter()
            .map(|p| strings(&p["values"]).filter(|p| p.len() == vary.len()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("points"))?;
        Ok(Plan {
            scenario: v["scenario"]
                .as_str()
                .ok_or_else(|| bad("scenario"))?
                .into(),
            set: strings(&v["set"]).ok_or_else(|| bad("set"))?,
            frames: v["frames"].as_u64(),
            seed: v["seed"].as_u64(),
            vary,
            points,
        })
    }
}

/// `arg` quoted for a POSIX shell when it needs to be.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vary_splits_values_but_not_inside_brackets_or_quotes() {
        let v = Vary::parse(1, "a.b=1,2, 64MiB").unwrap();
        assert_eq!(v.values, ["1", "2", "64MiB"]);
        let v = Vary::parse(1, r#"x=[1,2],{a="b,c"},'q,r'"#).unwrap();
        assert_eq!(v.values, ["[1,2]", r#"{a="b,c"}"#, "'q,r'"]);
        assert!(Vary::parse(2, "x")
            .unwrap_err()
            .starts_with("--vary #2 (x)"));
        assert!(Vary::parse(1, "x=1,,2").is_err());
        assert!(Vary::parse(1, "=1").is_err());
    }

    #[test]
    fn test_plan_is_the_cartesian_product_and_round_trips() {
        let vary = vec![
            Vary::parse(1, "a=1,2").unwrap(),
            Vary::parse(2, "b=x,y,z").unwrap(),
        ];
        let p = Plan::new("s.toml".into(), vec!["c=3".into()], Some(4), None, vary).unwrap();
        assert_eq!(p.points.len(), 6);
        assert_eq!(p.points[0], ["1", "x"]);
        assert_eq!(p.points[2], ["1", "z"]);
        assert_eq!(p.points[3], ["2", "x"]);
        assert_eq!(
            p.args(4, Path::new("d")),
            [
                "run",
                "s.toml",
                "--set",
                "c=3",
                "--set",
                "a=2",
                "--set",
                "b=y",
                "--frames",
                "4",
                "--out",
                "d/runs/004"
            ]
        );
        assert_eq!(Plan::from_json(&p.to_json()).unwrap(), p);
        assert!(Plan::from_json("{}").is_err());
        let huge = vec![Vary::parse(1, &format!("a={}", vec!["1"; 200].join(","))).unwrap(); 2];
        assert!(Plan::new("s".into(), vec![], None, None, huge).is_err());
    }

    #[test]
    fn test_shell_quote_quotes_what_a_shell_would_split_or_redirect() {
        assert_eq!(shell_quote("runs/000"), "runs/000");
        assert_eq!(
            shell_quote("links.a->b.buffers=2"),
            "'links.a->b.buffers=2'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
