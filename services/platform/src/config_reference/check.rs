//! The configuration reference checked against the code and the documentation (files only): every
//! `PLACEMENT_*` variable the code, the scripts and the tests use is one [`known`] has (so no process warns
//! of it), every name it has is read somewhere, each process's `Config` has the fields [`OWN`] lists for it,
//! and the table in `docs/configuration.md` documents exactly those names.
//!
//! What counts as read: a name in a string literal of the Rust sources (`services/*/src`, `tests/src`,
//! `tests/e2e`, `tests/faults`; comments are not code), a field of a settings struct, a process's
//! `PLACEMENT_<NAME>_*` settings, and a name outside comments in `deploy/*.sh`. The deployment files
//! (`deploy/**/*.yml`, `*.yaml`) only set variables: each name there must be known, but does not count as
//! read. A name ending in `_` (`PLACEMENT_{}_{}`, `PLACEMENT_TLS_*`) is a pattern, not a name. The
//! reference itself and this check name settings without reading them, so they are not scanned; a unit
//! test elsewhere that names a made-up setting is taken for a reader of it.
//!
//! The table: every name in backticks in a row's first cell, in any table of the file; `PLACEMENT_<NAME>_X`
//! stands for that setting of every process of the template, and an abbreviated name (`_RETRY_MAX` after
//! `PLACEMENT_DELIVERY_RETRY_INITIAL`) for the row's first name with as many of its last words replaced.
//! The variables only the scripts and the tests read (`PLACEMENT_TEST_*`, `PLACEMENT_RUN_DIR`, …) are
//! documented in the same table, after the processes'.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use super::*;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn documentation() -> String {
    let path = repository().join("docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The contents of the string literals of Rust `source`, comments and character literals skipped, escapes
/// left as written.
fn rust_strings(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut strings = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match (at(i), at(i + 1)) {
            ('/', '/') => {
                while i < chars.len() && at(i) != '\n' {
                    i += 1;
                }
            }
            ('/', '*') => i = after_block_comment(&chars, i),
            // A character literal ('"', '\'', '\u{22}'); otherwise a lifetime.
            ('\'', '\\') => {
                i += 3;
                while i < chars.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            }
            ('\'', _) if at(i + 2) == '\'' => i += 3,
            ('r', '"' | '#') => match raw_string(&chars, i) {
                Some((text, next)) => {
                    strings.push(text);
                    i = next;
                }
                None => i += 1,
            },
            ('"', _) => {
                let mut text = String::new();
                i += 1;
                while i < chars.len() && at(i) != '"' {
                    let skip = if at(i) == '\\' { 2 } else { 1 };
                    text.extend(&chars[i..(i + skip).min(chars.len())]);
                    i += skip;
                }
                strings.push(text);
                i += 1;
            }
            _ => i += 1,
        }
    }
    strings
}

/// Where the (possibly nested) block comment starting at `start` ends.
fn after_block_comment(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => (depth, i) = (depth + 1, i + 2),
            ('*', '/') => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
        if depth == 0 {
            return i;
        }
    }
    chars.len()
}

/// The raw string (`r"…"`, `r#"…"#`, `br"…"`) starting at `start`, and where it ends; none when the `r`
/// starts something else (an identifier, `r#type`).
fn raw_string(chars: &[char], start: usize) -> Option<(String, usize)> {
    let word = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    };
    let before = start.checked_sub(1);
    let byte_string = before.is_some_and(|b| chars[b] == 'b') && !word(start.checked_sub(2));
    if word(before) && !byte_string {
        return None;
    }
    let hashes = chars[start + 1..].iter().take_while(|c| **c == '#').count();
    if chars.get(start + 1 + hashes) != Some(&'"') {
        return None;
    }
    let open = start + 2 + hashes;
    let closes_at = |i: &usize| {
        chars[*i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
    };
    let close = (open..chars.len()).find(closes_at).unwrap_or(chars.len());
    Some((chars[open..close].iter().collect(), close + 1 + hashes))
}

