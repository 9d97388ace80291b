//! Fuzz-style: mutated scenario text never panics, and every error points inside the text.

use proptest::prelude::*;

/// Characters a mutation inserts: TOML punctuation, digits, units, quotes, newlines, non-ASCII.
const ALPHABET: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    ",",
    ".",
    "{",
    "}",
    "\n",
    " ",
    "#",
    "0",
    "1",
    "9",
    "-",
    "0x",
    "_",
    "GiB",
    "TiB",
    "KiB",
    "e",
    "name",
    "to",
    "from",
    "frames",
    "é",
    "\u{7f}",
    "true",
    "99999999999999999999",
    "-1",
    "nodes",
    "soc",
    "banks",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, what: usize },
    Replace { at: usize, len: usize, what: usize },
    SwapLines { a: usize, b: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), any::<usize>()).prop_map(|(at, what)| Mutation::Insert { at, what }),
        (any::<usize>(), 1usize..6, any::<usize>()).prop_map(|(at, len, what)| Mutation::Replace {
            at,
            len,
            what
        }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
    ]
}

fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut s = text.to_string();
    match *m {
        Mutation::Delete { at, len } => {
            let a = boundary(&s, at);
            let b = boundary(&s, a + len.min(s.len() - a));
            s.replace_range(a..b.max(a), "");
        }
        Mutation::Insert { at, what } => {
            let a = boundary(&s, at);
            s.insert_str(a, ALPHABET[what % ALPHABET.len()]);
        }
        Mutation::Replace { at, len, what } => {
            let a = boundary(&s, at);
            let b = boundary(&s, a + len.min(s.len() - a));
            s.replace_range(a..b.max(a), ALPHABET[what % ALPHABET.len()]);
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = s.lines().collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines.swap(a % n, b % n);
            }
            s = lines.join("\n");
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_never_panic(
        which in 0usize..7,
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let all = scenario::bundled();
        let mut text = all[which % all.len()].2.to_string();
        for m in &muts {
            text = apply(&text, m);
        }
        if let Err(e) = scenario::validate(&text, "fuzz.toml") {
            prop_assert_eq!(e.exit_code(), scenario::ExitCode::Invalid);
            let loc = e.location().unwrap();
            prop_assert!(loc.line >= 1 && loc.line <= text.lines().count().max(1) + 1, "{}", e);
            prop_assert!(!e.message().is_empty());
            let _ = e.render();
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = scenario::validate(&text, "fuzz.toml").map_err(|e| e.render());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every number of the default scenario (bank bases and sizes, masks, bandwidths, frame
    /// counts...) replaced by an arbitrary one: errors, never a panic or a huge allocation.
    #[test]
    fn arbitrary_numbers_never_panic(
        picks in proptest::collection::vec((any::<usize>(), any::<u64>(), 0usize..6), 1..4),
    ) {
        let text = scenario::bundled_text("default").unwrap();
        let mut spans = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                spans.push(start..i);
            }
            i += 1;
        }
        let mut chosen: Vec<(std::ops::Range<usize>, String)> = picks
            .iter()
            .map(|&(k, v, unit)| {
                let units = ["", "KiB", "MiB", "GiB", "TiB", "x"];
                let value = match unit {
                    0 => v.to_string(),
                    5 => format!("0x{v:x}"),
                    u => format!("{}{}", v % 4096, units[u]),
                };
                (spans[k % spans.len()].clone(), value)
            })
            .collect();
        chosen.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
        chosen.dedup_by_key(|(r, _)| r.start);
        let mut t = text.to_string();
        for (r, v) in chosen {
            // A unit only parses inside a string; quote it when the literal was bare.
            let quoted = t[..r.start].ends_with('"');
            let v = if quoted || v.chars().all(|c| c.is_ascii_digit()) { v } else { format!("\"{v}\"") };
            t.replace_range(r, &v);
        }
        let _ = scenario::validate(&t, "fuzz.toml").map_err(|e| e.render());
    }
}