/// Shell or YAML `text` without its comments (a `#` at the start of a word, to the end of the line).
fn uncommented(text: &str) -> String {
    let line = |l: &str| {
        let cut = l
            .char_indices()
            .find(|(i, c)| *c == '#' && (*i == 0 || l[..*i].ends_with(char::is_whitespace)))
            .map_or(l.len(), |(i, _)| i);
        l[..cut].to_string()
    };
    text.lines().map(line).collect::<Vec<_>>().join("\n")
}

/// The `PLACEMENT_*` names in `text`: `PLACEMENT_` and capitals, digits and `_`, with `<NAME>` standing for a
/// process's name. One ending in `_` (`PLACEMENT_{}_{}`, `PLACEMENT_${var}_QUEUE`, `PLACEMENT_TLS_*`) is a
/// pattern, not a name.
fn setting_names(text: &str) -> Vec<String> {
    let prefix = PREFIX;
    let mut names = Vec::new();
    for (start, _) in text.match_indices(prefix) {
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let mut end = start + prefix.len();
        loop {
            let rest = &text[end..];
            if rest.starts_with("<NAME>") {
                end += "<NAME>".len();
            } else if rest
                .starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                end += 1;
            } else {
                break;
            }
        }
        let name = &text[start..end];
        if !name.ends_with('_') {
            names.push(name.to_string());
        }
    }
    names
}

/// The processes' names as `<NAME>` stands for them.
fn process_names() -> Vec<String> {
    template_processes()
        .map(|p| p.name.to_uppercase())
        .collect()
}

/// Whether the documented (or templated) name `pattern` is, or stands for, `name`.
fn covers(pattern: &str, name: &str) -> bool {
    match pattern.split_once("<NAME>") {
        None => pattern == name,
        Some((before, after)) => name
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|process| process_names().iter().any(|p| p == process)),
    }
}

/// The names `markdown`'s tables document: those in backticks in each row's first cell.
fn documented(markdown: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for row in markdown.lines().filter_map(|l| l.trim().strip_prefix('|')) {
        let first_cell = row.split('|').next().unwrap_or_default();
        let spans = first_cell.split('`').skip(1).step_by(2);
        let mut row_first: Option<&str> = None;
        for span in spans {
            if span.starts_with(PREFIX) {
                row_first.get_or_insert(span);
                names.insert(span.to_string());
            } else if let (Some(first), Some(tail)) = (row_first, span.strip_prefix('_')) {
                let replaced = tail.split('_').count();
                let words: Vec<&str> = first.split('_').collect();
                if words.len() > replaced {
                    names.insert(format!(
                        "{}_{tail}",
                        words[..words.len() - replaced].join("_")
                    ));
                }
            }
        }
    }
    names
}

/// What differs between the names `read` and those `documentation` documents, each naming the variable.
fn compare_with_documentation(read: &BTreeSet<String>, documentation: &str) -> Vec<String> {
    let documented = documented(documentation);
    let missing = read
        .iter()
        .filter(|name| !documented.iter().any(|d| covers(d, name)))
        .map(|name| format!("{name} is read but missing from docs/configuration.md's table"));
    let stale = documented
        .iter()
        .filter(|d| !read.iter().any(|name| covers(d, name)))
        .map(|d| {
            format!(
                "{d} is documented in docs/configuration.md but no part of the exchange reads it"
            )
        });
    missing.chain(stale).collect()
}

/// Every file scanned, with whether a name in it counts as read (not only set).
fn scanned_files() -> Vec<(PathBuf, bool)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let root = repository();
    let mut files = Vec::new();
    for crate_dir in std::fs::read_dir(root.join("services"))
        .expect("services/")
        .flatten()
    {
        walk(&crate_dir.path().join("src"), &mut files);
    }
    for dir in ["tests/src", "tests/e2e", "tests/faults", "deploy"] {
        walk(&root.join(dir), &mut files);
    }
    // The reference and this check name settings without reading them.
    let skipped = [
        root.join("services/platform/src/config_reference.rs"),
        root.join("services/platform/src/config_reference/check.rs"),
    ];
    files.sort();
    files
        .into_iter()
        .filter(|f| !skipped.contains(f))
        .filter_map(|f| {
            let ext = f.extension().and_then(|e| e.to_str()).unwrap_or_default();
            let in_deploy = f.parent() == Some(root.join("deploy").as_path());
            match ext {
                "rs" if !f.starts_with(root.join("deploy")) => Some((f, true)),
                "sh" if in_deploy => Some((f, true)),
                "yml" | "yaml" if f.starts_with(root.join("deploy")) => Some((f, false)),
                _ => None,
            }
        })
        .collect()
}

/// The names used in the scanned files: each with the first file it is in, and whether it is read there.
fn used_names() -> BTreeMap<String, (String, bool)> {
    let root = repository();
    let mut used: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for (file, reads) in scanned_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let texts = match file.extension().and_then(|e| e.to_str()) {
            Some("rs") => rust_strings(&text),
            _ => vec![uncommented(&text)],
        };
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for name in texts.iter().flat_map(|t| setting_names(t)) {
            let entry = used.entry(name).or_insert((shown.clone(), reads));
            entry.1 |= reads;
        }
    }
    used
}

/// Each process's `Config` fields as settings, read from its crate's `lib.rs` (`pub struct Config { … }`),
/// by the process's name (its crate's folder).
fn config_fields() -> BTreeMap<String, BTreeSet<String>> {
    let mut configs = BTreeMap::new();
    let services = repository().join("services");
    for crate_dir in std::fs::read_dir(services).expect("services/").flatten() {
        let Ok(text) = std::fs::read_to_string(crate_dir.path().join("src/lib.rs")) else {
            continue;
        };
        let Some(start) = text.find("\npub struct Config {") else {
            continue;
        };
        let body = &text[start + 1..];
        let body = &body[..body.find("\n}").unwrap_or(body.len())];
        let field = |line: &str| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let (name, _) = line.split_once(':')?;
            let plain = !name.is_empty()
                && (name.chars()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            (plain && !line.starts_with("//")).then(|| format!("{PREFIX}{}", name.to_uppercase()))
        };
        let fields = body.lines().skip(1).filter_map(field).collect();
        let process = crate_dir.file_name().to_string_lossy().into_owned();
        configs.insert(process, fields);
    }
    configs
}

/// Each process's `Config` against its entry in [`OWN`].
fn configs_against_reference() -> Vec<String> {
    let configs = config_fields();
    let mut problems = Vec::new();
    for (process, fields) in &configs {
        let listed: BTreeSet<String> = own(process).iter().map(|n| (*n).to_string()).collect();
        for name in fields.difference(&listed) {
            problems.push(format!(
                "{process}'s Config reads {name}, which config_reference::OWN does not list for it"
            ));
        }
        for name in listed.difference(fields) {
            problems.push(format!(
                "config_reference::OWN lists {name} for {process}, whose Config does not read it"
            ));
        }
    }
    let unlisted = OWN
        .iter()
        .filter(|(p, _)| *p != "cli" && !configs.contains_key(*p));
    for (process, _) in unlisted {
        problems.push(format!(
            "config_reference::OWN has {process}, which has no Config"
        ));
    }
    problems
}

/// Every setting read through a settings struct.
fn struct_fields() -> BTreeSet<String> {
    let shared = fields_of::<crate::config::CommonConfig>()
        .into_iter()
        .chain(fields_of::<crate::audit::checkpoint::CheckpointSettings>());
    (config_fields().into_values().flatten())
        .chain(shared)
        .collect()
}

/// The names used in the code, scripts and deployment files against the reference, both ways.
fn code_against_reference(known: &BTreeSet<String>) -> Vec<String> {
    let used = used_names();
    let mut problems = Vec::new();
    for (name, (file, _)) in &used {
        let is_known = if name.contains("<NAME>") {
            known.iter().any(|k| covers(name, k))
        } else {
            known.contains(name)
        };
        if !is_known {
            problems.push(format!("{name} is used in {file} but config_reference does not know it (a process given it would warn)"));
        }
    }
    let read: BTreeSet<&String> = used
        .iter()
        .filter(|(_, (_, reads))| *reads)
        .map(|(n, _)| n)
        .collect();
    let fields = struct_fields();
    let by_name = by_process_name();
    for name in known {
        if !read.contains(name) && !fields.contains(name) && !by_name.contains(name) {
            problems.push(format!(
                "{name} is in config_reference but nothing reads it"
            ));
        }
    }
    problems
}

#[test]
fn every_setting_read_is_documented_and_every_documented_one_is_read() {
    let known = known();
    let mut problems = configs_against_reference();
    problems.extend(code_against_reference(&known));
    problems.extend(compare_with_documentation(&known, &documentation()));
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn a_table_without_a_row_or_with_a_row_of_nothing_read_fails_naming_it() {
    let known = known();
    let text = documentation();
    let row = "| `PLACEMENT_DATABASE_ACQUIRE_TIMEOUT` |";
    assert!(
        text.contains(row),
        "the table documents the acquire timeout"
    );
    // The row replaced by one of a variable nothing reads.
    let stale_row = "| `PLACEMENT_DATABASE_POOL_SIZE` | `10` | all |";
    let changed: String = text
        .lines()
        .map(|l| if l.starts_with(row) { stale_row } else { l })
        .map(|l| format!("{l}\n"))
        .collect();
    let problems = compare_with_documentation(&known, &changed);
    let whole = compare_with_documentation(&known, &text);
    let new: Vec<&String> = problems.iter().filter(|p| !whole.contains(p)).collect();
    assert_eq!(
        new,
        [
            "PLACEMENT_DATABASE_ACQUIRE_TIMEOUT is read but missing from docs/configuration.md's table",
            "PLACEMENT_DATABASE_POOL_SIZE is documented in docs/configuration.md but no part of the exchange reads it",
        ],
        "{problems:?}"
    );
}

#[test]
fn the_table_reads_several_abbreviated_and_templated_names_in_a_row() {
    let table = "| variable | default |\n|---|---|\n\
        | `PLACEMENT_DELIVERY_RETRY_INITIAL` / `_RETRY_MAX` | `30s` / `1h` |\n\
        | `PLACEMENT_<NAME>_METRICS_ADDR`, `PLACEMENT_METRICS_ADDR` | see `PLACEMENT_EXCHANGE` |\n\
        | `RUST_LOG` | `info` |\n";
    let names: Vec<String> = documented(table).into_iter().collect();
    assert_eq!(
        names,
        [
            "PLACEMENT_<NAME>_METRICS_ADDR",
            "PLACEMENT_DELIVERY_RETRY_INITIAL",
            "PLACEMENT_DELIVERY_RETRY_MAX",
            "PLACEMENT_METRICS_ADDR",
        ]
    );
    assert!(covers(
        "PLACEMENT_<NAME>_METRICS_ADDR",
        "PLACEMENT_WEB_METRICS_ADDR"
    ));
    assert!(!covers(
        "PLACEMENT_<NAME>_METRICS_ADDR",
        "PLACEMENT_METRICS_ADDR"
    ));
    assert!(!covers("PLACEMENT_<NAME>_URL", "PLACEMENT_PUBLIC_URL"));
}

#[test]
fn only_names_in_string_literals_and_outside_comments_are_taken() {
    let rust = r##"
        // PLACEMENT_IN_A_COMMENT
        /* PLACEMENT_IN_A /* nested */ BLOCK_COMMENT */
        fn f<'a>(c: char) -> &'a str {
            let quote = '"';
            let escaped = '\'';
            let _ = ("PLACEMENT_LITERAL", r#"a "PLACEMENT_RAW" b"#, format!("PLACEMENT_{}_{}", 1, 2));
            if c == quote || c == escaped { "FAMILY_TYPE_PLACEMENT_CENTRE PLACEMENT_<NAME>_QUEUE" } else { "" }
        }
    "##;
    let names: Vec<String> = rust_strings(rust)
        .iter()
        .flat_map(|s| setting_names(s))
        .collect();
    assert_eq!(
        names,
        [
            "PLACEMENT_LITERAL",
            "PLACEMENT_RAW",
            "PLACEMENT_<NAME>_QUEUE"
        ]
    );
    let shell = "# PLACEMENT_COMMENTED\nexport PLACEMENT_SET=1 # PLACEMENT_TRAILING\n\
        export \"PLACEMENT_${var}_QUEUE=x\"\necho \"${PLACEMENT_READ:-#}\"\n";
    assert_eq!(
        setting_names(&uncommented(shell)),
        ["PLACEMENT_SET", "PLACEMENT_READ"]
    );
}
